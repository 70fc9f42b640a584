// The WGSL kernels of the memory-efficient mode (src/backend/webgpu-kernels.ts) against the cpu
// backend's on random data, at odd sizes and channel counts, with more feature maps than one
// shader can bind. Runs on whatever adapter Dawn offers (SwiftShader here); skips without one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../src/tf';
import { init, webgpuProbe } from '../src/backend';
import { BATCH_MOMENTS, BN_RELU, BN_RELU_GRAD } from '../src/core/fused-kernels';
import { DROPOUT_MASK } from '../src/core/dropout-mask';
import { maxRelativeErrorOf } from './helpers';

const LEAD = [3, 5, 7];
/** Seven pieces: more than the default limit of 8 storage buffers lets one shader read beside its other inputs. */
const WIDTHS = [5, 3, 13, 1, 7, 9, 2];

interface Values { shape: number[]; values: Float32Array }

/** Random inputs of a BN-ReLU call, made on cpu so both backends get the same values. */
function inputs(seed: number): Record<string, Values> {
  const channels = WIDTHS.reduce((a, b) => a + b, 0);
  const out: Record<string, Values> = {};
  const put = (name: string, t: tf.Tensor) => { out[name] = { shape: t.shape, values: t.dataSync() as Float32Array }; };
  tf.tidy(() => {
    WIDTHS.forEach((w, i) => put(`x${i}`, tf.randomNormal([...LEAD, w], 0, 1, 'float32', seed + i)));
    put('dr', tf.randomNormal([...LEAD, channels], 0, 1, 'float32', seed + 20));
    put('gamma', tf.mul(tf.randomUniform([channels], 0.5, 1.5, 'float32', seed + 21), tf.sign(tf.randomUniform([channels], -1, 2, 'float32', seed + 22))));
    put('beta', tf.randomUniform([channels], -0.5, 0.5, 'float32', seed + 23));
    put('mean', tf.randomUniform([channels], -0.3, 0.3, 'float32', seed + 24));
    put('invStd', tf.randomUniform([channels], 0.7, 1.4, 'float32', seed + 25));
    put('scale', tf.randomUniform([channels], -1.5, 1.5, 'float32', seed + 26));
    put('shift', tf.randomUniform([channels], -0.5, 0.5, 'float32', seed + 27));
    WIDTHS.forEach((w, j) => put(`acc${j}`, tf.randomNormal([...LEAD, w], 0, 1, 'float32', seed + 40 + j)));
  });
  return out;
}

/** Runs a kernel on `backend` and reads every output (asynchronously: webgpu has no sync read). */
async function run(backend: string, kernel: string, given: Record<string, Values>, names: string[], attrs: object = {}): Promise<Float32Array[]> {
  await init(backend, { log: null });
  const ins = Object.fromEntries(names.map((n) => [n, tf.tensor(given[n].values, given[n].shape)]));
  const result = tf.engine().runKernel(kernel, ins, attrs as tf.NamedAttrMap) as tf.Tensor | tf.Tensor[];
  const outs = Array.isArray(result) ? result : [result];
  const values = await Promise.all(outs.map(async (t) => Float32Array.from((await t.data()) as Float32Array)));
  tf.dispose([...Object.values(ins), ...outs]);
  return values;
}

async function assertClose(kernel: string, given: Record<string, Values>, names: string[], attrs: object = {}, tolerance = 1e-4): Promise<number> {
  const want = await run('cpu', kernel, given, names, attrs);
  const got = await run('webgpu', kernel, given, names, attrs);
  assert.equal(got.length, want.length, `${kernel}: outputs`);
  let worst = 0;
  got.forEach((g, i) => {
    assert.equal(g.length, want[i].length, `${kernel}: output ${i} size`);
    const err = maxRelativeErrorOf(g, want[i], 1e-3);
    worst = Math.max(worst, err);
    assert.ok(err < tolerance, `${kernel}: output ${i} relative error ${err.toExponential(2)}`);
  });
  return worst;
}

/** True (after skipping) when there is no adapter; otherwise leaves cpu active, where the inputs are made. */
async function skipWithoutAdapter(t: { skip: (reason: string) => void }): Promise<boolean> {
  const probe = await webgpuProbe();
  if (!probe.adapter) t.skip(`no WebGPU adapter here: ${probe.reason}`);
  await init('cpu', { log: null });
  return probe.adapter === null;
}

const pieceNames = WIDTHS.map((_, i) => `x${i}`);

test('webgpu BN-ReLU on seven pieces equals cpu', async (t) => {
  if (await skipWithoutAdapter(t)) return;
  const err = await assertClose(BN_RELU, inputs(1), [...pieceNames, 'scale', 'shift']);
  t.diagnostic(`largest relative error ${err.toExponential(2)}`);
});

test('webgpu BN-ReLU backward equals cpu: per-piece splits with accumulators, finer splits, the whole input', async (t) => {
  if (await skipWithoutAdapter(t)) return;
  const given = inputs(2);
  const bn = ['dr', 'gamma', 'beta', 'mean', 'invStd'];
  const withAcc = WIDTHS.map((_, j) => j).filter((j) => j !== 1).map((j) => `acc${j}`);
  let worst = await assertClose(BN_RELU_GRAD, given, [...pieceNames, ...bn, ...withAcc], { splits: WIDTHS });
  const finer = [2, 3, 3, 6, 7, 1, 7, 4, 5, 2];
  worst = Math.max(worst, await assertClose(BN_RELU_GRAD, given, [...pieceNames, ...bn], { splits: finer }));
  // Naive mode's call: the concatenation as one x.
  await init('cpu', { log: null });
  const whole = tf.tidy(() => tf.concat(pieceNames.map((n) => tf.tensor(given[n].values, given[n].shape)), 3));
  const single = { ...given, x: { shape: whole.shape, values: whole.dataSync() as Float32Array } };
  whole.dispose();
  worst = Math.max(worst, await assertClose(BN_RELU_GRAD, single, ['x', ...bn]));
  t.diagnostic(`largest relative error ${worst.toExponential(2)}`);
});

test('webgpu batch moments equal cpu; the dropout mask is the same bits', async (t) => {
  if (await skipWithoutAdapter(t)) return;
  const given = { x: tf.tidy(() => { const x = tf.add(tf.mul(tf.randomNormal([4, 9, 7, 37], 0, 1, 'float32', 5), 3), 2); return { shape: x.shape, values: x.dataSync() as Float32Array }; }) };
  // The cpu backend has no moments kernel: tf.moments is the reference (biased variance, as the kernel's).
  const want = tf.tidy(() => {
    const m = tf.moments(tf.tensor(given.x.values, given.x.shape), [0, 1, 2]);
    return [m.mean.dataSync() as Float32Array, m.variance.dataSync() as Float32Array];
  });
  const got = await run('webgpu', BATCH_MOMENTS, given, ['x']);
  const errors = got.map((g, i) => maxRelativeErrorOf(g, want[i], 1e-3));
  errors.forEach((e, i) => assert.ok(e < 1e-4, `${['mean', 'variance'][i]}: relative error ${e.toExponential(2)}`));
  t.diagnostic(`moments: largest relative error ${Math.max(...errors).toExponential(2)}`);
  const attrs = { shape: [5, 11, 13], rate: 0.3, seed: 12345 };
  const [cpuMask] = await run('cpu', DROPOUT_MASK, {}, [], attrs);
  const [gpuMask] = await run('webgpu', DROPOUT_MASK, {}, [], attrs);
  assert.deepEqual(Array.from(gpuMask), Array.from(cpuMask));
  const kept = cpuMask.filter((v) => v > 0).length / cpuMask.length;
  assert.ok(kept > 0.6 && kept < 0.8, `kept ${kept}`);
});

test('memory-efficient training on webgpu builds no per-layer concatenation', async (t) => {
  if (await skipWithoutAdapter(t)) return;
  await init('webgpu', { log: null });
  const { DenseBlock } = await import('../src/layers/dense-block');
  const block = new DenseBlock({ numLayers: 3, growthRate: 4, bottleneckWidth: 8, useBias: false, dropRate: 0, memoryEfficient: true, output: 'all' });
  const x = tf.randomNormal([2, 6, 6, 5], 0, 1, 'float32', 3) as tf.Tensor4D;
  block.apply(tf.input({ shape: [6, 6, 5] }));
  const probe = tf.randomNormal([2, 6, 6, 17]);
  const profile = await tf.profile(async () => {
    const g = tf.grads((input: tf.Tensor) => tf.sum(tf.mul(block.apply(input, { training: true }) as tf.Tensor, probe)))([x]);
    await g[0].data();
    tf.dispose(g);
  });
  const featureSized = (shape: number[] | null) => shape !== null && shape.length === 4 && shape[1] === 6;
  const copies = profile.kernels.filter((k) => ['Concat', 'SplitV', 'Add', 'AddN'].includes(k.name) && k.outputShapes.some(featureSized));
  assert.deepEqual(copies.map((k) => k.name).sort(), ['Concat', 'SplitV'], 'only the block output and its gradient');
  assert.ok(profile.kernels.some((k) => k.name === BN_RELU_GRAD), 'the WGSL backward ran');
  tf.dispose([x, probe]);
});
