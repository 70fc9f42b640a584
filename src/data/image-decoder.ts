// One image file to the pixels one sample of a batch needs: a box of the source image (the
// crop), resampled to the output size, in 1 or 3 channels, mirrored or not. The same functions
// run on the decode workers and in the main thread, so both give the same bytes.
//
// Two decoders: 'js' (pngjs/jpeg-js through decodeImageFile, which refuses oversized headers, and
// the resampler below) and 'sharp' (libvips, an optional dependency: faster, and reads WebP).
import { readFileSync, statSync } from 'node:fs';
import { decodeImageFile, DecodedImage, imageSizeProblem, MAX_IMAGE_FILE_BYTES, MAX_IMAGE_PIXELS } from './image-file';

/** Which part of the source becomes the sample. */
export type CropPlan =
  /** The whole image, resized to the output (aspect ratio not kept). */
  | { kind: 'whole' }
  /** Shorter side resized to `resizeShorter`, then the output-sized centre (ImageNet evaluation). */
  | { kind: 'center'; resizeShorter: number }
  /**
   * A random box of `area` (fraction of the image) and aspect exp(logRatio), at relative position
   * (fx, fy) in [0, 1) of the room left (ImageNet training). The numbers are drawn by the caller,
   * so the result does not depend on which thread decodes.
   */
  | { kind: 'random-resized'; area: number; logRatio: number; fx: number; fy: number };

export interface DecodeRequest {
  file: string;
  crop: CropPlan;
  /** Mirror left-right after resizing. */
  flip: boolean;
  height: number;
  width: number;
  channels: 1 | 3;
}

export type DecoderName = 'js' | 'sharp';
export type DecoderChoice = DecoderName | 'auto';

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

const clampInt = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, Math.round(v)));

/** The source box of a plan on an image of srcW x srcH, for an output of outW x outH. */
export function cropBox(plan: CropPlan, srcW: number, srcH: number, outW: number, outH: number): Box {
  if (plan.kind === 'whole') return { x: 0, y: 0, w: srcW, h: srcH };
  if (plan.kind === 'center') {
    const scale = plan.resizeShorter / Math.min(srcW, srcH);
    const w = clampInt(outW / scale, 1, srcW);
    const h = clampInt(outH / scale, 1, srcH);
    return { x: Math.floor((srcW - w) / 2), y: Math.floor((srcH - h) / 2), w, h };
  }
  // Clamped to the image where torchvision would draw again: one draw, so every thread agrees.
  const pixels = plan.area * srcW * srcH;
  const ratio = Math.exp(plan.logRatio);
  const w = clampInt(Math.sqrt(pixels * ratio), 1, srcW);
  const h = clampInt(Math.sqrt(pixels / ratio), 1, srcH);
  return { x: Math.floor(plan.fx * (srcW - w + 1)), y: Math.floor(plan.fy * (srcH - h + 1)), w, h };
}

/**
 * Resampling weights of one axis: output i covers source [i*scale, (i+1)*scale). A triangle
 * filter, widened to the scale when shrinking so that every source pixel counts (no aliasing).
 */
function axisTaps(src: number, dst: number): { first: Int32Array; span: number; weights: Float64Array } {
  const scale = src / dst;
  const support = Math.max(1, scale);
  const span = Math.ceil(2 * support) + 2;
  const first = new Int32Array(dst);
  const weights = new Float64Array(dst * span);
  for (let i = 0; i < dst; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(0, Math.floor(center - support));
    const hi = Math.min(src, Math.ceil(center + support));
    let sum = 0;
    for (let j = lo; j < hi; j++) {
      const w = Math.max(0, 1 - Math.abs(j + 0.5 - center) / support);
      weights[i * span + j - lo] = w;
      sum += w;
    }
    for (let j = 0; j < hi - lo; j++) weights[i * span + j] /= sum;
    first[i] = lo;
  }
  return { first, span, weights };
}

/** The box of an RGBA image in `channels` channels (grey: ITU-R 601 luma). */
function boxPixels(img: DecodedImage, box: Box, channels: 1 | 3): Uint8Array {
  const out = new Uint8Array(box.w * box.h * channels);
  let o = 0;
  for (let y = box.y; y < box.y + box.h; y++) {
    for (let x = box.x; x < box.x + box.w; x++) {
      const p = 4 * (y * img.width + x);
      const [r, g, b] = [img.rgba[p], img.rgba[p + 1], img.rgba[p + 2]];
      if (channels === 1) out[o++] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
      else {
        out[o++] = r;
        out[o++] = g;
        out[o++] = b;
      }
    }
  }
  return out;
}

/** Separable resampling of HWC bytes to outW x outH, mirrored when `flip`. */
export function resample(src: Uint8Array, w: number, h: number, c: number, outW: number, outH: number, flip: boolean): Uint8Array {
  const xs = axisTaps(w, outW);
  const ys = axisTaps(h, outH);
  const rows = new Float64Array(h * outW * c);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < outW; x++) {
      const first = xs.first[x];
      const n = Math.min(xs.span, w - first);
      for (let ch = 0; ch < c; ch++) {
        let sum = 0;
        for (let j = 0; j < n; j++) sum += xs.weights[x * xs.span + j] * src[(y * w + first + j) * c + ch];
        rows[(y * outW + x) * c + ch] = sum;
      }
    }
  }
  const out = new Uint8Array(outW * outH * c);
  for (let y = 0; y < outH; y++) {
    const first = ys.first[y];
    const n = Math.min(ys.span, h - first);
    for (let x = 0; x < outW; x++) {
      const ox = flip ? outW - 1 - x : x;
      for (let ch = 0; ch < c; ch++) {
        let sum = 0;
        for (let j = 0; j < n; j++) sum += ys.weights[y * ys.span + j] * rows[((first + j) * outW + x) * c + ch];
        out[(y * outW + ox) * c + ch] = clampInt(sum, 0, 255);
      }
    }
  }
  return out;
}

const isWebp = (file: string) => /\.webp$/i.test(file);

/** Decodes with pngjs/jpeg-js and resamples in JavaScript. */
export function decodeWithJs(req: DecodeRequest): Uint8Array {
  if (isWebp(req.file)) {
    throw new Error(`${req.file}: WebP images need the optional package sharp (npm install sharp); without it only PNG and JPEG are read`);
  }
  const img = decodeImageFile(req.file);
  const box = cropBox(req.crop, img.width, img.height, req.width, req.height);
  return resample(boxPixels(img, box, req.channels), box.w, box.h, req.channels, req.width, req.height, req.flip);
}

// The parts of sharp's API used here (sharp is optional: no compile-time dependency on its types).
interface SharpImage {
  metadata(): Promise<{ width?: number; height?: number; format?: string }>;
  extract(box: { left: number; top: number; width: number; height: number }): SharpImage;
  resize(width: number, height: number, options: { fit: 'fill'; kernel: 'linear' }): SharpImage;
  flop(): SharpImage;
  removeAlpha(): SharpImage;
  toColourspace(space: 'b-w' | 'srgb'): SharpImage;
  raw(): SharpImage;
  toBuffer(options: { resolveWithObject: true }): Promise<{ data: Buffer; info: { width: number; height: number; channels: number } }>;
}
type Sharp = ((input: Buffer, options: { limitInputPixels: number; failOn: 'error' }) => SharpImage) & {
  concurrency(n: number): number;
  cache(on: boolean): unknown;
};

let sharpModule: Sharp | null | undefined;

/** sharp when it is installed (it is an optional dependency), else undefined. Loaded once, on first use. */
export function loadSharp(): Sharp | undefined {
  if (sharpModule === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      sharpModule = require('sharp') as Sharp;
      sharpModule.cache(false); // every file is read once per epoch: caching only holds memory
    } catch {
      sharpModule = null;
    }
  }
  return sharpModule ?? undefined;
}

/** The decoder a choice means on this machine; 'sharp' where it is absent is an error. */
export function resolveDecoder(choice: DecoderChoice = 'auto'): DecoderName {
  if (choice === 'js') return 'js';
  if (loadSharp()) return 'sharp';
  if (choice === 'sharp') throw new Error('decoder sharp: the optional package sharp is not installed (npm install sharp)');
  return 'js';
}

function readBoundedFile(file: string): Buffer {
  try {
    const { size } = statSync(file);
    if (size > MAX_IMAGE_FILE_BYTES) throw new Error(`${size} bytes, more than the ${MAX_IMAGE_FILE_BYTES} allowed`);
    return readFileSync(file);
  } catch (err) {
    throw new Error(`${file}: cannot read the image: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

const SHARP_FORMATS = ['png', 'jpeg', 'webp'];

/** Decodes, crops and resizes with libvips (sharp), refusing oversized images before decoding. */
export async function decodeWithSharp(sharp: Sharp, req: DecodeRequest): Promise<Uint8Array> {
  const bytes = readBoundedFile(req.file);
  const open = () => sharp(bytes, { limitInputPixels: MAX_IMAGE_PIXELS, failOn: 'error' });
  try {
    const meta = await open().metadata();
    if (!SHARP_FORMATS.includes(meta.format ?? '')) throw new Error(`${meta.format ?? 'unknown'} data; expected PNG, JPEG or WebP`);
    const size = { width: meta.width ?? 0, height: meta.height ?? 0 };
    const problem = imageSizeProblem(size);
    if (problem) throw new Error(`not decoded: ${problem}`);
    const box = cropBox(req.crop, size.width, size.height, req.width, req.height);
    let image = open().extract({ left: box.x, top: box.y, width: box.w, height: box.h })
      .resize(req.width, req.height, { fit: 'fill', kernel: 'linear' });
    if (req.flip) image = image.flop();
    const { data, info } = await image.removeAlpha().toColourspace(req.channels === 1 ? 'b-w' : 'srgb').raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== req.channels || info.width !== req.width || info.height !== req.height) {
      throw new Error(`decoded to ${info.width}x${info.height}x${info.channels}; expected ${req.width}x${req.height}x${req.channels}`);
    }
    return new Uint8Array(data); // a copy the caller owns (and can transfer between threads)
  } catch (err) {
    const message = (err as Error).message;
    throw new Error(message.startsWith(req.file) ? message : `${req.file}: not a readable image (${message})`);
  }
}

/** Decodes one request with the named decoder. */
export async function decodeSample(decoder: DecoderName, req: DecodeRequest): Promise<Uint8Array> {
  if (decoder === 'js') return decodeWithJs(req);
  const sharp = loadSharp();
  if (!sharp) throw new Error('decoder sharp: the optional package sharp is not installed (npm install sharp)');
  return decodeWithSharp(sharp, req);
}
