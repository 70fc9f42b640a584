import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cifar, CIFAR100_CLASSES } from '../src/data/cifar';
import { openDataset } from '../src/data';
import type { Batch } from '../src/data/dataset';
import { cifarRecord, concatBytes, tempDir } from './data-fixtures';

const RAW3 = { mean: [0, 0, 0], std: [1 / 255, 1 / 255, 1 / 255] };

/** Record r of a split: label r % classes, pixel (y, x, c) = (r + 3y + 5x + 100c) % 256. */
const pixelOf = (r: number) => (y: number, x: number, c: number) => (r + 3 * y + 5 * x + 100 * c) % 256;

/** CIFAR-10 with `perFile` records in each of the 5 training files and 4 test records. */
function writeCifar10(dir: string, perFile: number): void {
  let r = 0;
  for (let f = 1; f <= 5; f++) {
    const recs = Array.from({ length: perFile }, () => cifarRecord([r % 10], pixelOf(r++)));
    writeFileSync(join(dir, `data_batch_${f}.bin`), concatBytes(recs));
  }
  writeFileSync(join(dir, 'test_batch.bin'), concatBytes([0, 1, 2, 3].map((t) => cifarRecord([t], pixelOf(1000 + t)))));
}

async function all(ds: Cifar, split: 'train' | 'test'): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of ds.batches(split, { batchSize: 4, shuffle: true, seed: 1 })) out.push(b);
  return out;
}

function checkBatches(batches: Batch[], label: (r: number) => number, pixelBase: number): void {
  for (const b of batches) {
    b.sampleIndices.forEach((r, i) => {
      assert.equal(b.labels[i], label(r));
      for (const [y, x, c] of [[0, 0, 0], [5, 7, 1], [31, 30, 2]]) {
        // HWC order in the batch, planar in the file.
        assert.equal(Math.round(b.images[i * 3072 + (y * 32 + x) * 3 + c]), pixelOf(pixelBase + r)(y, x, c));
      }
    });
  }
}

test('CIFAR-10: records across the five files, planes to HWC, labels, class names', async () => {
  const { dir, cleanup } = tempDir('cifar');
  try {
    writeCifar10(dir, 3);
    const ds = new Cifar('cifar10', { dir, normalization: RAW3 });
    assert.deepEqual(ds.imageShape, [32, 32, 3]);
    assert.equal(ds.size('train'), 15);
    assert.equal(ds.size('test'), 4);
    assert.equal(ds.classNames[0], 'airplane');
    const train = await all(ds, 'train');
    assert.equal(train.reduce((a, b) => a + b.count, 0), 15);
    checkBatches(train, (r) => r % 10, 0);
    checkBatches(await all(ds, 'test'), (r) => r, 1000);
  } finally {
    cleanup();
  }
});

test('CIFAR-100: fine labels, the cifar-100-binary subfolder, names from fine_label_names.txt', async () => {
  const { dir, cleanup } = tempDir('cifar');
  try {
    const sub = join(dir, 'cifar-100-binary');
    mkdirSync(sub);
    const rec = (r: number) => cifarRecord([r % 20, (r * 13) % 100], pixelOf(r));
    writeFileSync(join(sub, 'train.bin'), concatBytes(Array.from({ length: 9 }, (_, r) => rec(r))));
    writeFileSync(join(sub, 'test.bin'), concatBytes(Array.from({ length: 2 }, (_, r) => rec(r))));
    const ds = openDataset('cifar100', { dir, normalization: RAW3 }) as Cifar;
    assert.equal(ds.numClasses, 100);
    assert.equal(ds.size('train'), 9);
    assert.deepEqual(ds.classNames, CIFAR100_CLASSES);
    checkBatches(await all(ds, 'train'), (r) => (r * 13) % 100, 0);
    const names = Array.from({ length: 100 }, (_, i) => `class${i}`);
    writeFileSync(join(sub, 'fine_label_names.txt'), names.join('\n') + '\n');
    assert.equal(new Cifar('cifar100', { dir }).classNames[42], 'class42');
  } finally {
    cleanup();
  }
  assert.equal(CIFAR100_CLASSES.length, 100);
  assert.equal(new Set(CIFAR100_CLASSES).size, 100);
});

test('bad inputs: missing directory, missing file, truncated file, label out of range', async () => {
  assert.throws(() => openDataset('cifar10'), /cifar10 has no default location; pass --data DIR/);
  assert.throws(() => new Cifar('cifar10', { dir: '/nonexistent/cifar' }),
    (e: Error) => e.message.startsWith('/nonexistent/cifar: no such directory') && /data_batch_1\.bin/.test(e.message));
  const { dir, cleanup } = tempDir('cifar');
  try {
    writeCifar10(dir, 2);
    const third = join(dir, 'data_batch_3.bin');
    const bytes = readFileSync(third);
    unlinkSync(third);
    assert.throws(() => new Cifar('cifar10', { dir }), (e: Error) => e.message.startsWith(third) && /missing/.test(e.message));

    writeFileSync(third, bytes.subarray(0, bytes.length - 1));
    assert.throws(() => new Cifar('cifar10', { dir }),
      (e: Error) => e.message.startsWith(third) && /is 6145 bytes, not a whole number of CIFAR-10 records of 3073 bytes/.test(e.message));

    const bad = Buffer.from(bytes);
    bad[3073] = 10; // second record's label
    writeFileSync(third, bad);
    const ds = new Cifar('cifar10', { dir });
    await assert.rejects(all(ds, 'train'),
      (e: Error) => e.message.startsWith(third) && /label 10 of record 1 is out of range; expected 0..9/.test(e.message));
  } finally {
    cleanup();
  }
});
