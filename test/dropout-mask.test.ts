// Dropout masks from the counter-based hash (src/core/dropout-mask.ts): only the two values
// dropout may take, the expected keep rate, no correlation between neighbours, a function
// of the seed alone, and drawn from Math.random's stream (which the trainer seeds).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import { dropoutMask, dropoutMaskValues } from '../src/core/dropout-mask';
import { withSeededMathRandom } from '../src/random/seeded-math-random';
import { Rng } from '../src/random/prng';

const N = 200_000;

test('a mask holds 0 and 1/(1 - rate) only, keeping a fraction 1 - rate of the elements', () => {
  for (const rate of [0.2, 0.5, 0.05]) {
    const values = dropoutMaskValues(N, rate, 12345);
    const keep = Math.fround(1 / Math.fround(1 - rate));
    let kept = 0;
    for (const v of values) {
      assert.ok(v === 0 || v === keep, `value ${v} for rate ${rate}`);
      if (v !== 0) kept++;
    }
    const sigma = Math.sqrt(N * rate * (1 - rate));
    assert.ok(Math.abs(kept - N * (1 - rate)) < 5 * sigma, `rate ${rate}: kept ${kept} of ${N}`);
  }
});

test('neighbouring elements and masks of neighbouring seeds are independent', () => {
  const rate = 0.5;
  const a = dropoutMaskValues(N, rate, 7);
  const b = dropoutMaskValues(N, rate, 8);
  let pairs = 0;
  let across = 0;
  for (let i = 0; i + 1 < N; i++) {
    if (a[i] !== 0 && a[i + 1] !== 0) pairs++;
    if (a[i] !== 0 && b[i] !== 0) across++;
  }
  const expected = N * 0.25;
  const sigma = Math.sqrt(N * 0.25 * 0.75);
  assert.ok(Math.abs(pairs - expected) < 5 * sigma, `both neighbours kept: ${pairs}`);
  assert.ok(Math.abs(across - expected) < 5 * sigma, `kept under both seeds: ${across}`);
});

test('the mask is a function of the seed, which comes from the (seedable) Math.random stream', async () => {
  await init('cpu', { log: null });
  assert.deepEqual(dropoutMaskValues(1000, 0.3, 99), dropoutMaskValues(1000, 0.3, 99));
  assert.notDeepEqual(dropoutMaskValues(1000, 0.3, 99), dropoutMaskValues(1000, 0.3, 100));
  const draw = (seed: number) => withSeededMathRandom(Rng.from(seed), () => tf.tidy(() => Array.from(dropoutMask([4, 5, 6], 0.4).dataSync())));
  assert.deepEqual(draw(1), draw(1));
  assert.notDeepEqual(draw(1), draw(2));
});

test('a rate outside [0, 1) is refused, naming it', () => {
  assert.throws(() => dropoutMaskValues(10, 1, 0), /dropout: rate must be in \[0, 1\), got 1/);
  assert.throws(() => dropoutMaskValues(10, -0.1, 0), /got -0.1/);
});

test('MaskDropout scales kept values and zeroes the rest in training only; FC-DenseNet uses it', async () => {
  await init('cpu', { log: null });
  const { MaskDropout } = await import('../src/layers/dropout');
  const zoo = await import('../src/zoo');
  const layer = new MaskDropout({ name: 'drop', rate: 0.25 });
  const x = tf.fill([2, 8, 8, 4], 3);
  const trained = Array.from((layer.apply(x, { training: true }) as tf.Tensor).dataSync());
  assert.ok(trained.every((v) => v === 0 || v === 4), 'values are 0 or 3 / 0.75');
  assert.ok(trained.some((v) => v === 0) && trained.some((v) => v === 4));
  assert.deepEqual(Array.from((layer.apply(x) as tf.Tensor).dataSync()), Array.from(x.dataSync()));
  assert.throws(() => new MaskDropout({ name: 'bad', rate: 1.5 }), /bad: rate must be in \[0, 1\), got 1.5/);
  const model = zoo.create('fc-densenet56', { inputShape: [32, 32, 3] });
  const classes = model.layers.map((l) => l.getClassName());
  assert.ok(classes.includes('DenseNetDropout') && !classes.includes('Dropout'), classes.join(','));
  model.dispose();
});
