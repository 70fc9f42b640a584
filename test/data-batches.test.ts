import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Batch, BatchOptions, Split } from '../src/data/dataset';
import { FashionMnist } from '../src/data/fashion-mnist';
import { batchToTensors } from '../src/data/tensors';
import { init } from '../src/backend';
import { tempDir, tracedSplit, writeFashionMnist } from './data-fixtures';

/** Normalisation that turns a byte v into the float v, so tests read raw pixels back. */
const RAW = { mean: [0], std: [1 / 255] };

async function collect(ds: FashionMnist, split: Split, opts: BatchOptions): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of ds.batches(split, opts)) out.push(b);
  return out;
}

function withData(fn: (ds: FashionMnist) => Promise<void>): () => Promise<void> {
  return async () => {
    const { dir, cleanup } = tempDir('batches');
    try {
      writeFashionMnist(dir, { train: tracedSplit(23, 6, 6), test: tracedSplit(10, 6, 6) }, false);
      await fn(new FashionMnist({ dir, normalization: RAW }));
    } finally {
      cleanup();
    }
  };
}

test('an epoch visits every sample once, with a short final batch or without it', withData(async (ds) => {
  const batches = await collect(ds, 'train', { batchSize: 5, seed: 1 });
  assert.deepEqual(batches.map((b) => b.count), [5, 5, 5, 5, 3]);
  assert.equal(ds.numBatches('train', { batchSize: 5 }), 5);
  const seen = batches.flatMap((b) => Array.from(b.sampleIndices)).sort((a, b) => a - b);
  assert.deepEqual(seen, Array.from({ length: 23 }, (_, i) => i));
  // The images and labels are those of the listed samples.
  for (const b of batches) {
    b.sampleIndices.forEach((idx, i) => {
      assert.equal(b.labels[i], idx % 10);
      assert.equal(Math.round(b.images[i * 36]), (idx * 7) % 256);
    });
  }
  const dropped = await collect(ds, 'train', { batchSize: 5, seed: 1, dropLast: true });
  assert.deepEqual(dropped.map((b) => b.count), [5, 5, 5, 5]);
  assert.equal(ds.numBatches('train', { batchSize: 5, dropLast: true }), 4);
  assert.deepEqual(dropped.map((b) => Array.from(b.sampleIndices)), batches.slice(0, 4).map((b) => Array.from(b.sampleIndices)));
}));

test('order follows (seed, epoch): same pair same order, other pair other order', withData(async (ds) => {
  const order = async (seed: number, epoch: number) =>
    (await collect(ds, 'train', { batchSize: 23, seed, epoch }))[0].sampleIndices.join(',');
  assert.equal(await order(3, 0), await order(3, 0));
  assert.notEqual(await order(3, 0), await order(3, 1));
  assert.notEqual(await order(3, 0), await order(4, 0));
  // The test split is read in order unless asked otherwise.
  const test0 = await collect(ds, 'test', { batchSize: 10, seed: 3 });
  assert.deepEqual(Array.from(test0[0].sampleIndices), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const shuffled = await collect(ds, 'test', { batchSize: 10, seed: 3, shuffle: true });
  assert.notDeepEqual(Array.from(shuffled[0].sampleIndices), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
}));

test('startBatch resumes mid-epoch with exactly the same batches, augmentation included', withData(async (ds) => {
  const opts = { batchSize: 4, seed: 11, epoch: 2, augment: true };
  const full = await collect(ds, 'train', opts);
  const resumed = await collect(ds, 'train', { ...opts, startBatch: 3 });
  assert.equal(resumed.length, full.length - 3);
  resumed.forEach((b, i) => {
    const ref = full[i + 3];
    assert.equal(b.index, ref.index);
    assert.deepEqual(b.sampleIndices, ref.sampleIndices);
    assert.deepEqual(b.images, ref.images);
    assert.deepEqual(b.labels, ref.labels);
  });
  // Past the end is an error, not an empty epoch that a resuming trainer would wait on forever.
  assert.equal((await collect(ds, 'train', { ...opts, startBatch: 6 })).length, 0);
  await assert.rejects(collect(ds, 'train', { ...opts, startBatch: 99 }), /startBatch 99 is past the end of the train split's epoch \(6 batches of 4\)/);
}));

test('augmentation changes with the epoch but not between runs', withData(async (ds) => {
  const run = (epoch: number) => collect(ds, 'train', { batchSize: 23, seed: 5, epoch, augment: true, shuffle: false });
  const [a] = await run(0);
  const [b] = await run(0);
  const [c] = await run(1);
  assert.deepEqual(a.images, b.images);
  assert.notDeepEqual(a.images, c.images);
}));

test('limit uses the first samples only', withData(async (ds) => {
  const batches = await collect(ds, 'train', { batchSize: 4, seed: 2, limit: 6 });
  assert.deepEqual(batches.map((b) => b.count), [4, 2]);
  assert.ok(batches.every((b) => Array.from(b.sampleIndices).every((i) => i < 6)));
  assert.equal(ds.numBatches('train', { batchSize: 4, limit: 6 }), 2);
}));

test('bad options and unknown splits are clear errors', withData(async (ds) => {
  await assert.rejects(collect(ds, 'train', { batchSize: 0 }), /batchSize must be an integer >= 1, got 0/);
  await assert.rejects(collect(ds, 'train', { batchSize: 2, startBatch: -1 }), /startBatch must be an integer >= 0/);
  await assert.rejects(collect(ds, 'val', { batchSize: 2 }), /fashion-mnist has no 'val' split \(it has train, test\)/);
  await assert.rejects(collect(ds, 'train', { batchSize: 2, crop: [4, 4] }), /batch option crop applies to segmentation/);
}));

test('batchToTensors: NHWC float32 images, int32 labels per image', withData(async (ds) => {
  await init('cpu', { log: null });
  const [b] = await collect(ds, 'train', { batchSize: 3, limit: 3 });
  const t = batchToTensors(b);
  assert.deepEqual(t.images.shape, [3, 6, 6, 1]);
  assert.equal(t.images.dtype, 'float32');
  assert.deepEqual(t.labels.shape, [3]);
  assert.equal(t.labels.dtype, 'int32');
  assert.deepEqual(Array.from(await t.labels.data()), Array.from(b.labels));
  t.images.dispose();
  t.labels.dispose();
}));
