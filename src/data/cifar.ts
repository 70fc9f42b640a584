// CIFAR-10 and CIFAR-100, binary version. Each record is the label byte(s) then 3072 bytes of
// a 32x32 image stored plane by plane (all red, all green, all blue). Records are read on
// demand from the files (a batch touches only its own records), never the whole set.
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { Normalization, Split } from './dataset';
import { dataError } from './errors';
import { fileSize, requireDirectory } from './files';
import { RawSamples, StreamingDataset } from './streaming';

export type CifarVariant = 'cifar10' | 'cifar100';

const SIDE = 32;
const PIXELS = SIDE * SIDE;
const IMAGE_BYTES = 3 * PIXELS;

export const CIFAR10_CLASSES: readonly string[] = [
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
];

export const CIFAR100_CLASSES: readonly string[] = [
  'apple', 'aquarium_fish', 'baby', 'bear', 'beaver', 'bed', 'bee', 'beetle', 'bicycle', 'bottle',
  'bowl', 'boy', 'bridge', 'bus', 'butterfly', 'camel', 'can', 'castle', 'caterpillar', 'cattle',
  'chair', 'chimpanzee', 'clock', 'cloud', 'cockroach', 'couch', 'crab', 'crocodile', 'cup', 'dinosaur',
  'dolphin', 'elephant', 'flatfish', 'forest', 'fox', 'girl', 'hamster', 'house', 'kangaroo', 'keyboard',
  'lamp', 'lawn_mower', 'leopard', 'lion', 'lizard', 'lobster', 'man', 'maple_tree', 'motorcycle', 'mountain',
  'mouse', 'mushroom', 'oak_tree', 'orange', 'orchid', 'otter', 'palm_tree', 'pear', 'pickup_truck', 'pine_tree',
  'plain', 'plate', 'poppy', 'porcupine', 'possum', 'rabbit', 'raccoon', 'ray', 'road', 'rocket',
  'rose', 'sea', 'seal', 'shark', 'shrew', 'skunk', 'skyscraper', 'snail', 'snake', 'spider',
  'squirrel', 'streetcar', 'sunflower', 'sweet_pepper', 'table', 'tank', 'telephone', 'television', 'tiger', 'tractor',
  'train', 'trout', 'tulip', 'turtle', 'wardrobe', 'whale', 'willow_tree', 'wolf', 'woman', 'worm',
];

interface VariantSpec {
  title: string;
  /** Folder the official tarball unpacks to; accepted as a child of the given directory. */
  folder: string;
  trainFiles: string[];
  testFiles: string[];
  /** Bytes before the image; the class is the last of them (CIFAR-100: coarse, then fine). */
  labelBytes: number;
  numClasses: number;
  classNames: readonly string[];
  namesFile: string;
  normalization: Normalization;
}

const SPECS: Record<CifarVariant, VariantSpec> = {
  cifar10: {
    title: 'CIFAR-10', folder: 'cifar-10-batches-bin',
    trainFiles: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`), testFiles: ['test_batch.bin'],
    labelBytes: 1, numClasses: 10, classNames: CIFAR10_CLASSES, namesFile: 'batches.meta.txt',
    normalization: { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
  },
  cifar100: {
    title: 'CIFAR-100', folder: 'cifar-100-binary',
    trainFiles: ['train.bin'], testFiles: ['test.bin'],
    labelBytes: 2, numClasses: 100, classNames: CIFAR100_CLASSES, namesFile: 'fine_label_names.txt',
    normalization: { mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762] },
  },
};

export interface CifarOptions {
  /** The folder with the .bin files, or the folder that holds cifar-10-batches-bin / cifar-100-binary. */
  dir: string;
  normalization?: Normalization;
}

interface RecordFile {
  path: string;
  /** Index of its first record within the split. */
  first: number;
  count: number;
}

export class Cifar extends StreamingDataset {
  readonly name: CifarVariant;
  readonly task = 'classification' as const;
  readonly imageShape: [number, number, number] = [SIDE, SIDE, 3];
  readonly numClasses: number;
  readonly classNames: readonly string[];
  readonly ignoreLabel = undefined;
  readonly splits: readonly Split[] = ['train', 'test'];
  readonly normalization: Normalization;
  readonly dir: string;
  private readonly spec: VariantSpec;
  private readonly recordBytes: number;
  private readonly files: Record<'train' | 'test', RecordFile[]>;

  constructor(variant: CifarVariant, opts: CifarOptions) {
    super();
    const spec = SPECS[variant];
    if (!spec) throw new Error(`unknown CIFAR variant '${variant}'; expected cifar10 or cifar100`);
    this.spec = spec;
    this.name = variant;
    this.numClasses = spec.numClasses;
    this.recordBytes = spec.labelBytes + IMAGE_BYTES;
    const expected = `the ${spec.title} binary files (${[...spec.trainFiles, ...spec.testFiles].join(', ')}), ` +
      `or the ${spec.folder} folder that holds them`;
    requireDirectory(opts.dir, expected);
    this.dir = this.resolveDir(opts.dir);
    this.files = { train: this.indexFiles(spec.trainFiles), test: this.indexFiles(spec.testFiles) };
    this.classNames = this.readClassNames();
    this.normalization = opts.normalization ?? spec.normalization;
  }

  protected splitSize(split: Split): number {
    const files = this.files[split as 'train' | 'test'];
    const last = files[files.length - 1];
    return last.first + last.count;
  }

  protected readSamples(split: Split, indices: Uint32Array): RawSamples {
    const files = this.files[split as 'train' | 'test'];
    const pixels = new Uint8Array(indices.length * IMAGE_BYTES);
    const labels = new Uint8Array(indices.length);
    const record = Buffer.alloc(this.recordBytes);
    const fds = new Map<string, number>();
    try {
      indices.forEach((idx, i) => {
        const file = files.find((f) => idx >= f.first && idx < f.first + f.count);
        if (!file) throw new Error(`${this.name} ${split} has no sample ${idx}`);
        let fd = fds.get(file.path);
        if (fd === undefined) {
          fd = openSync(file.path, 'r');
          fds.set(file.path, fd);
        }
        const local = idx - file.first;
        const got = readSync(fd, record, 0, this.recordBytes, local * this.recordBytes);
        if (got !== this.recordBytes) {
          throw dataError(file.path, `record ${local} is truncated: read ${got} of ${this.recordBytes} bytes (the file changed since it was opened?)`);
        }
        const label = record[this.spec.labelBytes - 1];
        if (label >= this.numClasses) {
          throw dataError(file.path, `label ${label} of record ${local} is out of range; expected 0..${this.numClasses - 1}`);
        }
        labels[i] = label;
        planarToInterleaved(record, this.spec.labelBytes, pixels, i * IMAGE_BYTES);
      });
    } finally {
      for (const fd of fds.values()) closeSync(fd);
    }
    return { pixels, labels };
  }

  private resolveDir(dir: string): string {
    const first = this.spec.trainFiles[0];
    if (!existsSync(join(dir, first)) && existsSync(join(dir, this.spec.folder, first))) {
      return join(dir, this.spec.folder);
    }
    return dir;
  }

  /** Sizes every file now: a missing or truncated file is an error before any training. */
  private indexFiles(names: string[]): RecordFile[] {
    let first = 0;
    return names.map((name) => {
      const path = join(this.dir, name);
      if (!existsSync(path)) {
        throw dataError(path, `missing; ${this.spec.title} needs ${[...this.spec.trainFiles, ...this.spec.testFiles].join(', ')} in ${this.dir}`);
      }
      const bytes = fileSize(path);
      if (bytes === 0 || bytes % this.recordBytes !== 0) {
        throw dataError(path, `is ${bytes} bytes, not a whole number of ${this.spec.title} records of ${this.recordBytes} bytes (truncated?)`);
      }
      const file = { path, first, count: bytes / this.recordBytes };
      first += file.count;
      return file;
    });
  }

  /** The names file of the official download when present and complete, else the built-in list. */
  private readClassNames(): readonly string[] {
    const path = join(this.dir, this.spec.namesFile);
    if (!existsSync(path)) return this.spec.classNames;
    const names = readFileSync(path, 'utf8').split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
    return names.length === this.numClasses ? names : this.spec.classNames;
  }
}

/** CHW planes (from `offset` in src) to HWC pixels in dst. */
function planarToInterleaved(src: Uint8Array, offset: number, dst: Uint8Array, dstOffset: number): void {
  for (let p = 0; p < PIXELS; p++) {
    const o = dstOffset + p * 3;
    dst[o] = src[offset + p];
    dst[o + 1] = src[offset + PIXELS + p];
    dst[o + 2] = src[offset + 2 * PIXELS + p];
  }
}
