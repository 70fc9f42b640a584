import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import { isKernel, Optimizer, OptimizerConfig, Param, trainableParams } from '../src/train/optimizers';
import * as zoo from '../src/zoo';
import { TINY_MODEL, TINY_SPEC_OPTIONS } from './train-fixtures';

before(async () => {
  await init('wasm', { log: null });
});

const SGD: OptimizerConfig = {
  optimizer: 'sgd', momentum: 0.9, nesterov: true, rho: 0.9, epsilon: 1e-6, weightDecay: 0.1, weightDecayScope: 'all',
};

function near(actual: ArrayLike<number>, expected: number[], what: string, tol = 1e-6): void {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: ${actual[i]} != ${expected[i]}`);
  }
}

function param(values: number[], decay = true, name = 'w'): Param {
  return { name, variable: tf.variable(tf.tensor1d(values), true), decay, lrScale: 1 };
}

test('SGD, Nesterov 0.9, no dampening, weight decay added to the gradient: two steps by hand', () => {
  const p = param([1, -2]);
  const opt = new Optimizer(SGD, [p]);
  const g = tf.tensor1d([0.5, 1]);
  // step 1: g' = g + 0.1 w = [0.6, 0.8]; v = g'; w -= 0.1 (g' + 0.9 v) = 0.1 [1.14, 1.52]
  opt.apply([g], 0.1);
  near(p.variable.dataSync(), [0.886, -2.152], 'w after step 1');
  // step 2: g' = [0.5886, 0.7848]; v = 0.9 [0.6, 0.8] + g' = [1.1286, 1.5048];
  //         w -= 0.1 (g' + 0.9 v) = 0.1 [1.60434, 2.13912]
  opt.apply([g], 0.1);
  near(p.variable.dataSync(), [0.725566, -2.365912], 'w after step 2');
  opt.dispose();
});

test('SGD with plain momentum steps by v; without decay the weight is left out of it', () => {
  const p = param([1, -2]);
  const q = param([3], false, 'q');
  const opt = new Optimizer({ ...SGD, nesterov: false }, [p, q]);
  opt.apply([tf.tensor1d([0.5, 1]), tf.tensor1d([1])], 0.1);
  near(p.variable.dataSync(), [0.94, -2.08], 'w (decayed): v = g + 0.1 w = [0.6, 0.8]');
  near(q.variable.dataSync(), [2.9], 'q (not decayed): v = g = 1');
  opt.dispose();
});

test('RMSprop as Lasagne: a = 0.9 a + 0.1 g^2; w -= lr g / sqrt(a + 1e-6)', () => {
  const p = param([1, -2]);
  const opt = new Optimizer({ ...SGD, optimizer: 'rmsprop', weightDecay: 0 }, [p]);
  opt.apply([tf.tensor1d([0.5, 1])], 0.01);
  // a = [0.025, 0.1]; steps 0.01 * 0.5 / sqrt(0.025001) and 0.01 * 1 / sqrt(0.100001)
  near(p.variable.dataSync(), [1 - 0.03162214, -2 - 0.03162262], 'w');
  opt.apply([tf.tensor1d([0.5, 1])], 0.01);
  // a = [0.9 * 0.025 + 0.025, 0.9 * 0.1 + 0.1] = [0.0475, 0.19]
  near(p.variable.dataSync(), [1 - 0.03162214 - 0.005 / Math.sqrt(0.047501), -2 - 0.03162262 - 0.01 / Math.sqrt(0.190001)], 'w after 2');
  opt.dispose();
});

test('weight decay scope: all weights (DenseNet) or only conv/dense kernels (Tiramisu)', () => {
  const model = zoo.create(TINY_MODEL, { inputShape: [8, 8, 1], numClasses: 10, ...TINY_SPEC_OPTIONS });
  const all = trainableParams(model, 'all');
  assert.ok(all.every((p) => p.decay));
  const kernels = trainableParams(model, 'kernels');
  const decayed = kernels.filter((p) => p.decay).map((p) => p.name);
  assert.ok(decayed.includes('stem_conv/kernel') && decayed.includes('classifier/kernel') && decayed.includes('block2/layer1/conv2/kernel'));
  assert.ok(decayed.every(isKernel));
  const spared = kernels.filter((p) => !p.decay).map((p) => p.name);
  assert.ok(spared.includes('classifier/bias') && spared.includes('final_norm/gamma') && spared.includes('block1/layer1/norm1/beta'));
  model.dispose();
});

test('optimizer slots round-trip exactly, and a mismatched state is refused naming the slot', async () => {
  const p = param([1, -2]);
  const opt = new Optimizer(SGD, [p]);
  opt.apply([tf.tensor1d([0.5, 1])], 0.1);
  const slots = await opt.readSlots();
  assert.deepEqual([...slots.keys()], ['w/momentum']);
  near(slots.get('w/momentum')!.data, [0.6, 0.8], 'momentum');
  const p2 = param([0.886, -2.152]);
  const restored = new Optimizer(SGD, [p2]);
  restored.loadSlots(slots, 'ckpt');
  restored.apply([tf.tensor1d([0.5, 1])], 0.1);
  opt.apply([tf.tensor1d([0.5, 1])], 0.1);
  assert.deepEqual(Array.from(p2.variable.dataSync()), Array.from(p.variable.dataSync()));
  assert.throws(() => restored.loadSlots(new Map([['w/momentum', { shape: [3], data: new Float32Array(3) }]]), 'ckpt/optimizer.safetensors'),
    /ckpt\/optimizer.safetensors: the optimizer state does not fit .* slot 'w\/momentum' has shape \[3\] but the weight needs \[2\]/);
  assert.throws(() => restored.loadSlots(new Map(), 'x'), /missing slot 'w\/momentum'/);
  opt.dispose();
  restored.dispose();
});
