// A folder of images, one sub-folder per class (torchvision's ImageFolder): DIR/<class>/*.png|jpg|jpeg|webp,
// or DIR/train/<class>/..., DIR/val/..., DIR/test/... Only the file list is read when opening; images
// are read, decoded, cropped and resized as batches need them, on worker threads, the next batches
// while the current one trains. Crops and flips are drawn in this thread from (seed, epoch, batch),
// so the batches are the same whichever worker decodes what, and whenever.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { identityWindow, normalizationTable, randomPadCropFlip, Window, windowImage } from './augment';
import type { Batch, BatchOptions, Dataset, Normalization, Split } from './dataset';
import { decoderFunction, defaultWorkerCount } from './decode-pool';
import { dataError } from './errors';
import { requireDirectory } from './files';
import { byCodePoint, listImageFiles, subdirectories } from './folder-files';
import { CropPlan, DecodeRequest, DecoderChoice, resolveDecoder } from './image-decoder';
import { AUGMENT_STREAM, CLASSIFICATION_PAD, batchCount, checkInteger, epochOrder, samplesWithin, SPLIT_CODES } from './streaming';
import { permutation, Rng } from '../random/prng';

/** 'imagenet': random-resized crop + flip, evaluation on the centre after resizing; 'cifar': resize, pad-4 crop + flip. */
export type Augmentation = 'cifar' | 'imagenet';
export const AUGMENTATIONS: readonly Augmentation[] = ['cifar', 'imagenet'];

export const IMAGENET_NORMALIZATION: Normalization = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const IMAGENET_GREY: Normalization = { mean: [0.449], std: [0.226] };

/** torchvision's RandomResizedCrop defaults and the 256/224 evaluation resize. */
const CROP_AREA: [number, number] = [0.08, 1];
const CROP_LOG_RATIO: [number, number] = [Math.log(3 / 4), Math.log(4 / 3)];
const EVAL_RESIZE_RATIO = 256 / 224;
/** The held-out split is drawn from its own stream: changing --seed does not move images between splits. */
const HOLDOUT_STREAM = 0x686f6c64;

const LAYOUT = 'DIR/<class>/*.png|jpg|jpeg|webp, or DIR/train/<class>/... with DIR/val/ and DIR/test/ alike';

export interface ImageFolderOptions {
  dir: string;
  /** [H, W] or [H, W, C] (C = 1 or 3) of the samples: the model's input. Default [224, 224, 3]. */
  inputShape?: readonly number[];
  /** Default: ImageNet statistics. */
  normalization?: Normalization;
  /** Flat folders: the fraction of each class held out as the 'val' split. Default 0.1. */
  valFraction?: number;
  /** Default 'imagenet'. */
  augmentation?: Augmentation;
  /** Default 'auto': sharp where installed, else pure JS. */
  decoder?: DecoderChoice;
  /** Decode threads; 0 decodes in this thread. Default: one per core. */
  workers?: number;
  /** Batches decoded ahead of the one being used. Default 2. */
  prefetch?: number;
}

interface Sample {
  file: string;
  label: number;
}

function checkInputShape(shape: readonly number[]): [number, number, 1 | 3] {
  const [h, w, c = 3] = shape;
  if ((shape.length !== 2 && shape.length !== 3) || ![h, w].every((v) => Number.isInteger(v) && v >= 1) || (c !== 1 && c !== 3)) {
    throw new Error(`image-folder input shape [${shape.join(', ')}]: expected [H, W] or [H, W, C] with positive sizes and C 1 or 3`);
  }
  return [h, w, c];
}

/** Samples of one split folder holding a sub-folder per class; `classNames` fixes the labels when given. */
function listClasses(dir: string, root: string, classNames?: readonly string[]): { classNames: string[]; samples: Sample[] } {
  const found = subdirectories(dir);
  if (found.length === 0) throw dataError(dir, `has no class folders; expected ${LAYOUT}`);
  const names = classNames ? [...classNames] : found;
  const unknown = found.filter((n) => !names.includes(n));
  if (unknown.length) throw dataError(dir, `has class folders the training split lacks (${unknown.join(', ')}); every split needs the same classes`);
  const samples: Sample[] = [];
  for (const name of found) {
    const files = listImageFiles(join(dir, name), root);
    if (files.length === 0) throw dataError(join(dir, name), 'holds no .png, .jpg, .jpeg or .webp images; every class folder needs at least one');
    for (const file of files) samples.push({ file, label: names.indexOf(name) });
  }
  return { classNames: names, samples };
}

/** Each class's samples split into kept and held out, the same way for the same files. */
function holdOut(samples: Sample[], numClasses: number, fraction: number): { train: Sample[]; val: Sample[] } {
  const train: Sample[] = [];
  const val: Sample[] = [];
  for (let label = 0; label < numClasses; label++) {
    const own = samples.filter((s) => s.label === label);
    const order = permutation(own.length, Rng.from(0, HOLDOUT_STREAM, label));
    const held = Math.round(fraction * own.length);
    order.forEach((idx, rank) => (rank < held ? val : train).push(own[idx]));
  }
  const byFile = (a: Sample, b: Sample) => byCodePoint(a.file, b.file);
  return { train: train.sort(byFile), val: val.sort(byFile) };
}

export class ImageFolder implements Dataset {
  readonly name = 'image-folder';
  readonly task = 'classification' as const;
  readonly ignoreLabel = undefined;
  readonly imageShape: [number, number, number];
  readonly numClasses: number;
  readonly classNames: readonly string[];
  readonly normalization: Normalization;
  readonly splits: readonly Split[];
  readonly augmentation: Augmentation;
  readonly valFraction: number;
  readonly decoder: 'js' | 'sharp';
  readonly dir: string;
  private readonly samples = new Map<Split, Sample[]>();
  private readonly decode: (request: DecodeRequest) => Promise<Uint8Array>;
  private readonly prefetch: number;
  private table?: Float32Array;

  constructor(opts: ImageFolderOptions) {
    this.dir = opts.dir;
    requireDirectory(this.dir, LAYOUT);
    const [h, w, c] = checkInputShape(opts.inputShape ?? [224, 224, 3]);
    this.imageShape = [h, w, c];
    this.valFraction = opts.valFraction ?? 0.1;
    if (!(this.valFraction >= 0 && this.valFraction < 1)) throw new Error(`image-folder valFraction must be in [0, 1), got ${this.valFraction}`);
    this.augmentation = opts.augmentation ?? 'imagenet';
    if (!AUGMENTATIONS.includes(this.augmentation)) throw new Error(`image-folder augmentation '${this.augmentation}': expected ${AUGMENTATIONS.join(' or ')}`);
    this.classNames = this.listSplits();
    this.numClasses = this.classNames.length;
    this.splits = (['train', 'val', 'test'] as const).filter((s) => this.samples.has(s));
    this.normalization = opts.normalization ?? (c === 1 ? IMAGENET_GREY : IMAGENET_NORMALIZATION);
    this.decoder = resolveDecoder(opts.decoder);
    const workers = opts.workers ?? defaultWorkerCount();
    checkInteger('workers', workers, 0);
    this.prefetch = opts.prefetch ?? 2;
    checkInteger('prefetch', this.prefetch, 0);
    this.decode = decoderFunction(this.decoder, workers);
  }

  /** The image file of a sample, with its label. */
  file(split: Split, index: number): Sample {
    const sample = this.splitSamples(split)[index];
    if (!sample) throw new Error(`image-folder ${split} has no sample ${index} (it has ${this.size(split)})`);
    return sample;
  }

  size(split: Split): number {
    return this.splitSamples(split).length;
  }

  numBatches(split: Split, opts: Pick<BatchOptions, 'batchSize' | 'dropLast' | 'limit'>): number {
    return batchCount(this.size(split), opts);
  }

  async *batches(split: Split, opts: BatchOptions): AsyncGenerator<Batch, void, undefined> {
    const { batchSize, seed = 0, epoch = 0, augment = false, startBatch = 0 } = opts;
    checkInteger('seed', seed, Number.MIN_SAFE_INTEGER);
    checkInteger('epoch', epoch, 0);
    checkInteger('startBatch', startBatch, 0);
    if (opts.crop) throw new Error('batch option crop applies to segmentation; image-folder is a classification dataset');
    const n = this.samplesUsed(split, opts.limit);
    const total = this.numBatches(split, opts);
    if (startBatch > total) throw new Error(`batch option startBatch ${startBatch} is past the end of the ${split} split's epoch (${total} batches of ${batchSize})`);
    const order = epochOrder(n, seed, epoch, split, opts.shuffle ?? split === 'train');
    const load = (b: number) => {
      const rng = Rng.from(seed, AUGMENT_STREAM, SPLIT_CODES[split], epoch, b);
      return this.loadBatch(split, order.slice(b * batchSize, Math.min(n, (b + 1) * batchSize)), b, augment, rng);
    };
    // Batches in flight: the one to yield next and `prefetch` more, decoding while the caller trains.
    const ahead: Promise<Batch>[] = [];
    let next = startBatch;
    const fill = () => {
      while (next < total && ahead.length <= this.prefetch) {
        const p = load(next++);
        p.catch(() => undefined); // a batch the caller never reaches must not fail the process
        ahead.push(p);
      }
    };
    fill();
    while (ahead.length) {
      const batch = await ahead.shift()!;
      fill();
      yield batch;
    }
  }

  private listSplits(): string[] {
    const present = (['train', 'val', 'test'] as const).filter((s) => existsSync(join(this.dir, s)));
    if (present.length) {
      const first = listClasses(join(this.dir, present[0]), this.dir);
      this.samples.set(present[0], first.samples);
      for (const split of present.slice(1)) this.samples.set(split, listClasses(join(this.dir, split), this.dir, first.classNames).samples);
      return first.classNames;
    }
    const all = listClasses(this.dir, this.dir);
    const { train, val } = holdOut(all.samples, all.classNames.length, this.valFraction);
    this.samples.set('train', train);
    if (val.length) this.samples.set('val', val);
    return all.classNames;
  }

  private splitSamples(split: Split): Sample[] {
    const samples = this.samples.get(split);
    if (!samples) throw new Error(`dataset image-folder (${this.dir}) has no '${split}' split (it has ${this.splits.join(', ')})`);
    return samples;
  }

  private samplesUsed(split: Split, limit: number | undefined): number {
    return samplesWithin(this.size(split), limit);
  }

  /** What to decode for one sample, and the window applied to the decoded pixels; draws from rng in sample order. */
  private plan(augment: boolean, rng: Rng): { crop: CropPlan; flip: boolean; window: Window } {
    const [h, w] = this.imageShape;
    if (!augment) {
      const crop: CropPlan = this.augmentation === 'imagenet' ? { kind: 'center', resizeShorter: Math.round(Math.min(h, w) * EVAL_RESIZE_RATIO) } : { kind: 'whole' };
      return { crop, flip: false, window: identityWindow(h, w) };
    }
    if (this.augmentation === 'cifar') return { crop: { kind: 'whole' }, flip: false, window: randomPadCropFlip(h, w, CLASSIFICATION_PAD, rng) };
    const uniform = ([lo, hi]: [number, number]) => lo + (hi - lo) * rng.float();
    const crop: CropPlan = { kind: 'random-resized', area: uniform(CROP_AREA), logRatio: uniform(CROP_LOG_RATIO), fx: rng.float(), fy: rng.float() };
    return { crop, flip: rng.bool(), window: identityWindow(h, w) };
  }

  private async loadBatch(split: Split, indices: Uint32Array, index: number, augment: boolean, rng: Rng): Promise<Batch> {
    const [h, w, c] = this.imageShape;
    const samples = this.splitSamples(split);
    const plans = Array.from(indices, () => this.plan(augment, rng));
    const pixels = await Promise.all(Array.from(indices, (s, i) => this.decode({
      file: samples[s].file, crop: plans[i].crop, flip: plans[i].flip, height: h, width: w, channels: c as 1 | 3,
    })));
    this.table ??= normalizationTable(this.normalization, c);
    const images = new Float32Array(indices.length * h * w * c);
    const labels = new Int32Array(indices.length);
    pixels.forEach((p, i) => {
      windowImage(p, 0, h, w, c, plans[i].window, this.table!, images, i * h * w * c);
      labels[i] = samples[indices[i]].label;
    });
    return { images, labels, count: indices.length, shape: [indices.length, h, w, c], index, sampleIndices: indices };
  }
}
