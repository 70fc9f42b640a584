// The one interface every dataset offers the trainer: facts about the data, plus a
// seeded, resumable stream of normalised NHWC batches in plain typed arrays (no tfjs).

export type Task = 'classification' | 'segmentation';
export type Split = 'train' | 'val' | 'test';

export interface Normalization {
  /** Per-channel mean of pixel values scaled to [0, 1]. */
  mean: number[];
  /** Per-channel standard deviation, same scale. */
  std: number[];
}

export interface BatchOptions {
  batchSize: number;
  /** Data-order seed; shuffle order and augmentation follow from (seed, epoch). Default 0. */
  seed?: number;
  /** Default 0. */
  epoch?: number;
  /** Random crop/flip (see augment.ts). Default false. */
  augment?: boolean;
  /** Default: true for 'train', false for the other splits. */
  shuffle?: boolean;
  /** Skip the first batches of the epoch (resume mid-epoch); the rest is identical. Default 0. */
  startBatch?: number;
  /** Leave out a final batch smaller than batchSize. Default false. */
  dropLast?: boolean;
  /** Use only the first `limit` samples of the split (before shuffling). */
  limit?: number;
  /** Segmentation: size [h, w] of the random crop taken when augmenting. Default: the whole image. */
  crop?: [number, number];
}

export interface Batch {
  /** NHWC, normalised with the dataset's mean/std. */
  images: Float32Array;
  /** One class per image [N], or one class per pixel [N, H, W] for segmentation. */
  labels: Int32Array;
  /** Number of samples in this batch (the last one may be short). */
  count: number;
  /** [N, H, W, C] of `images`. */
  shape: [number, number, number, number];
  /** Position of this batch within the epoch, counting from 0. */
  index: number;
  /** Which samples of the split the batch holds, in order. */
  sampleIndices: Uint32Array;
}

export interface Dataset {
  readonly name: string;
  readonly task: Task;
  /** [H, W, C] of one stored image (batches may be cropped or padded from it). */
  readonly imageShape: [number, number, number];
  readonly numClasses: number;
  readonly classNames: readonly string[];
  /** Segmentation label value that carries no class and is left out of losses and metrics. */
  readonly ignoreLabel: number | undefined;
  readonly normalization: Normalization;
  readonly splits: readonly Split[];
  /** Colour per class for overlays, [r, g, b] 0-255 (segmentation sets). */
  readonly palette?: ReadonlyArray<readonly [number, number, number]>;
  size(split: Split): number;
  /** How many batches `batches()` yields for a whole epoch with these options. */
  numBatches(split: Split, opts: Pick<BatchOptions, 'batchSize' | 'dropLast' | 'limit'>): number;
  batches(split: Split, opts: BatchOptions): AsyncGenerator<Batch, void, undefined>;
}
