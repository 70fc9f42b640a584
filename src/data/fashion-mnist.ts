// Fashion-MNIST from its standard IDX files (gzipped or not). A split is read whole the first
// time it is used (60,000 28x28 images are 47 MB), and only the splits that are used.
import { dataError } from './errors';
import type { Normalization, Split } from './dataset';
import { findFile, requireDirectory } from './files';
import { IdxArray, readIdxFile } from './idx';
import { RawSamples, StreamingDataset } from './streaming';

/** Where `apt-get install dataset-fashion-mnist` puts the files. */
export const FASHION_MNIST_DEFAULT_DIR = '/usr/share/datasets/fashion-mnist';

export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
  'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

/** Mean and std of the 60,000 training images, pixel values in [0, 1]. */
export const FASHION_MNIST_NORMALIZATION: Normalization = { mean: [0.286], std: [0.353] };

const FILE_PREFIX: Record<'train' | 'test', string> = { train: 'train', test: 't10k' };

/** The names the files go by: the original ones, gzipped or not, and the dotted variant. */
export function idxFileNames(prefix: string, kind: 'images' | 'labels'): string[] {
  const dims = kind === 'images' ? 'idx3' : 'idx1';
  const base = [`${prefix}-${kind}-${dims}-ubyte`, `${prefix}-${kind}.${dims}-ubyte`];
  return base.flatMap((b) => [b + '.gz', b]);
}

export interface FashionMnistOptions {
  /** Directory of the IDX files; default /usr/share/datasets/fashion-mnist. */
  dir?: string;
  normalization?: Normalization;
}

interface LoadedSplit {
  images: IdxArray;
  labels: Uint8Array;
}

export class FashionMnist extends StreamingDataset {
  readonly name = 'fashion-mnist';
  readonly task = 'classification' as const;
  readonly numClasses = 10;
  readonly classNames = FASHION_MNIST_CLASSES;
  readonly ignoreLabel = undefined;
  readonly splits: readonly Split[] = ['train', 'test'];
  readonly normalization: Normalization;
  readonly dir: string;
  private readonly files: Record<'train' | 'test', { images: string; labels: string }>;
  private readonly loaded = new Map<Split, LoadedSplit>();

  constructor(opts: FashionMnistOptions = {}) {
    super();
    this.dir = opts.dir ?? FASHION_MNIST_DEFAULT_DIR;
    requireDirectory(this.dir,
      `the Fashion-MNIST IDX files (${idxFileNames('train', 'images')[0]} and the others); ` +
      `'apt-get install dataset-fashion-mnist' installs them in ${FASHION_MNIST_DEFAULT_DIR}`);
    // Every file is looked up now, so a missing one is reported before training starts.
    const find = (split: 'train' | 'test', kind: 'images' | 'labels') =>
      findFile(this.dir, idxFileNames(FILE_PREFIX[split], kind), `Fashion-MNIST ${split} ${kind}`);
    this.files = {
      train: { images: find('train', 'images'), labels: find('train', 'labels') },
      test: { images: find('test', 'images'), labels: find('test', 'labels') },
    };
    this.normalization = opts.normalization ?? FASHION_MNIST_NORMALIZATION;
  }

  /** [H, W, 1] as the files say (28x28 for the real data); reads the smaller split if none is loaded. */
  get imageShape(): [number, number, number] {
    const split = this.loaded.get('train') ?? this.load('test');
    const [, h, w] = split.images.dims;
    return [h, w, 1];
  }

  /** The whole split as stored: images [count, height, width] bytes and their labels. */
  raw(split: Split): { images: Uint8Array; labels: Uint8Array; count: number; height: number; width: number } {
    const { images, labels } = this.load(split);
    const [count, height, width] = images.dims;
    return { images: images.data, labels, count, height, width };
  }

  protected splitSize(split: Split): number {
    return this.load(split).labels.length;
  }

  protected readSamples(split: Split, indices: Uint32Array): RawSamples {
    const { images, labels } = this.load(split);
    const [, h, w] = images.dims;
    const pixelsPer = h * w;
    const pixels = new Uint8Array(indices.length * pixelsPer);
    const out = new Uint8Array(indices.length);
    indices.forEach((idx, i) => {
      pixels.set(images.data.subarray(idx * pixelsPer, (idx + 1) * pixelsPer), i * pixelsPer);
      out[i] = labels[idx];
    });
    return { pixels, labels: out };
  }

  private load(split: Split): LoadedSplit {
    const cached = this.loaded.get(split);
    if (cached) return cached;
    this.checkSplit(split);
    const files = this.files[split as 'train' | 'test'];
    const images = readIdxFile(files.images, 3);
    const labels = readIdxFile(files.labels, 1).data;
    if (images.dims[0] !== labels.length) {
      throw dataError(files.labels, `holds ${labels.length} labels but ${files.images} holds ${images.dims[0]} images; expected one label per image`);
    }
    const bad = labels.findIndex((l) => l >= this.numClasses);
    if (bad >= 0) {
      throw dataError(files.labels, `label ${labels[bad]} at index ${bad} is out of range; expected 0..${this.numClasses - 1}`);
    }
    const other = this.loaded.values().next().value as LoadedSplit | undefined;
    if (other && (other.images.dims[1] !== images.dims[1] || other.images.dims[2] !== images.dims[2])) {
      throw dataError(files.images, `holds ${images.dims[1]}x${images.dims[2]} images; expected ${other.images.dims[1]}x${other.images.dims[2]} like the other split`);
    }
    const result = { images, labels };
    this.loaded.set(split, result);
    return result;
  }
}
