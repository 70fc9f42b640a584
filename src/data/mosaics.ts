// "Fashion mosaics": a segmentation set made from Fashion-MNIST. Each sample is a canvas with a
// few garments pasted on it; a garment pixel brighter than the threshold is drawn and
// labelled with the garment's class + 1, everything else is background (class 0). Sample i
// is generated on demand from (seed, split, i), so the same options always give the same set,
// and the train/test mosaics use garments of the Fashion-MNIST train/test splits.
import type { Normalization, Split } from './dataset';
import { FASHION_MNIST_CLASSES, FashionMnist, FashionMnistOptions } from './fashion-mnist';
import { Rng } from '../random/prng';
import { RawSamples, StreamingDataset } from './streaming';

export interface MosaicOptions {
  /** Fashion-MNIST directory (default: the Debian package's). */
  dir?: string;
  /** Garments come from here instead of `dir` (tests, or sharing one loaded copy). */
  source?: FashionMnist;
  /** Canvas side, or [height, width]; each must be a multiple of 32. Default 64. */
  size?: number | [number, number];
  /** Samples per split. Defaults: 10,000 train, 2,000 test. */
  trainCount?: number;
  testCount?: number;
  /** Garments per canvas, drawn uniformly in [minItems, maxItems]. Default 2..4. */
  minItems?: number;
  maxItems?: number;
  /** Garment pixels above this fraction of full brightness are drawn and labelled. Default 0.1. */
  threshold?: number;
  /** Which set of mosaics. Default 0. */
  seed?: number;
  normalization?: Normalization;
}

interface Garment {
  y: number;
  x: number;
  index: number;
}

/** Placement attempts per garment; the one overlapping the others least wins. */
const PLACEMENT_TRIES = 4;
/** Mosaics that the normalisation statistics are measured on. */
const STATS_SAMPLES = 500;
const SPLIT_CODES: Record<Split, number> = { train: 0, val: 1, test: 2 };

function checkCount(name: string, n: number, min: number): void {
  if (!Number.isInteger(n) || n < min) throw new Error(`fashion-mosaics option ${name} must be an integer >= ${min}, got ${n}`);
}

export class FashionMosaics extends StreamingDataset {
  readonly name = 'fashion-mosaics';
  readonly task = 'segmentation' as const;
  readonly numClasses = 11;
  readonly classNames: readonly string[] = ['background', ...FASHION_MNIST_CLASSES];
  readonly ignoreLabel = undefined;
  readonly splits: readonly Split[] = ['train', 'test'];
  readonly imageShape: [number, number, number];
  readonly palette: ReadonlyArray<readonly [number, number, number]> = [
    [0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
  ];
  private readonly source: FashionMnist;
  private readonly counts: Record<'train' | 'test', number>;
  private readonly minItems: number;
  private readonly maxItems: number;
  private readonly threshold: number;
  private readonly seed: number;
  private stats?: Normalization;

  constructor(opts: MosaicOptions = {}) {
    super();
    const size = opts.size ?? 64;
    const [h, w] = typeof size === 'number' ? [size, size] : size;
    for (const side of [h, w]) {
      if (!Number.isInteger(side) || side < 32 || side % 32 !== 0) {
        throw new Error(`fashion-mosaics size must be a multiple of 32 (FC-DenseNet halves it 5 times), got ${side}`);
      }
    }
    this.imageShape = [h, w, 1];
    this.counts = { train: opts.trainCount ?? 10000, test: opts.testCount ?? 2000 };
    checkCount('trainCount', this.counts.train, 0);
    checkCount('testCount', this.counts.test, 0);
    this.minItems = opts.minItems ?? 2;
    this.maxItems = opts.maxItems ?? 4;
    checkCount('minItems', this.minItems, 1);
    checkCount('maxItems', this.maxItems, this.minItems);
    this.threshold = opts.threshold ?? 0.1;
    if (!(this.threshold >= 0 && this.threshold < 1)) {
      throw new Error(`fashion-mosaics threshold must be in [0, 1), got ${this.threshold}`);
    }
    this.seed = opts.seed ?? 0;
    if (!Number.isSafeInteger(this.seed)) throw new Error(`fashion-mosaics seed must be an integer, got ${this.seed}`);
    const fashionOpts: FashionMnistOptions = opts.dir ? { dir: opts.dir } : {};
    this.source = opts.source ?? new FashionMnist(fashionOpts);
    if (opts.normalization) this.stats = opts.normalization;
  }

  /** Measured on the first training mosaics (they depend on size, items and threshold). */
  get normalization(): Normalization {
    if (!this.stats) this.stats = this.measureStatistics();
    return this.stats;
  }

  protected splitSize(split: Split): number {
    return this.counts[split as 'train' | 'test'];
  }

  protected readSamples(split: Split, indices: Uint32Array): RawSamples {
    const [h, w] = this.imageShape;
    const pixels = new Uint8Array(indices.length * h * w);
    const labels = new Uint8Array(indices.length * h * w);
    indices.forEach((idx, i) => this.render(split, idx, pixels, labels, i * h * w));
    return { pixels, labels };
  }

  /** Draws mosaic `index` of a split into pixels/labels at `offset` (both zero there). */
  private render(split: Split, index: number, pixels: Uint8Array, labels: Uint8Array, offset: number): void {
    const w = this.imageShape[1];
    const garments = this.source.raw(split);
    const gh = garments.height;
    const gw = garments.width;
    const cut = Math.floor(this.threshold * 255);
    for (const g of this.layout(split, index, garments.count, gh, gw)) {
      const cls = garments.labels[g.index] + 1;
      const src = g.index * gh * gw;
      for (let y = 0; y < gh; y++) {
        let o = offset + (g.y + y) * w + g.x;
        let s = src + y * gw;
        for (let x = 0; x < gw; x++, o++, s++) {
          const v = garments.images[s];
          if (v > cut) {
            pixels[o] = v;
            labels[o] = cls;
          }
        }
      }
    }
  }

  /** Which garments go where on mosaic `index`; later garments cover earlier ones. */
  private layout(split: Split, index: number, poolSize: number, gh: number, gw: number): Garment[] {
    const [h, w] = this.imageShape;
    if (poolSize === 0) throw new Error(`fashion-mosaics: Fashion-MNIST ${split} has no images to build mosaics from`);
    if (gh > h || gw > w) throw new Error(`fashion-mosaics: ${gh}x${gw} garments do not fit on a ${h}x${w} canvas`);
    const rng = Rng.from(this.seed, SPLIT_CODES[split], index);
    const n = this.minItems + rng.int(this.maxItems - this.minItems + 1);
    const placed: Garment[] = [];
    for (let k = 0; k < n; k++) {
      const garmentIndex = rng.int(poolSize);
      let best: Garment | undefined;
      let bestOverlap = Infinity;
      for (let t = 0; t < PLACEMENT_TRIES; t++) {
        const cand = { y: rng.int(h - gh + 1), x: rng.int(w - gw + 1), index: garmentIndex };
        const overlap = placed.reduce((sum, p) => sum + boxOverlap(p, cand, gh, gw), 0);
        if (overlap < bestOverlap) {
          best = cand;
          bestOverlap = overlap;
        }
      }
      placed.push(best!);
    }
    return placed;
  }

  private measureStatistics(): Normalization {
    const [h, w] = this.imageShape;
    const split: Split = this.counts.train > 0 ? 'train' : 'test';
    const n = Math.min(STATS_SAMPLES, this.counts[split]);
    if (n === 0) return { mean: [0], std: [1] };
    const pixels = new Uint8Array(h * w);
    const labels = new Uint8Array(h * w);
    let sum = 0;
    let sumSq = 0;
    for (let i = 0; i < n; i++) {
      pixels.fill(0);
      this.render(split, i, pixels, labels, 0);
      for (let p = 0; p < pixels.length; p++) {
        const v = pixels[p] / 255;
        sum += v;
        sumSq += v * v;
      }
    }
    const count = n * h * w;
    const mean = sum / count;
    const std = Math.sqrt(Math.max(sumSq / count - mean * mean, 1e-12));
    return { mean: [round4(mean)], std: [round4(std)] };
  }
}

function boxOverlap(a: { y: number; x: number }, b: { y: number; x: number }, h: number, w: number): number {
  const dy = Math.max(0, Math.min(a.y, b.y) + h - Math.max(a.y, b.y));
  const dx = Math.max(0, Math.min(a.x, b.x) + w - Math.max(a.x, b.x));
  return dy * dx;
}

/** Rounded so that a checkpoint's JSON restores the exact same normalisation. */
function round4(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
