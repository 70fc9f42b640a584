// A small classification dataset held in memory, for tests that need images of a chosen size,
// channel count and class count (the file formats' own tests live with their loaders).
import { StreamingDataset, RawSamples } from '../src/data/streaming';
import type { Normalization, Split } from '../src/data/dataset';
import { Rng } from '../src/random/prng';

interface SplitData {
  pixels: Uint8Array;
  labels: number[];
}

export class InMemoryClassification extends StreamingDataset {
  readonly name = 'in-memory';
  readonly task = 'classification' as const;
  readonly ignoreLabel = undefined;
  readonly splits: readonly Split[] = ['train', 'test'];
  readonly classNames: readonly string[];
  readonly normalization: Normalization;

  constructor(readonly imageShape: [number, number, number], readonly numClasses: number, private readonly data: Record<'train' | 'test', SplitData>) {
    super();
    this.classNames = Array.from({ length: numClasses }, (_, i) => `colour ${i}`);
    const c = imageShape[2];
    this.normalization = { mean: new Array(c).fill(0.5), std: new Array(c).fill(0.25) };
  }

  protected splitSize(split: Split): number {
    return this.data[split as 'train' | 'test'].labels.length;
  }

  protected readSamples(split: Split, indices: Uint32Array): RawSamples {
    const { pixels, labels } = this.data[split as 'train' | 'test'];
    const size = this.imageShape.reduce((a, b) => a * b, 1);
    const out = new Uint8Array(indices.length * size);
    indices.forEach((s, i) => out.set(pixels.subarray(s * size, (s + 1) * size), i * size));
    return { pixels: out, labels: Array.from(indices, (s) => labels[s]) };
  }
}

/** Images whose class is the channel (cycled over the channels) that is brightest, with noise. */
export function colourBlobs(shape: [number, number, number], numClasses: number, counts: { train: number; test: number }, seed = 1): InMemoryClassification {
  const rng = Rng.from(seed);
  const [h, w, c] = shape;
  const make = (n: number): SplitData => {
    const labels = Array.from({ length: n }, (_, i) => i % numClasses);
    const pixels = new Uint8Array(n * h * w * c);
    labels.forEach((label, i) => {
      for (let p = 0; p < h * w; p++) {
        for (let ch = 0; ch < c; ch++) pixels[(i * h * w + p) * c + ch] = (ch === label % c ? 160 : 40) + Math.floor(rng.float() * 60);
      }
    });
    return { pixels, labels };
  };
  return new InMemoryClassification(shape, numClasses, { train: make(counts.train), test: make(counts.test) });
}
