import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CamVid, CAMVID_CLASSES, decodeLabelPng } from '../src/data/camvid';
import { openDataset } from '../src/data';
import { labelPng, palettePng, rgbPng, tempDir, writeCamVid } from './data-fixtures';

const RAW3 = { mean: [0, 0, 0], std: [1 / 255, 1 / 255, 1 / 255] };

function sample(name: string, w: number, h: number, seed: number) {
  return {
    name,
    image: rgbPng(w, h, (y, x) => [(seed * 40 + y) % 256, x, seed]),
    label: labelPng(w, h, (y, x) => (seed + y + x) % 12),
  };
}

function writeSmall(dir: string): void {
  writeCamVid(dir, {
    train: [sample('a.png', 8, 6, 1), sample('b.png', 8, 6, 2), sample('c.png', 8, 6, 3)],
    val: [sample('d.png', 8, 6, 4)],
    test: [sample('e.png', 8, 6, 5), sample('f.png', 8, 6, 6)],
  });
}

test('reads the SegNet layout: splits, sizes, pixels, labels with void', async () => {
  const { dir, cleanup } = tempDir('camvid');
  try {
    writeSmall(dir);
    const ds = openDataset('camvid', { dir, normalization: RAW3 });
    assert.equal(ds.task, 'segmentation');
    assert.deepEqual(ds.splits, ['train', 'val', 'test']);
    assert.deepEqual([ds.size('train'), ds.size('val'), ds.size('test')], [3, 1, 2]);
    assert.deepEqual(ds.imageShape, [6, 8, 3]);
    assert.equal(ds.numClasses, 11);
    assert.equal(ds.ignoreLabel, 11);
    assert.deepEqual(ds.classNames, CAMVID_CLASSES);
    const batches = [];
    for await (const b of ds.batches('test', { batchSize: 2 })) batches.push(b);
    assert.equal(batches.length, 1);
    const b = batches[0];
    assert.deepEqual(b.shape, [2, 6, 8, 3]);
    assert.equal(b.labels.length, 2 * 6 * 8);
    // Second test image is f.png (seed 6): pixel (y=2, x=5) is [(240 + 2), 5, 6], label (6+2+5)%12 = 1.
    const p = (1 * 6 + 2) * 8 + 5;
    assert.deepEqual([0, 1, 2].map((c) => Math.round(b.images[p * 3 + c])), [242, 5, 6]);
    assert.equal(b.labels[p], 1);
    assert.ok(Array.from(b.labels).includes(11), 'void pixels come through as 11');
  } finally {
    cleanup();
  }
});

test('only the splits that exist are offered', () => {
  const { dir, cleanup } = tempDir('camvid');
  try {
    writeCamVid(dir, { train: [sample('a.png', 4, 4, 1)] });
    const ds = new CamVid({ dir });
    assert.deepEqual(ds.splits, ['train']);
    assert.throws(() => ds.size('test'), /camvid has no 'test' split \(it has train\)/);
  } finally {
    cleanup();
  }
});

test('bad inputs: missing directory, missing annotation, size mismatch, label out of range', async () => {
  assert.throws(() => openDataset('camvid'), /camvid has no default location; pass --data DIR/);
  assert.throws(() => new CamVid({ dir: '/nonexistent/camvid' }),
    (e: Error) => e.message.startsWith('/nonexistent/camvid: no such directory') && /trainannot/.test(e.message));
  const { dir, cleanup } = tempDir('camvid');
  const read = async (ds: CamVid) => {
    for await (const _ of ds.batches('train', { batchSize: 3 })) void _;
  };
  try {
    writeSmall(dir);
    unlinkSync(join(dir, 'valannot', 'd.png'));
    assert.throws(() => new CamVid({ dir }),
      (e: Error) => e.message.startsWith(join(dir, 'valannot', 'd.png')) && /missing; every image/.test(e.message));
    rmSync(join(dir, 'valannot'), { recursive: true });
    assert.throws(() => new CamVid({ dir }), (e: Error) => e.message.startsWith(join(dir, 'valannot')) && /no such directory/.test(e.message));

    rmSync(dir, { recursive: true });
    mkdirSync(dir);
    writeSmall(dir);
    const label = join(dir, 'trainannot', 'b.png');
    writeFileSync(label, labelPng(8, 5, () => 0));
    await assert.rejects(read(new CamVid({ dir })),
      (e: Error) => e.message.startsWith(label) && /is 8x5 but its image .*b\.png is 8x6; expected the same size/.test(e.message));

    writeFileSync(label, labelPng(8, 6, (y, x) => (y === 3 && x === 4 ? 12 : 0)));
    await assert.rejects(read(new CamVid({ dir })),
      (e: Error) => e.message.startsWith(label) && /label 12 at pixel \(4, 3\) is out of range; expected 0..10, or 11 for void/.test(e.message));

    writeFileSync(label, sample('b.png', 8, 6, 2).label);
    const image = join(dir, 'train', 'c.png');
    writeFileSync(image, rgbPng(9, 6, () => [0, 0, 0]));
    await assert.rejects(read(new CamVid({ dir })),
      (e: Error) => e.message.startsWith(image) && /is 9x6; expected 8x6 like the other CamVid images/.test(e.message));

    writeFileSync(image, Buffer.from('not a png at all'));
    await assert.rejects(read(new CamVid({ dir })), (e: Error) => e.message.startsWith(image) && /not a readable PNG/.test(e.message));

    writeFileSync(label, rgbPng(8, 6, () => [1, 2, 3]));
    assert.throws(() => decodeLabelPng(label, rgbPng(8, 6, () => [1, 2, 3])), /is a colour; expected a grey or palette PNG/);
  } finally {
    cleanup();
  }
});

test('palette label PNGs give their palette positions as class indices', () => {
  const palette: [number, number, number][] = Array.from({ length: 12 }, (_, i) => [i * 20, 255 - i * 20, (i * 50) % 256]);
  const png = palettePng(5, 3, palette, (y, x) => (y * 5 + x) % 12);
  const { width, height, labels } = decodeLabelPng('p.png', png);
  assert.deepEqual([width, height], [5, 3]);
  assert.deepEqual(Array.from(labels), Array.from({ length: 15 }, (_, p) => p % 12));
});
