// Decoding PNG and JPEG files to RGB(A) pixels, with errors that name the file. The size in the
// header is checked against MAX_IMAGE_PIXELS before decoding: a file of a few bytes can claim
// 20000x20000 pixels, which decoders would try to allocate (1.6 GB of RGBA, and more on the way).
import * as fs from 'fs';
import { PNG } from 'pngjs';
import * as jpeg from 'jpeg-js';

/** Largest image decoded: 25 megapixels (a 6000x4000 photo), 100 MB of RGBA. */
export const MAX_IMAGE_PIXELS = 25_000_000;
/** Largest image file read. */
export const MAX_IMAGE_FILE_BYTES = 256 * 2 ** 20;

export interface DecodedImage {
  width: number;
  height: number;
  /** RGBA, 8 bits per channel, row-major. */
  rgba: Uint8Array;
}

export interface ImageHeader {
  width: number;
  height: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Width and height from a PNG's IHDR chunk; undefined when `bytes` does not start like a PNG. */
export function pngHeader(bytes: Uint8Array): ImageHeader | undefined {
  if (bytes.length < 24 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/** Start-of-frame markers (baseline, progressive, lossless...): all of 0xC0-0xCF but DHT, JPG and DAC. */
const isStartOfFrame = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

/** Width and height from a JPEG's start-of-frame segment; undefined when none comes before the image data. */
export function jpegHeader(bytes: Uint8Array): ImageHeader | undefined {
  let i = 2;
  while (i + 9 <= bytes.length && bytes[i] === 0xff) {
    const marker = bytes[i + 1];
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    if (isStartOfFrame(marker)) return { height: (bytes[i + 5] << 8) | bytes[i + 6], width: (bytes[i + 7] << 8) | bytes[i + 8] };
    if (marker === 0xda || marker === 0xd9) return undefined; // image data or end before any frame header
    const standalone = marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8);
    i += standalone ? 2 : 2 + ((bytes[i + 2] << 8) | bytes[i + 3]);
  }
  return undefined;
}

/** Why an image of this size is not decoded; undefined when it may be. */
export function imageSizeProblem({ width, height }: ImageHeader): string | undefined {
  if (width < 1 || height < 1) return `its header gives a size of ${width}x${height} pixels`;
  if (width * height > MAX_IMAGE_PIXELS) {
    return `its header gives ${width}x${height} pixels (${(width * height / 1e6).toFixed(0)} megapixels); the limit is ${MAX_IMAGE_PIXELS / 1e6} megapixels`;
  }
  return undefined;
}

function readImageBytes(file: string): Buffer {
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) throw new Error('not a regular file');
    if (stat.size > MAX_IMAGE_FILE_BYTES) throw new Error(`${stat.size} bytes, more than the ${MAX_IMAGE_FILE_BYTES} allowed`);
    return fs.readFileSync(file);
  } catch (err) {
    throw new Error(`${file}: cannot read the image: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function decodeImageFile(file: string): DecodedImage {
  const bytes = readImageBytes(file);
  const isPng = bytes.length >= 8 && bytes.readUInt32BE(0) === 0x89504e47;
  const isJpeg = bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
  if (!isPng && !isJpeg) throw new Error(`${file}: not a PNG or JPEG image (unrecognised file signature)`);
  const kind = isPng ? 'PNG' : 'JPEG';
  const header = isPng ? pngHeader(bytes) : jpegHeader(bytes);
  if (!header) throw new Error(`${file}: not a readable ${kind} image (no image size in its header)`);
  const problem = imageSizeProblem(header);
  if (problem) throw new Error(`${file}: ${kind} image not decoded: ${problem}`);
  try {
    if (isPng) {
      const png = PNG.sync.read(bytes);
      return { width: png.width, height: png.height, rgba: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.length) };
    }
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6 });
    return { width: img.width, height: img.height, rgba: img.data };
  } catch (err) {
    throw new Error(`${file}: not a readable ${kind} image (${(err as Error).message})`);
  }
}
