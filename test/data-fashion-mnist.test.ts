import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { FASHION_MNIST_DEFAULT_DIR, FashionMnist } from '../src/data/fashion-mnist';
import { encodeIdx } from '../src/data/idx';
import { openDataset } from '../src/data';
import { tempDir, tracedSplit, writeFashionMnist } from './data-fixtures';

async function firstBatch(ds: FashionMnist, split: 'train' | 'test', batchSize: number) {
  const it = ds.batches(split, { batchSize, shuffle: false });
  return (await it.next()).value!;
}

for (const gzip of [true, false]) {
  test(`reads IDX files ${gzip ? 'gzipped' : 'uncompressed'}: shape, labels, normalised pixels`, async () => {
    const { dir, cleanup } = tempDir('fmnist');
    try {
      writeFashionMnist(dir, { train: tracedSplit(5, 28, 28), test: tracedSplit(3, 28, 28) }, gzip);
      const norm = { mean: [0.5], std: [0.25] };
      const ds = new FashionMnist({ dir, normalization: norm });
      assert.deepEqual(ds.imageShape, [28, 28, 1]);
      assert.equal(ds.size('train'), 5);
      assert.equal(ds.size('test'), 3);
      assert.equal(ds.classNames[9], 'Ankle boot');
      const b = await firstBatch(ds, 'train', 4);
      assert.deepEqual(b.shape, [4, 28, 28, 1]);
      assert.deepEqual(Array.from(b.labels), [0, 1, 2, 3]);
      // image 2, pixel (1, 3): raw (2*7 + 28 + 3) % 256 = 45
      const raw = 45;
      assert.ok(Math.abs(b.images[2 * 784 + 28 + 3] - (raw / 255 - 0.5) / 0.25) < 1e-6);
    } finally {
      cleanup();
    }
  });
}

test('image size comes from the files (any HxW works)', async () => {
  const { dir, cleanup } = tempDir('fmnist');
  try {
    writeFashionMnist(dir, { train: tracedSplit(2, 6, 5), test: tracedSplit(2, 6, 5) }, false);
    const ds = new FashionMnist({ dir });
    assert.deepEqual(ds.imageShape, [6, 5, 1]);
    assert.deepEqual((await firstBatch(ds, 'test', 2)).shape, [2, 6, 5, 1]);
  } finally {
    cleanup();
  }
});

test('missing directory and missing file are errors naming them', () => {
  assert.throws(() => new FashionMnist({ dir: '/nonexistent/fmnist' }),
    (e: Error) => e.message.startsWith('/nonexistent/fmnist: no such directory') && /dataset-fashion-mnist/.test(e.message));
  const { dir, cleanup } = tempDir('fmnist');
  try {
    writeFashionMnist(dir, { train: tracedSplit(2, 28, 28), test: tracedSplit(2, 28, 28) }, true);
    unlinkSync(join(dir, 't10k-labels-idx1-ubyte.gz'));
    assert.throws(() => new FashionMnist({ dir }), (e: Error) => e.message.includes(dir) && /t10k-labels-idx1-ubyte/.test(e.message));
    assert.throws(() => openDataset('fashion-mnsit', { dir }), /unknown dataset 'fashion-mnsit'; expected one of fashion-mnist/);
  } finally {
    cleanup();
  }
});

test('wrong magic number, truncated files, bad labels and count mismatch name the file', () => {
  const { dir, cleanup } = tempDir('fmnist');
  const images = join(dir, 'train-images-idx3-ubyte');
  const labels = join(dir, 'train-labels-idx1-ubyte');
  const reset = () => writeFashionMnist(dir, { train: tracedSplit(4, 28, 28), test: tracedSplit(2, 28, 28) }, false);
  try {
    reset();
    // Labels where images belong: magic 0x00000801 instead of 0x00000803.
    writeFileSync(images, readFileSync(labels));
    assert.throws(() => new FashionMnist({ dir }).size('train'),
      (e: Error) => e.message.startsWith(images) && /wrong magic number 0x00000801; expected 0x00000803/.test(e.message));

    reset();
    const full = readFileSync(images);
    writeFileSync(images, full.subarray(0, full.length - 100));
    assert.throws(() => new FashionMnist({ dir }).size('train'),
      (e: Error) => e.message.startsWith(images) && /truncated: header says 4x28x28 = 3136 bytes of data, the file has 3036/.test(e.message));

    writeFileSync(images, full.subarray(0, 10));
    assert.throws(() => new FashionMnist({ dir }).size('train'), (e: Error) => e.message.startsWith(images) && /truncated/.test(e.message));

    // A gzip stream cut short.
    reset();
    unlinkSync(images);
    writeFileSync(images + '.gz', gzipSync(full).subarray(0, 200));
    assert.throws(() => new FashionMnist({ dir }).size('train'),
      (e: Error) => e.message.startsWith(images + '.gz') && /gzip data is truncated or corrupt/.test(e.message));
    unlinkSync(images + '.gz');

    reset();
    writeFileSync(labels, encodeIdx([4], Uint8Array.from([0, 1, 10, 3])));
    assert.throws(() => new FashionMnist({ dir }).size('train'),
      (e: Error) => e.message.startsWith(labels) && /label 10 at index 2 is out of range; expected 0..9/.test(e.message));

    writeFileSync(labels, encodeIdx([3], Uint8Array.from([0, 1, 2])));
    assert.throws(() => new FashionMnist({ dir }).size('train'),
      (e: Error) => e.message.startsWith(labels) && /3 labels but .*train-images-idx3-ubyte holds 4 images/.test(e.message));
  } finally {
    cleanup();
  }
});

test('the installed Fashion-MNIST, when present, has the standard sizes and first labels', { skip: !existsSync(FASHION_MNIST_DEFAULT_DIR) }, () => {
  const ds = new FashionMnist();
  assert.equal(ds.size('train'), 60000);
  assert.equal(ds.size('test'), 10000);
  assert.deepEqual(ds.imageShape, [28, 28, 1]);
  assert.deepEqual(Array.from(ds.raw('train').labels.subarray(0, 5)), [9, 0, 0, 3, 0]);
});
