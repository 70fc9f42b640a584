// A folder of images and masks for segmentation: DIR/images/ and DIR/masks/ with the same file stems
// (a.jpg with a.png), optionally split into DIR/images/train, val, test (and DIR/masks/ alike). Masks
// are PNGs of class ids (grey levels, or palette positions), or colours mapped to classes by a palette.
// All masks are read once when the folder is opened, to check them and count the classes' pixels
// (reported in one note); images and masks are then decoded per batch.
import { existsSync, readFileSync } from 'node:fs';
import { basename, extname, join, relative } from 'node:path';
import { decodeLabelPng } from './camvid';
import type { Normalization, Split } from './dataset';
import { dataError } from './errors';
import { requireDirectory } from './files';
import { byCodePoint, listImageFiles } from './folder-files';
import { decodeImageFile, imageSizeProblem, jpegHeader, pngHeader } from './image-file';
import { IMAGENET_NORMALIZATION } from './image-folder';
import { RawSamples, StreamingDataset } from './streaming';
import { permutation, Rng } from '../random/prng';

const LAYOUT = 'DIR/images/ and DIR/masks/ with the same file stems (masks as PNG), optionally with train/, val/, test/ inside both';
const HOLDOUT_STREAM = 0x686f6c64;

/** One colour of a palette file: the class it stands for. */
export interface PaletteEntry {
  color: [number, number, number];
  id: number;
  name: string;
}

export interface SegmentationFolderOptions {
  dir: string;
  normalization?: Normalization;
  /** Colour masks: the colour -> class table (see readPaletteFile). Without it, masks hold class ids. */
  palette?: readonly PaletteEntry[];
  /** The label that carries no class (CamVid's void is 11); left out of losses and metrics. */
  ignoreIndex?: number;
  /** Flat folders: the fraction held out as the 'val' split. Default 0.1. */
  valFraction?: number;
  /** Called once with the class frequencies when the folder is opened. */
  note?: (line: string) => void;
}

interface Pair {
  image: string;
  mask: string;
}

function parseColor(file: string, where: string, value: unknown): [number, number, number] {
  if (typeof value === 'string' && /^#[0-9a-f]{6}$/i.test(value)) {
    const n = parseInt(value.slice(1), 16);
    return [n >> 16, (n >> 8) & 255, n & 255];
  }
  if (Array.isArray(value) && value.length === 3 && value.every((v) => Number.isInteger(v) && v >= 0 && v <= 255)) {
    return value as [number, number, number];
  }
  throw dataError(file, `${where}: color ${JSON.stringify(value)}; expected [r, g, b] with 0..255 or "#rrggbb"`);
}

/**
 * A palette file: a JSON array of { "color": [r, g, b] or "#rrggbb", "id": class id, "name": "..." }.
 * Several colours may share an id; the ids other than the ignore index must be 0..n-1.
 */
export function readPaletteFile(file: string): PaletteEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw dataError(file, `is not a readable JSON palette (${(err as Error).message}); expected [{ "color": [r, g, b], "id": 0, "name": "sky" }, ...]`);
  }
  if (!Array.isArray(parsed) || parsed.length === 0) throw dataError(file, 'expected a non-empty JSON array of { "color", "id", "name" }');
  return parsed.map((entry, i) => {
    const e = entry as Record<string, unknown>;
    if (!Number.isInteger(e.id) || (e.id as number) < 0 || (e.id as number) > 255) throw dataError(file, `entry ${i}: id ${JSON.stringify(e.id)}; expected an integer 0..255`);
    if (typeof e.name !== 'string' || !e.name) throw dataError(file, `entry ${i}: expected a non-empty "name"`);
    return { color: parseColor(file, `entry ${i}`, e.color), id: e.id as number, name: e.name };
  });
}

const colorKey = (r: number, g: number, b: number) => (r << 16) | (g << 8) | b;

/** Class names by id from a palette; the ids must leave no gap below the largest. */
function paletteClasses(entries: readonly PaletteEntry[], ignoreIndex: number | undefined, where: string): string[] {
  const names: string[] = [];
  for (const e of entries) if (e.id !== ignoreIndex) names[e.id] ??= e.name;
  const missing = Array.from(names, (n, i) => (n === undefined ? i : -1)).filter((i) => i >= 0);
  if (names.length === 0 || missing.length) {
    throw dataError(where, `class ids must be 0..n-1 apart from the ignore index; ${names.length ? `missing ${missing.join(', ')}` : 'there are none'}`);
  }
  return names;
}

function stem(file: string): string {
  return basename(file, extname(file));
}

function listPairs(imageDir: string, maskDir: string, root: string): Pair[] {
  requireDirectory(maskDir, `the masks of ${imageDir} (${LAYOUT})`);
  const masks = new Map<string, string>();
  for (const m of listImageFiles(maskDir, root)) {
    if (extname(m).toLowerCase() === '.png') masks.set(stemPath(maskDir, m), m);
  }
  const images = listImageFiles(imageDir, root);
  if (images.length === 0) throw dataError(imageDir, `holds no images; expected ${LAYOUT}`);
  return images.map((image) => {
    const mask = masks.get(stemPath(imageDir, image));
    if (!mask) throw dataError(image, `has no mask; expected ${join(maskDir, stemPath(imageDir, image))}.png`);
    return { image, mask };
  });
}

/** A file's path below `dir` without its extension: the key that pairs an image with its mask. */
function stemPath(dir: string, file: string): string {
  const rel = relative(dir, file);
  return join(rel.slice(0, rel.length - basename(rel).length), stem(file));
}

function imageSize(file: string): { width: number; height: number } {
  const bytes = readFileSync(file);
  const header = pngHeader(bytes) ?? jpegHeader(bytes);
  if (!header) throw dataError(file, 'is not a PNG or JPEG image with a readable size (segmentation images are decoded without sharp)');
  const problem = imageSizeProblem(header);
  if (problem) throw dataError(file, `is not decoded: ${problem}`);
  return header;
}

export class SegmentationFolder extends StreamingDataset {
  readonly name = 'segmentation-folder';
  readonly task = 'segmentation' as const;
  readonly imageShape: [number, number, number];
  readonly numClasses: number;
  readonly classNames: readonly string[];
  readonly ignoreLabel: number | undefined;
  readonly normalization: Normalization;
  readonly splits: readonly Split[];
  readonly palette?: ReadonlyArray<readonly [number, number, number]>;
  readonly dir: string;
  /** Pixels of each class (and, last, of the ignore index) over every mask, by split. */
  readonly pixelCounts = new Map<Split, number[]>();
  private readonly pairs = new Map<Split, Pair[]>();
  private readonly colorToId?: Map<number, number>;
  /** Classes the masks are checked against: the palette's, or after the first scan the largest id + 1. */
  private knownClasses?: number;

  constructor(opts: SegmentationFolderOptions) {
    super();
    this.dir = opts.dir;
    requireDirectory(this.dir, LAYOUT);
    requireDirectory(join(this.dir, 'images'), LAYOUT);
    this.ignoreLabel = opts.ignoreIndex;
    if (opts.ignoreIndex !== undefined && !(Number.isInteger(opts.ignoreIndex) && opts.ignoreIndex >= 0 && opts.ignoreIndex <= 255)) {
      throw new Error(`segmentation-folder ignore index ${opts.ignoreIndex}: expected an integer 0..255`);
    }
    this.listSplits(opts.valFraction ?? 0.1);
    this.splits = (['train', 'val', 'test'] as const).filter((s) => this.pairs.has(s));
    const first = this.pairs.get(this.splits[0])![0].image;
    const { width, height } = imageSize(first);
    this.imageShape = [height, width, 3];
    this.normalization = opts.normalization ?? IMAGENET_NORMALIZATION;
    if (opts.palette) {
      this.colorToId = new Map(opts.palette.map((e) => [colorKey(...e.color), e.id]));
      this.classNames = paletteClasses(opts.palette, opts.ignoreIndex, 'palette');
      this.palette = this.classNames.map((_, id) => opts.palette!.find((e) => e.id === id)!.color);
      this.knownClasses = this.classNames.length;
    }
    const maxLabel = this.scanMasks();
    this.classNames ??= Array.from({ length: maxLabel + 1 }, (_, i) => `class ${i}`);
    this.numClasses = this.knownClasses = this.classNames.length;
    opts.note?.(this.frequencyNote());
  }

  /** The image and mask file of a sample. */
  files(split: Split, index: number): Pair {
    this.checkSplit(split);
    const pair = this.pairs.get(split)![index];
    if (!pair) throw new Error(`segmentation-folder ${split} has no sample ${index} (it has ${this.size(split)})`);
    return pair;
  }

  protected splitSize(split: Split): number {
    return this.pairs.get(split)!.length;
  }

  protected readSamples(split: Split, indices: Uint32Array): RawSamples {
    const [h, w] = this.imageShape;
    const pixels = new Uint8Array(indices.length * h * w * 3);
    const labels = new Uint8Array(indices.length * h * w);
    indices.forEach((s, i) => {
      const pair = this.pairs.get(split)![s];
      const img = decodeImageFile(pair.image);
      if (img.width !== w || img.height !== h) throw dataError(pair.image, `is ${img.width}x${img.height}; expected ${w}x${h} like the first image, ${this.pairs.get(this.splits[0])![0].image}`);
      for (let p = 0, o = i * h * w * 3; p < w * h; p++, o += 3) pixels.set(img.rgba.subarray(4 * p, 4 * p + 3), o);
      labels.set(this.readMask(pair), i * h * w);
    });
    return { pixels, labels };
  }

  private listSplits(valFraction: number): void {
    const present = (['train', 'val', 'test'] as const).filter((s) => existsSync(join(this.dir, 'images', s)));
    for (const split of present) this.pairs.set(split, listPairs(join(this.dir, 'images', split), join(this.dir, 'masks', split), this.dir));
    if (present.length) return;
    const all = listPairs(join(this.dir, 'images'), join(this.dir, 'masks'), this.dir);
    const held = Math.round(valFraction * all.length);
    const order = permutation(all.length, Rng.from(0, HOLDOUT_STREAM));
    const byImage = (a: Pair, b: Pair) => byCodePoint(a.image, b.image);
    const pick = (keep: (rank: number) => boolean) => Array.from(order).filter((_, rank) => keep(rank)).map((i) => all[i]).sort(byImage);
    this.pairs.set('train', pick((rank) => rank >= held));
    if (held > 0) this.pairs.set('val', pick((rank) => rank < held));
  }

  /** Class ids of a mask, checked against the image size and the classes. */
  private readMask(pair: Pair): Uint8Array {
    const [h, w] = this.imageShape;
    const { width, height, labels } = this.colorToId ? this.colorMask(pair.mask) : decodeLabelPng(pair.mask, readFileSync(pair.mask));
    if (width !== w || height !== h) throw dataError(pair.mask, `is ${width}x${height} but its image ${pair.image} is ${w}x${h}; expected the same size`);
    if (this.knownClasses !== undefined) {
      for (let p = 0; p < labels.length; p++) {
        if (labels[p] >= this.knownClasses && labels[p] !== this.ignoreLabel) throw this.badLabel(pair.mask, labels[p], p, w);
      }
    }
    return labels;
  }

  private badLabel(mask: string, label: number, p: number, w: number): Error {
    const ignore = this.ignoreLabel === undefined ? '' : `, or ${this.ignoreLabel} to ignore`;
    return dataError(mask, `label ${label} at pixel (${p % w}, ${Math.floor(p / w)}) is out of range; expected 0..${this.knownClasses! - 1}${ignore}`);
  }

  private colorMask(file: string): { width: number; height: number; labels: Uint8Array } {
    const { width, height, rgba } = decodeImageFile(file);
    const labels = new Uint8Array(width * height);
    for (let p = 0; p < labels.length; p++) {
      const id = this.colorToId!.get(colorKey(rgba[4 * p], rgba[4 * p + 1], rgba[4 * p + 2]));
      if (id === undefined) {
        throw dataError(file, `colour (${rgba[4 * p]}, ${rgba[4 * p + 1]}, ${rgba[4 * p + 2]}) at pixel (${p % width}, ${Math.floor(p / width)}) is not in the palette`);
      }
      labels[p] = id;
    }
    return { width, height, labels };
  }

  /** Counts every mask's pixels by label; returns the largest class label seen. */
  private scanMasks(): number {
    const byLabel = new Map<Split, Float64Array>();
    let maxLabel = -1;
    for (const [split, pairs] of this.pairs) {
      const counts = new Float64Array(256);
      for (const pair of pairs) for (const l of this.readMask(pair)) counts[l]++;
      counts.forEach((n, l) => { if (n > 0 && l !== this.ignoreLabel) maxLabel = Math.max(maxLabel, l); });
      byLabel.set(split, counts);
    }
    if (maxLabel < 0) throw dataError(join(this.dir, 'masks'), 'every mask pixel is the ignore index; expected some labelled pixels');
    const classes = this.classNames?.length ?? maxLabel + 1;
    for (const [split, counts] of byLabel) {
      this.pixelCounts.set(split, [...Array.from(counts.subarray(0, classes)), this.ignoreLabel === undefined ? 0 : counts[this.ignoreLabel]]);
    }
    return maxLabel;
  }

  private frequencyNote(): string {
    const split = this.splits[0];
    const counts = this.pixelCounts.get(split)!;
    const total = counts.reduce((a, b) => a + b, 0);
    const pct = (n: number) => `${((100 * n) / total).toFixed(1)}%`;
    const classes = this.classNames.map((name, i) => `${name} ${pct(counts[i])}`).join(', ');
    const ignored = this.ignoreLabel === undefined ? '' : `; ignored (${this.ignoreLabel}) ${pct(counts[this.numClasses])}`;
    const sizes = this.splits.map((s) => `${s} ${this.size(s)}`).join(', ');
    return `${this.dir}: ${this.numClasses} classes, ${sizes} images of ${this.imageShape[1]}x${this.imageShape[0]}; pixels of ${split}: ${classes}${ignored}`;
  }
}
