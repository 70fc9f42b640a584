// CamVid in the SegNet layout: train/, val/, test/ hold RGB PNGs and trainannot/, valannot/,
// testannot/ hold PNGs of the same names whose pixels are class indices 0-10, 11 = void.
// Only the file lists are read up front; PNGs are decoded per batch.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import type { Normalization, Split } from './dataset';
import { dataError } from './errors';
import { requireDirectory } from './files';
import { RawSamples, StreamingDataset } from './streaming';
import { ImageHeader, imageSizeProblem, pngHeader } from './image-file';

export const CAMVID_CLASSES: readonly string[] = [
  'Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree',
  'SignSymbol', 'Fence', 'Car', 'Pedestrian', 'Bicyclist',
];

export const CAMVID_VOID = 11;

/** The usual CamVid colour of each class (void is black). */
export const CAMVID_PALETTE: ReadonlyArray<readonly [number, number, number]> = [
  [128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222], [128, 128, 0],
  [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0], [0, 128, 192],
];

/** Training-set RGB statistics as commonly used with FC-DenseNet on CamVid. */
export const CAMVID_NORMALIZATION: Normalization = {
  mean: [0.4119, 0.4251, 0.4327],
  std: [0.2741, 0.2851, 0.2828],
};

const LAYOUT = 'the SegNet CamVid layout: train/, trainannot/, val/, valannot/, test/, testannot/ with PNGs of the same names';

export interface CamVidOptions {
  dir: string;
  normalization?: Normalization;
}

interface Pair {
  image: string;
  label: string;
}

/** Width and height from a PNG's IHDR chunk, without decoding the image; refused past MAX_IMAGE_PIXELS. */
export function readPngHeader(file: string, bytes: Uint8Array): ImageHeader {
  const header = pngHeader(bytes);
  if (!header) throw dataError(file, 'is not a PNG file (no PNG signature and IHDR header)');
  const problem = imageSizeProblem(header);
  if (problem) throw dataError(file, `is not decoded: ${problem}`);
  return header;
}

function decodePng(file: string, bytes: Uint8Array, skipRescale: boolean) {
  const header = pngHeader(bytes);
  const problem = header && imageSizeProblem(header);
  if (problem) throw dataError(file, `is not decoded: ${problem}`);
  try {
    return PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { skipRescale });
  } catch (err) {
    throw dataError(file, `is not a readable PNG (${(err as Error).message})`);
  }
}

/**
 * Class indices of a label PNG. Grey images carry them as grey levels; palette images as
 * palette positions (pngjs expands palettes to colours, so the colours are mapped back).
 */
export function decodeLabelPng(file: string, bytes: Uint8Array): { width: number; height: number; labels: Uint8Array } {
  const png = decodePng(file, bytes, true);
  const { width, height } = png;
  const data = png.data as unknown as ArrayLike<number>;
  const labels = new Uint8Array(width * height);
  const meta = png as unknown as { colorType?: number; palette?: number[][] };
  if (meta.colorType === 3 && meta.palette) {
    const indexOf = new Map<number, number>();
    meta.palette.forEach((rgba, i) => {
      const key = ((rgba[0] << 24) | (rgba[1] << 16) | (rgba[2] << 8) | rgba[3]) >>> 0;
      if (!indexOf.has(key)) indexOf.set(key, i);
    });
    for (let p = 0; p < labels.length; p++) {
      const o = 4 * p;
      const key = ((data[o] << 24) | (data[o + 1] << 16) | (data[o + 2] << 8) | data[o + 3]) >>> 0;
      labels[p] = Math.min(255, indexOf.get(key) ?? 255);
    }
    return { width, height, labels };
  }
  for (let p = 0; p < labels.length; p++) {
    const o = 4 * p;
    if (data[o] !== data[o + 1] || data[o] !== data[o + 2]) {
      throw dataError(file, `pixel (${p % width}, ${Math.floor(p / width)}) is a colour; expected a grey or palette PNG of class indices`);
    }
    labels[p] = Math.min(255, data[o]);
  }
  return { width, height, labels };
}

export class CamVid extends StreamingDataset {
  readonly name = 'camvid';
  readonly task = 'segmentation' as const;
  readonly numClasses = CAMVID_CLASSES.length;
  readonly classNames = CAMVID_CLASSES;
  readonly ignoreLabel = CAMVID_VOID;
  readonly palette = CAMVID_PALETTE;
  readonly normalization: Normalization;
  readonly imageShape: [number, number, number];
  readonly splits: readonly Split[];
  readonly dir: string;
  private readonly pairs = new Map<Split, Pair[]>();

  constructor(opts: CamVidOptions) {
    super();
    this.dir = opts.dir;
    requireDirectory(this.dir, LAYOUT);
    for (const split of ['train', 'val', 'test'] as const) {
      if (existsSync(join(this.dir, split))) this.pairs.set(split, this.listPairs(split));
    }
    if (this.pairs.size === 0) throw dataError(this.dir, `has none of train/, val/, test/; expected ${LAYOUT}`);
    this.splits = [...this.pairs.keys()];
    this.imageShape = this.firstImageShape();
    this.normalization = opts.normalization ?? CAMVID_NORMALIZATION;
  }

  /** The image and label file of a sample (for reports and overlays). */
  files(split: Split, index: number): Pair {
    this.checkSplit(split);
    const pair = this.pairs.get(split)![index];
    if (!pair) throw new Error(`camvid ${split} has no sample ${index} (it has ${this.size(split)})`);
    return pair;
  }

  protected splitSize(split: Split): number {
    return this.pairs.get(split)!.length;
  }

  protected async readSamples(split: Split, indices: Uint32Array): Promise<RawSamples> {
    const [h, w] = this.imageShape;
    const pixels = new Uint8Array(indices.length * h * w * 3);
    const labels = new Uint8Array(indices.length * h * w);
    const pairs = Array.from(indices, (i) => this.pairs.get(split)![i]);
    // Read the batch's files concurrently, decode one at a time.
    const buffers = await Promise.all(pairs.map((p) => Promise.all([readFile(p.image), readFile(p.label)])));
    pairs.forEach((pair, i) => {
      const [imageBytes, labelBytes] = buffers[i];
      this.decodeImage(pair.image, imageBytes, pixels, i * h * w * 3);
      this.decodeLabels(pair, labelBytes, labels, i * h * w);
    });
    return { pixels, labels };
  }

  private listPairs(split: Split): Pair[] {
    const imageDir = join(this.dir, split);
    const labelDir = join(this.dir, `${split}annot`);
    requireDirectory(labelDir, `the label PNGs of ${imageDir} (${LAYOUT})`);
    const names = readdirSync(imageDir).filter((n) => n.toLowerCase().endsWith('.png')).sort();
    if (names.length === 0) throw dataError(imageDir, `holds no .png images; expected ${LAYOUT}`);
    return names.map((name) => {
      const pair = { image: join(imageDir, name), label: join(labelDir, name) };
      if (!existsSync(pair.label)) {
        throw dataError(pair.label, `missing; every image in ${imageDir} needs a label PNG of the same name in ${labelDir}`);
      }
      return pair;
    });
  }

  private firstImageShape(): [number, number, number] {
    const first = this.pairs.values().next().value as Pair[];
    const file = first[0].image;
    const { width, height } = readPngHeader(file, readFileSync(file));
    return [height, width, 3];
  }

  private decodeImage(file: string, bytes: Uint8Array, dst: Uint8Array, offset: number): void {
    const [h, w] = this.imageShape;
    const png = decodePng(file, bytes, false);
    if (png.width !== w || png.height !== h) {
      throw dataError(file, `is ${png.width}x${png.height}; expected ${w}x${h} like the other CamVid images`);
    }
    const rgba = png.data;
    for (let p = 0, o = offset; p < w * h; p++, o += 3) {
      dst[o] = rgba[4 * p];
      dst[o + 1] = rgba[4 * p + 1];
      dst[o + 2] = rgba[4 * p + 2];
    }
  }

  private decodeLabels(pair: Pair, bytes: Uint8Array, dst: Uint8Array, offset: number): void {
    const [h, w] = this.imageShape;
    const { width, height, labels } = decodeLabelPng(pair.label, bytes);
    if (width !== w || height !== h) {
      throw dataError(pair.label, `is ${width}x${height} but its image ${pair.image} is ${w}x${h}; expected the same size`);
    }
    for (let p = 0; p < labels.length; p++) {
      if (labels[p] > CAMVID_VOID) {
        throw dataError(pair.label, `label ${labels[p]} at pixel (${p % w}, ${Math.floor(p / w)}) is out of range; expected 0..10, or 11 for void`);
      }
    }
    dst.set(labels, offset);
  }
}
