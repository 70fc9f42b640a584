import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  identityWindow, normalizationTable, randomCropFlip, windowImage, windowLabels,
} from '../src/data/augment';
import { CamVid } from '../src/data/camvid';
import { FashionMnist } from '../src/data/fashion-mnist';
import { Rng } from '../src/random/prng';
import { labelPng, rgbPng, tempDir, tracedSplit, writeCamVid, writeFashionMnist } from './data-fixtures';

const RAW1 = { mean: [0], std: [1 / 255] };
const RAW3 = { mean: [0, 0, 0], std: [1 / 255, 1 / 255, 1 / 255] };

test('normalisation table is (v/255 - mean) / std per channel', () => {
  const t = normalizationTable({ mean: [0.5, 0.25], std: [0.5, 0.125] }, 2);
  assert.ok(Math.abs(t[0] - -1) < 1e-6);
  assert.ok(Math.abs(t[255] - 1) < 1e-6);
  assert.ok(Math.abs(t[256 + 0] - -2) < 1e-6);
  assert.ok(Math.abs(t[256 + 51] - (0.2 - 0.25) / 0.125) < 1e-6);
  assert.throws(() => normalizationTable({ mean: [0], std: [0] }, 1), /std of channel 0 must be > 0/);
  assert.throws(() => normalizationTable({ mean: [0], std: [1] }, 3), /needs 3 means and stds, got 1 and 1/);
});

test('windows: identity copies, flip mirrors, offsets shift with black padding', () => {
  const src = Uint8Array.from([1, 2, 3, 4, 5, 6]); // 2x3, one channel
  const table = normalizationTable(RAW1, 1);
  const out = new Float32Array(6);
  const run = (win: Parameters<typeof windowImage>[5]) => {
    windowImage(src, 0, 2, 3, 1, win, table, out, 0);
    return Array.from(out, Math.round);
  };
  assert.deepEqual(run(identityWindow(2, 3)), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(run({ ...identityWindow(2, 3), flip: true }), [3, 2, 1, 6, 5, 4]);
  assert.deepEqual(run({ ...identityWindow(2, 3), offY: -1, offX: 1 }), [0, 0, 0, 2, 3, 0]);
  const labels = new Int32Array(6);
  windowLabels(src, 0, 2, 3, { ...identityWindow(2, 3), offY: 1, offX: -1, flip: true }, 99, labels, 0);
  assert.deepEqual(Array.from(labels), [5, 4, 99, 99, 99, 99]);
});

test('classification augmentation is a flip of a shifted copy within 4 pixels, black outside', async () => {
  const { dir, cleanup } = tempDir('augment');
  try {
    writeFashionMnist(dir, { train: tracedSplit(30, 8, 8), test: tracedSplit(2, 8, 8) }, false);
    const ds = new FashionMnist({ dir, normalization: RAW1 });
    const raw = ds.raw('train');
    const seenOffsets = new Set<string>();
    let flips = 0;
    for await (const b of ds.batches('train', { batchSize: 30, seed: 4, augment: true })) {
      b.sampleIndices.forEach((idx, i) => {
        const got = Array.from(b.images.subarray(i * 64, (i + 1) * 64), Math.round);
        const src = raw.images.subarray(idx * 64, (idx + 1) * 64);
        const matches: string[] = [];
        for (let dy = -4; dy <= 4; dy++) for (let dx = -4; dx <= 4; dx++) for (const flip of [false, true]) {
          const ok = got.every((v, p) => {
            const y = Math.floor(p / 8);
            const x = p % 8;
            const sy = y + dy;
            const sx = (flip ? 7 - x : x) + dx;
            return v === (sy >= 0 && sy < 8 && sx >= 0 && sx < 8 ? src[sy * 8 + sx] : 0);
          });
          if (ok) matches.push(`${dy},${dx},${flip}`);
        }
        assert.ok(matches.length >= 1, `sample ${idx} is not a padded crop/flip of its source`);
        seenOffsets.add(matches[0].split(',').slice(0, 2).join(','));
        if (matches[0].endsWith('true')) flips++;
      });
    }
    assert.ok(seenOffsets.size > 10, 'crop offsets vary');
    assert.ok(flips > 5 && flips < 25, `about half flipped, got ${flips}/30`);
  } finally {
    cleanup();
  }
});

/** Image pixel (y, x) = [y, x, 20 * label], label = (3y + x) % 12, so pixels say where they came from. */
const traceLabel = (y: number, x: number) => (3 * y + x) % 12;

function writeTracedCamVid(dir: string, h: number, w: number, n: number): void {
  const samples = Array.from({ length: n }, (_, i) => ({
    name: `img${i}.png`,
    image: rgbPng(w, h, (y, x) => [y, x, 20 * traceLabel(y, x)]),
    label: labelPng(w, h, traceLabel),
  }));
  writeCamVid(dir, { train: samples, test: samples.slice(0, 1) });
}

test('segmentation crop + flip moves image and label together', async () => {
  const { dir, cleanup } = tempDir('augment');
  try {
    writeTracedCamVid(dir, 10, 13, 6);
    const ds = new CamVid({ dir, normalization: RAW3 });
    let flips = 0;
    const offsets = new Set<string>();
    for await (const b of ds.batches('train', { batchSize: 3, seed: 8, augment: true, crop: [6, 7] })) {
      assert.deepEqual(b.shape, [b.count, 6, 7, 3]);
      for (let i = 0; i < b.count; i++) {
        const px = (y: number, x: number, c: number) => Math.round(b.images[((i * 6 + y) * 7 + x) * 3 + c]);
        const flipped = px(0, 0, 1) > px(0, 6, 1);
        if (flipped) flips++;
        offsets.add(`${px(0, 0, 0)},${Math.min(px(0, 0, 1), px(0, 6, 1))}`);
        for (let y = 0; y < 6; y++) {
          for (let x = 0; x < 7; x++) {
            const [sy, sx] = [px(y, x, 0), px(y, x, 1)];
            // A contiguous window of the source, mirrored when flipped.
            assert.equal(sy, px(0, 0, 0) + y);
            assert.equal(sx, flipped ? px(0, 0, 1) - x : px(0, 0, 1) + x);
            const label = b.labels[(i * 6 + y) * 7 + x];
            assert.equal(label, traceLabel(sy, sx), `label at (${y}, ${x}) comes from the same source pixel as the image`);
            assert.equal(px(y, x, 2), 20 * label);
          }
        }
      }
    }
    assert.ok(flips > 0 && flips < 6, 'some but not all flipped');
    assert.ok(offsets.size > 1, 'crop offsets vary');
    assert.throws(() => randomCropFlip(4, 4, 5, 4, Rng.from(0)), /crop 5x4 is larger than the 4x4 images/);
  } finally {
    cleanup();
  }
});

