// The memory planner's predictions against measured peaks of real training steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import { measureMode, zooFactory } from '../src/measure/memory';
import { parseBytes, planMemory } from '../src/measure/planner';

const CASES: Array<[string, [number, number, number], number]> = [
  ['densenet-bc-100-k12', [16, 16, 3], 3], // a CIFAR DenseNet-BC
  ['densenet121', [64, 64, 3], 2], // an ImageNet DenseNet at reduced size
  ['fc-densenet56', [32, 32, 3], 2], // an FC-DenseNet
];

for (const [name, inputShape, batch] of CASES) {
  test(`plan predicts the measured peak of ${name} ${inputShape.join('x')} batch ${batch} within 10%, both modes`, async () => {
    await init('wasm', { log: null });
    const plan = await planMemory(name, { batch, budgetBytes: 1e9, inputShape });
    assert.equal(tf.getBackend(), 'wasm', 'the planner restores the active backend');
    for (const mode of ['naive', 'efficient'] as const) {
      const measured = await measureMode(zooFactory(name, { inputShape }), mode === 'efficient', { batch, inputShape });
      const predicted = plan[mode].peakBytes;
      const error = Math.abs(predicted - measured.peakBytes) / measured.peakBytes;
      assert.ok(error < 0.1, `${mode}: predicted ${predicted}, measured ${measured.peakBytes}`);
    }
    assert.ok(plan.efficient.bytesPerImage < plan.naive.bytesPerImage);
    assert.ok(plan.efficient.maxBatch >= plan.naive.maxBatch);
    const atMax = await planMemory(name, { batch: plan.efficient.maxBatch, budgetBytes: 1e9, inputShape });
    assert.ok(atMax.efficient.peakBytes <= 1e9, 'the largest batch fits the budget');
  });
}

test('the budget check holds where the weight update, not the activations, sets the peak at small batches', async () => {
  await init('wasm', { log: null });
  // Wide non-BC model: 27M parameters, small activations at 8x8.
  const plan = await planMemory('densenet-100-k24', { batch: 1, budgetBytes: 2e9, inputShape: [8, 8, 3] });
  const atMax = await planMemory('densenet-100-k24', { batch: plan.efficient.maxBatch, budgetBytes: 2e9, inputShape: [8, 8, 3] });
  assert.ok(plan.efficient.maxBatch > 0 && atMax.efficient.peakBytes <= 2e9);
  assert.ok(plan.efficient.peakBytes > plan.efficient.fixedBytes, 'batch 1 peak includes the update');
});

test('budget sizes parse with units, and bad ones are clear errors', () => {
  assert.equal(parseBytes('8GB'), 8e9);
  assert.equal(parseBytes('512 MB'), 512e6);
  assert.equal(parseBytes('2GiB'), 2 * 2 ** 30);
  assert.equal(parseBytes('1e9'), 1e9);
  assert.throws(() => parseBytes('8XB'), /'8XB': expected a size such as 8GB/);
});
