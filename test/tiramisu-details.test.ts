// The reference code's training details, each a named option: kernel initialisation (torchvision's
// untruncated He-normal for DenseNet, the FC-DenseNet authors' He-uniform), and the Tiramisu weight
// decay (1e-4 * sum(w^2) added to the loss over conv kernels and BatchNorm scales), batch-statistics
// inference, and the DenseNet paper's dropout placement.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import * as zoo from '../src/zoo';
import { Optimizer, Param, trainableParams } from '../src/train/optimizers';
import { RECIPES } from '../src/train/recipes';

before(async () => {
  await init('cpu', { log: null });
});

/** Every conv kernel's values divided by its He standard deviation sqrt(2 / fan_in), pooled. */
function standardisedKernels(model: tf.LayersModel): { values: number[]; limitRatio: number[] } {
  const values: number[] = [];
  const limitRatio: number[] = [];
  for (const w of model.trainableWeights.filter((v) => v.shape.length === 4)) {
    const shape = w.shape as number[];
    const fanIn = shape[0] * shape[1] * shape[2];
    const std = Math.sqrt(2 / fanIn);
    const data = w.read().dataSync();
    let max = 0;
    for (const v of data) {
      values.push(v / std);
      max = Math.max(max, Math.abs(v));
    }
    limitRatio.push(max / Math.sqrt(6 / fanIn));
  }
  return { values, limitRatio };
}

const moments = (xs: number[]) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
  return { mean, std, beyond2: xs.filter((x) => Math.abs(x) > 2).length / xs.length };
};

test('DenseNet kernels are He-normal, untruncated (torchvision\'s kaiming_normal_): unit spread, 4.6% beyond 2 sigma', () => {
  const model = zoo.create('densenet-bc-100-k12', { depth: 40, seed: 3 });
  const { values } = standardisedKernels(model);
  const m = moments(values);
  assert.ok(values.length > 100_000);
  assert.ok(Math.abs(m.mean) < 0.01 && Math.abs(m.std - 1) < 0.02, `mean ${m.mean}, std ${m.std} of w / sqrt(2 / fan_in)`);
  assert.ok(Math.abs(m.beyond2 - 0.0455) < 0.005, `${(m.beyond2 * 100).toFixed(2)}% beyond 2 sigma (tfjs's truncated heNormal: 0%)`);
  model.dispose();
});

test('FC-DenseNet kernels are He-uniform (the authors\'): within sqrt(6 / fan_in), spread 1; and kernelInit chooses the other', () => {
  const model = zoo.create('fc-densenet56', { seed: 3 });
  const { values, limitRatio } = standardisedKernels(model);
  const m = moments(values);
  assert.ok(limitRatio.every((r) => r <= 1), 'every kernel inside the uniform bound');
  assert.ok(Math.min(...limitRatio) > 0.9, 'and filling it');
  assert.ok(Math.abs(m.std - 1) < 0.02, `std ${m.std} of w / sqrt(2 / fan_in)`);
  assert.equal(m.beyond2, 0, 'a uniform within sqrt(3) sigma never passes 2 sigma');
  model.dispose();
  const normal = zoo.create('fc-densenet56', { seed: 3, kernelInit: 'he-normal' });
  assert.ok(standardisedKernels(normal).limitRatio.some((r) => r > 1), 'he-normal passes the uniform bound');
  normal.dispose();
  assert.throws(() => zoo.resolve('fc-densenet56', { kernelInit: 'glorot' as never }), /kernelInit must be one of he-normal, he-uniform/);
});

test('the tiramisu decay: 2e-4 * w added to the gradients of conv kernels and BatchNorm scales only, against a hand computation', () => {
  const config = RECIPES.tiramisu;
  const model = zoo.create('fc-densenet56', { blockLayers: [1, 1, 1, 1, 1], growthRate: 2 });
  const params = trainableParams(model, config.weightDecayScope);
  const decayed = new Set(params.filter((p) => p.decay).map((p) => p.name.split('/').pop()));
  const spared = new Set(params.filter((p) => !p.decay).map((p) => p.name.split('/').pop()));
  assert.deepEqual([...decayed].sort(), ['gamma', 'kernel']);
  assert.deepEqual([...spared].sort(), ['beta', 'bias']);
  model.dispose();

  // RMSprop, one step from a zero average: a = (1 - rho) g'^2, w -= lr g' / sqrt(a + eps), g' = g + 2 wd w (decayed) or g.
  const param = (name: string, decay: boolean): Param => ({ name, variable: tf.variable(tf.tensor1d([2, -4])), decay, lrScale: 1 });
  const [kernel, beta] = [param('conv/kernel', true), param('norm/beta', false)];
  const opt = new Optimizer(config, [kernel, beta]);
  const g = [0.001, 0.002];
  opt.apply([tf.tensor1d(g), tf.tensor1d(g)], 1e-3);
  const step = (gi: number) => (1e-3 * gi) / Math.sqrt((1 - config.rho) * gi * gi + config.epsilon);
  const want = (w: number[], decay: boolean) => w.map((wi, i) => wi - step(g[i] + (decay ? 2 * 1e-4 * wi : 0)));
  const near = (got: ArrayLike<number>, exp: number[]) => exp.forEach((e, i) => assert.ok(Math.abs(got[i] - e) < 1e-6, `${got[i]} vs ${e}`));
  near(kernel.variable.dataSync(), want([2, -4], true));
  near(beta.variable.dataSync(), want([2, -4], false));
  assert.ok(Math.abs(kernel.variable.dataSync()[0] - beta.variable.dataSync()[0]) > 1e-5, 'the decay moved the kernel differently');
  opt.dispose();
});

test('batchNorm "batch": inference normalises with each batch\'s statistics (the authors\' test time), leaving the running averages alone', async () => {
  const options: zoo.ModelOptions = { blockLayers: [2, 1, 1, 1, 1], growthRate: 4, dropRate: 0, inputShape: [45, 38, 3], numClasses: 5 };
  const running = zoo.create('fc-densenet56', { ...options, seed: 2 });
  const batch = zoo.create('fc-densenet56', { ...options, seed: 2, batchNorm: 'batch' });
  assert.equal(batch.card.spec.batchNorm, 'batch', 'recorded in the spec (checkpoints, copies at other sizes)');
  const x = tf.randomNormal([2, 45, 38, 3], 0.5, 2, 'float32', 9); // far from the fresh running averages (0, 1)
  const stats = (m: tf.LayersModel) => m.weights.filter((w) => /moving_/.test(w.originalName)).map((w) => w.read().dataSync().slice());
  const before = stats(batch);
  const trainingMode = batch.apply(x, { training: true }) as tf.Tensor; // batch statistics, and the averages move
  const afterTraining = stats(batch);
  batch.setWeights(running.getWeights()); // back to the same weights and averages
  const inferBatch = batch.predict(x) as tf.Tensor;
  const inferRunning = running.predict(x) as tf.Tensor;
  const diff = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
  assert.ok(diff(inferBatch, trainingMode) < 1e-4, `batch-stat inference = the training-mode forward: ${diff(inferBatch, trainingMode)}`);
  assert.ok(diff(inferBatch, inferRunning) > 1e-2, 'and differs from running-average inference');
  assert.ok(afterTraining.some((s, i) => s.some((v, j) => v !== before[i][j])), 'training moved the averages');
  assert.deepEqual(stats(batch), before, 'inference with batch statistics did not');
  assert.throws(() => zoo.resolve('densenet121', { batchNorm: 'batch' }), /batchNorm 'batch' .* applies to FC-DenseNet models/);
  tf.dispose([x, trainingMode, inferBatch, inferRunning]);
  running.dispose();
  batch.dispose();
});

test('DenseNet dropout goes after every conv but the stem\'s, transitions included (the paper\'s); last-conv and FC-DenseNet refusal', () => {
  const dropLayers = (placement?: 'every-conv' | 'last-conv') => {
    const model = zoo.create('densenet-bc-100-k12', { depth: 16, dropRate: 0.2, dropoutPlacement: placement });
    const names = model.layers.filter((l) => l.getClassName() === 'DenseNetDropout').map((l) => l.name);
    const blocks = model.layers.filter((l) => l.getClassName() === 'DenseNetDenseBlock').map((l) => l.getConfig().dropoutPlacement);
    model.dispose();
    return { names, blocks };
  };
  const paper = dropLayers();
  assert.deepEqual(paper.names, ['transition1_drop', 'transition2_drop'], 'a dropout after each transition conv');
  assert.deepEqual(paper.blocks, ['every-conv', 'every-conv', 'every-conv'], 'and after both convs of every dense layer');
  const torchvision = dropLayers('last-conv');
  assert.deepEqual(torchvision.names, []);
  assert.deepEqual(torchvision.blocks, ['last-conv', 'last-conv', 'last-conv']);
  assert.throws(() => zoo.create('fc-densenet56', { dropoutPlacement: 'last-conv' }), /fc-densenet56: 'dropoutPlacement' apply to DenseNet models/);
  assert.throws(() => zoo.create('densenet121', { dropoutPlacement: 'after-pool' as 'last-conv' }), /dropoutPlacement must be one of every-conv, last-conv, got "after-pool"/);
});
