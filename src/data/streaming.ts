// The batch stream shared by all datasets: the epoch's sample order from (seed, epoch), the
// batches cut from it, and per-batch augmentation from (seed, epoch, batch index). Nothing
// depends on earlier batches, so starting at batch k gives exactly what an uninterrupted
// epoch gives from batch k on. Readers only supply raw 8-bit samples for given indices.
import {
  identityWindow, normalizationTable, randomCropFlip, randomPadCropFlip,
  windowImage, windowLabels, Window,
} from './augment';
import type { Batch, BatchOptions, Dataset, Normalization, Split, Task } from './dataset';
import { permutation, Rng } from '../random/prng';

/** Padding of the classification crop, in pixels per side (the DenseNet papers' 4). */
export const CLASSIFICATION_PAD = 4;

/** Raw samples as stored: HWC bytes, and one label per image or per pixel. */
export interface RawSamples {
  /** n * H * W * C bytes, sample after sample. */
  pixels: Uint8Array;
  /** n labels, or n * H * W for segmentation. Already checked to be in range. */
  labels: ArrayLike<number>;
}

// Separate random streams so that the order and the augmentation never share numbers.
const ORDER_STREAM = 1;
export const AUGMENT_STREAM = 2;
export const SPLIT_CODES: Record<Split, number> = { train: 0, val: 1, test: 2 };

export function checkInteger(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new Error(`batch option ${name} must be an integer >= ${min}, got ${value}`);
  }
}

/** Samples of a split of `n` that a `limit` leaves. */
export function samplesWithin(n: number, limit: number | undefined): number {
  if (limit === undefined) return n;
  checkInteger('limit', limit, 0);
  return Math.min(n, limit);
}

/** Batches an epoch of a split of `n` samples has. */
export function batchCount(n: number, opts: Pick<BatchOptions, 'batchSize' | 'dropLast' | 'limit'>): number {
  checkInteger('batchSize', opts.batchSize, 1);
  const used = samplesWithin(n, opts.limit);
  return opts.dropLast ? Math.floor(used / opts.batchSize) : Math.ceil(used / opts.batchSize);
}

/** The order in which an epoch visits the samples of a split. */
export function epochOrder(n: number, seed: number, epoch: number, split: Split, shuffle: boolean): Uint32Array {
  if (shuffle) return permutation(n, Rng.from(seed, ORDER_STREAM, SPLIT_CODES[split], epoch));
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return order;
}

export abstract class StreamingDataset implements Dataset {
  abstract readonly name: string;
  abstract readonly task: Task;
  abstract readonly imageShape: [number, number, number];
  abstract readonly numClasses: number;
  abstract readonly classNames: readonly string[];
  abstract readonly ignoreLabel: number | undefined;
  abstract readonly normalization: Normalization;
  abstract readonly splits: readonly Split[];
  readonly palette?: ReadonlyArray<readonly [number, number, number]>;

  private table?: Float32Array;

  /** Number of samples of an existing split. */
  protected abstract splitSize(split: Split): number;
  /** Raw samples `indices` of a split, in that order. */
  protected abstract readSamples(split: Split, indices: Uint32Array): RawSamples | Promise<RawSamples>;

  size(split: Split): number {
    this.checkSplit(split);
    return this.splitSize(split);
  }

  numBatches(split: Split, opts: Pick<BatchOptions, 'batchSize' | 'dropLast' | 'limit'>): number {
    return batchCount(this.size(split), opts);
  }

  async *batches(split: Split, opts: BatchOptions): AsyncGenerator<Batch, void, undefined> {
    const { batchSize, seed = 0, epoch = 0, augment = false, startBatch = 0 } = opts;
    const shuffle = opts.shuffle ?? split === 'train';
    checkInteger('seed', seed, Number.MIN_SAFE_INTEGER);
    checkInteger('epoch', epoch, 0);
    checkInteger('startBatch', startBatch, 0);
    this.checkGeometryOptions(opts);
    const n = this.samplesUsed(split, opts.limit);
    const total = this.numBatches(split, opts);
    if (startBatch > total) throw new Error(`batch option startBatch ${startBatch} is past the end of the ${split} split's epoch (${total} batches of ${batchSize})`);
    const order = epochOrder(n, seed, epoch, split, shuffle);
    for (let b = startBatch; b < total; b++) {
      const indices = order.slice(b * batchSize, Math.min(n, (b + 1) * batchSize));
      const raw = await this.readSamples(split, indices);
      const rng = Rng.from(seed, AUGMENT_STREAM, SPLIT_CODES[split], epoch, b);
      yield this.assemble(raw, indices, b, augment, opts, rng);
    }
  }

  protected checkSplit(split: Split): void {
    if (!this.splits.includes(split)) {
      throw new Error(`dataset ${this.name} has no '${split}' split (it has ${this.splits.join(', ')})`);
    }
  }

  private samplesUsed(split: Split, limit: number | undefined): number {
    return samplesWithin(this.size(split), limit);
  }

  private checkGeometryOptions(opts: BatchOptions): void {
    if (this.task === 'classification' && opts.crop) {
      throw new Error(`batch option crop applies to segmentation; ${this.name} is a classification dataset`);
    }
    if (opts.crop) {
      const [h, w] = this.imageShape;
      const [ch, cw] = opts.crop;
      if (!Number.isInteger(ch) || !Number.isInteger(cw) || ch < 1 || cw < 1 || ch > h || cw > w) {
        throw new Error(`crop [${opts.crop.join(', ')}] must be positive integers no larger than the ${h}x${w} images of ${this.name}`);
      }
    }
  }

  private normalizationLookup(): Float32Array {
    if (!this.table) this.table = normalizationTable(this.normalization, this.imageShape[2]);
    return this.table;
  }

  /** Where each sample's pixels come from, drawn in sample order from the batch's rng. */
  private windowFor(augment: boolean, opts: BatchOptions, rng: Rng): Window {
    const [h, w] = this.imageShape;
    let win: Window;
    if (!augment) win = identityWindow(h, w);
    else if (this.task === 'classification') win = randomPadCropFlip(h, w, CLASSIFICATION_PAD, rng);
    else {
      const [ch, cw] = opts.crop ?? [h, w];
      win = randomCropFlip(h, w, ch, cw, rng);
    }
    return win;
  }

  private assemble(raw: RawSamples, indices: Uint32Array, index: number, augment: boolean, opts: BatchOptions, rng: Rng): Batch {
    const [h, w, c] = this.imageShape;
    const count = indices.length;
    const table = this.normalizationLookup();
    const segmentation = this.task === 'segmentation';
    const windows = Array.from({ length: count }, () => this.windowFor(augment, opts, rng));
    const outH = windows.length ? windows[0].outH : h;
    const outW = windows.length ? windows[0].outW : w;
    const images = new Float32Array(count * outH * outW * c);
    const labels = new Int32Array(segmentation ? count * outH * outW : count);
    for (let i = 0; i < count; i++) {
      windowImage(raw.pixels, i * h * w * c, h, w, c, windows[i], table, images, i * outH * outW * c);
      if (segmentation) {
        windowLabels(raw.labels, i * h * w, h, w, windows[i], this.ignoreLabel ?? 0, labels, i * outH * outW);
      } else {
        labels[i] = raw.labels[i];
      }
    }
    return { images, labels, count, shape: [count, outH, outW, c], index, sampleIndices: indices };
  }
}
