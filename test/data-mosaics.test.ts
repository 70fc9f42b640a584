import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Batch, BatchOptions, Split } from '../src/data/dataset';
import { FashionMnist } from '../src/data/fashion-mnist';
import { FashionMosaics, MosaicOptions } from '../src/data/mosaics';
import { batchToTensors, openDataset } from '../src/data';
import { init } from '../src/backend';
import { IdxSplit, tempDir, writeFashionMnist } from './data-fixtures';

const RAW1 = { mean: [0], std: [1 / 255] };

/** Garments whose lit pixels all have value 100 + 10 * class, with a faint halo of value 5. */
function garments(n: number, classes: number[]): IdxSplit {
  const images = new Uint8Array(n * 28 * 28);
  const labels = Array.from({ length: n }, (_, i) => classes[i % classes.length]);
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const r = Math.hypot(y - 13.5, x - 13.5);
        images[i * 784 + y * 28 + x] = r < 6 + (i % 5) ? 100 + 10 * labels[i] : r < 12 ? 5 : 0;
      }
    }
  }
  return { images, labels, h: 28, w: 28 };
}

function withSource(fn: (source: FashionMnist, dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const { dir, cleanup } = tempDir('mosaics');
    try {
      writeFashionMnist(dir, { train: garments(20, [0, 1, 2, 3, 4]), test: garments(10, [5, 6, 7, 8, 9]) }, true);
      await fn(new FashionMnist({ dir }), dir);
    } finally {
      cleanup();
    }
  };
}

async function collect(ds: FashionMosaics, split: Split, opts: BatchOptions): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of ds.batches(split, opts)) out.push(b);
  return out;
}

function mosaics(source: FashionMnist, opts: MosaicOptions = {}): FashionMosaics {
  return new FashionMosaics({ source, trainCount: 12, testCount: 6, normalization: RAW1, ...opts });
}

/** Every labelled pixel shows its garment's class, every background pixel is black. */
function checkConsistent(b: Batch): Set<number> {
  const classes = new Set<number>();
  b.labels.forEach((label, p) => {
    const v = Math.round(b.images[p]);
    if (label === 0) assert.equal(v, 0, `background pixel ${p} is black`);
    else assert.equal(v, 100 + 10 * (label - 1), `pixel ${p} shows class ${label - 1}`);
    classes.add(label);
  });
  return classes;
}

test('mosaics: class + 1 on garment pixels, 0 elsewhere; train/test garments from their own splits', withSource(async (source) => {
  const ds = mosaics(source);
  assert.equal(ds.numClasses, 11);
  assert.equal(ds.classNames[0], 'background');
  assert.equal(ds.classNames[1], 'T-shirt/top');
  assert.deepEqual(ds.imageShape, [64, 64, 1]);
  assert.deepEqual([ds.size('train'), ds.size('test')], [12, 6]);
  const trainClasses = new Set<number>();
  for (const b of await collect(ds, 'train', { batchSize: 5 })) checkConsistent(b).forEach((c) => trainClasses.add(c));
  const testClasses = new Set<number>();
  for (const b of await collect(ds, 'test', { batchSize: 5 })) checkConsistent(b).forEach((c) => testClasses.add(c));
  assert.ok([...trainClasses].every((c) => c <= 5), `train mosaics use train garments (classes 0-4): ${[...trainClasses]}`);
  assert.ok([...testClasses].every((c) => c === 0 || c >= 6), `test mosaics use test garments (classes 5-9): ${[...testClasses]}`);
  assert.ok(trainClasses.size >= 4 && testClasses.size >= 4);
}));

test('mosaics are deterministic: same seed same set, other seed other set', withSource(async (source, dir) => {
  const a = await collect(mosaics(source), 'train', { batchSize: 12, shuffle: false });
  const b = await collect(new FashionMosaics({ dir, trainCount: 12, testCount: 6, normalization: RAW1 }), 'train', { batchSize: 12, shuffle: false });
  const c = await collect(mosaics(source, { seed: 1 }), 'train', { batchSize: 12, shuffle: false });
  assert.deepEqual(a[0].images, b[0].images);
  assert.deepEqual(a[0].labels, b[0].labels);
  assert.notDeepEqual(a[0].labels, c[0].labels);
  // Sample i is the same whichever batch or order it is read in.
  const shuffled = await collect(mosaics(source), 'train', { batchSize: 4, seed: 9 });
  for (const batch of shuffled) {
    batch.sampleIndices.forEach((idx, i) => {
      assert.deepEqual(batch.labels.subarray(i * 4096, (i + 1) * 4096), a[0].labels.subarray(idx * 4096, (idx + 1) * 4096));
    });
  }
  const stats = mosaics(source, { normalization: undefined }).normalization;
  assert.deepEqual(stats, mosaics(source, { normalization: undefined }).normalization);
  assert.ok(stats.mean[0] > 0 && stats.std[0] > 0);
}));

test('mosaics: other canvas sizes, augmentation keeps pixels and labels together, size errors', withSource(async (source) => {
  const ds = mosaics(source, { size: [32, 96], minItems: 1, maxItems: 6 });
  for (const b of await collect(ds, 'train', { batchSize: 6, augment: true, crop: [32, 64], seed: 3 })) {
    assert.deepEqual(b.shape, [b.count, 32, 64, 1]);
    checkConsistent(b);
  }
  await init('cpu', { log: null });
  const [first] = await collect(ds, 'test', { batchSize: 2, limit: 2 });
  const t = batchToTensors(first);
  assert.deepEqual([t.images.shape, t.labels.shape, t.labels.dtype], [[2, 32, 96, 1], [2, 32, 96], 'int32']);
  t.images.dispose();
  t.labels.dispose();
  assert.throws(() => mosaics(source, { size: 48 }), /multiple of 32 .* got 48/);
  assert.throws(() => mosaics(source, { minItems: 3, maxItems: 2 }), /maxItems must be an integer >= 3/);
  assert.throws(() => openDataset('fashion-mosaics', { dir: '/nonexistent/fm' }), /\/nonexistent\/fm: no such directory/);
}));
