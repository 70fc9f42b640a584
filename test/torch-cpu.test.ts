// The native torch-cpu backend: every kernel it replaces must give the cpu backend's
// results on random data (relative error < 1e-4), and run natively (not through its
// cpu fallback). Without the addon, these tests are skipped and the backend must
// report "not installed" so that selection falls through to wasm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as tf from '../src/tf';
import { init, listCandidates } from '../src/backend';
import {
  ADDON_PATH, TORCH_CPU, nativeCallCounts, registerTorchCpuBackend, threadsFromEnv, torchCpuInfo,
} from '../src/backend/torch-cpu';
import { BATCH_MOMENTS, BN_RELU, BN_RELU_GRAD } from '../src/core/fused-kernels';
import { maxRelativeErrorOf } from './helpers';
import * as zoo from '../src/zoo';
import { trainingHarness } from '../src/measure/training-step';

registerTorchCpuBackend();
const info = torchCpuInfo();
const skip = info.available ? false : `torch-cpu unavailable: ${info.reason}; to build it: node scripts/build-native.js`;
const TOLERANCE = 1e-4;

// ---------------------------------------------------------------------------------------------
// Helpers

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = mulberry32(1234);

/** Random values in [lo, hi) with the given shape, kept as plain data so each backend builds its own tensor. */
interface Data { values: Float32Array; shape: number[] }
function data(shape: number[], lo = -1, hi = 1): Data {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = lo + (hi - lo) * rand();
  return { values, shape };
}
const t = (d: Data) => tf.tensor(Float32Array.from(d.values), d.shape);

type Run = () => tf.Tensor | tf.Tensor[];

function runOn(backend: string, run: Run): { shape: number[]; values: Float32Array; dtype: string }[] {
  assert.ok(tf.setBackend(backend) !== undefined);
  assert.equal(tf.getBackend(), backend);
  return tf.tidy(() => {
    const out = run();
    return (Array.isArray(out) ? out : [out]).map((o) => ({ shape: o.shape, values: Float32Array.from(o.dataSync() as Float32Array), dtype: o.dtype }));
  });
}


/** Runs `run` on cpu and torch-cpu; outputs must agree, and `kernel` must have run natively. */
function expectSame(label: string, kernel: string | string[], run: Run): void {
  const kernels = Array.isArray(kernel) ? kernel : [kernel];
  const want = runOn('cpu', run);
  const before = nativeCallCounts();
  const got = runOn(TORCH_CPU, run);
  const after = nativeCallCounts();
  for (const k of kernels) {
    assert.ok((after[k] ?? 0) > (before[k] ?? 0), `${label}: kernel ${k} did not run in libtorch (fell back to cpu)`);
  }
  assert.equal(got.length, want.length, `${label}: number of outputs`);
  got.forEach((g, i) => {
    assert.deepEqual(g.shape, want[i].shape, `${label}: shape of output ${i}`);
    assert.equal(g.dtype, want[i].dtype, `${label}: dtype of output ${i}`);
    const err = maxRelativeErrorOf(g.values, want[i].values);
    assert.ok(err < TOLERANCE, `${label}: output ${i} relative error ${err.toExponential(2)} >= ${TOLERANCE}`);
  });
}

// ---------------------------------------------------------------------------------------------
// Availability and selection (these run with or without the addon)

test('torch-cpu is a candidate right before wasm', () => {
  const names = listCandidates().map((c) => c.name);
  assert.equal(names.indexOf(TORCH_CPU) + 1, names.indexOf('wasm'));
});

test('DENSENET_THREADS is parsed strictly', () => {
  assert.equal(threadsFromEnv({ DENSENET_THREADS: '2' }), 2);
  assert.ok(threadsFromEnv({}) >= 1);
  assert.throws(() => threadsFromEnv({ DENSENET_THREADS: 'two' }), /DENSENET_THREADS must be a positive integer, got 'two'/);
  assert.throws(() => threadsFromEnv({ DENSENET_THREADS: '0' }), /positive integer/);
});

test('without the addon, selection falls through to wasm and forcing torch-cpu says how to install it', () => {
  const root = path.resolve(__dirname, '..', '..');
  const script = `
    const b = require(${JSON.stringify(path.join(root, 'dist/src/backend'))});
    const tc = require(${JSON.stringify(path.join(root, 'dist/src/backend/torch-cpu'))});
    tc.registerTorchCpuBackend();
    const out = { available: tc.torchCpuInfo().available, chosen: b.choose(undefined, { env: {} }).name };
    try { b.choose('torch-cpu', { env: {} }); } catch (e) { out.error = e.message; }
    console.log(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['-e', script], {
    env: { ...process.env, DENSENET_TORCH_ADDON: path.join(root, 'no-such-dir', 'torch_cpu.node') }, encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(out.available, false);
  assert.equal(out.chosen, 'wasm');
  assert.match(out.error, /backend 'torch-cpu' is not installed/);
  assert.match(out.error, /apt-get install libtorch-dev/);
  assert.match(out.error, /native addon was not built/);
});

test('the install-time builder skips cleanly when libtorch is missing or the build is switched off', () => {
  const builder = require(path.resolve(__dirname, '..', '..', 'scripts', 'build-native.js')) as {
    main(env: Record<string, string>): string;
    findLibtorch(env: Record<string, string>): string | object;
  };
  assert.match(builder.main({ DENSENET_SKIP_NATIVE: '1' }), /skipped \(DENSENET_SKIP_NATIVE=1\)/);
  const missing = path.join(__dirname, 'no-such-libtorch');
  assert.match(String(builder.findLibtorch({ LIBTORCH: missing })), /LIBTORCH=.*no-such-libtorch has no include\/ATen\/ATen.h/);
  assert.match(builder.main({ LIBTORCH: missing }), /torch-cpu backend not built: LIBTORCH=.*; using the default backends/);
});

test('init selects torch-cpu when asked', { skip }, async () => {
  const choice = await init(TORCH_CPU, { log: null });
  assert.equal(choice.name, TORCH_CPU);
  assert.equal(tf.getBackend(), TORCH_CPU);
  assert.equal(torchCpuInfo().threads, threadsFromEnv());
});

// ---------------------------------------------------------------------------------------------
// Convolutions (strides 1/2, same/valid/explicit, kernels 1/3/7, even and odd sizes)

const convCases: Array<{ k: number; s: number; pad: 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]]; size: number; dilation?: number }> = [
  { k: 1, s: 1, pad: 'same', size: 8 }, { k: 1, s: 2, pad: 'valid', size: 9 },
  { k: 3, s: 1, pad: 'same', size: 8 }, { k: 3, s: 1, pad: 'valid', size: 9 },
  { k: 3, s: 2, pad: 'same', size: 8 }, { k: 3, s: 2, pad: 'same', size: 9 }, { k: 3, s: 2, pad: 'valid', size: 8 },
  { k: 7, s: 2, pad: 'same', size: 16 }, { k: 7, s: 1, pad: 'valid', size: 9 },
  { k: 3, s: 1, pad: [[0, 0], [1, 2], [2, 0], [0, 0]], size: 8 }, { k: 3, s: 1, pad: 'same', size: 8, dilation: 2 },
];

for (const c of convCases) {
  const label = `k${c.k} s${c.s} ${JSON.stringify(c.pad)} ${c.size}x${c.size}${c.dilation ? ` dilation ${c.dilation}` : ''}`;
  const x = data([2, c.size, c.size, 6]);
  const w = data([c.k, c.k, 6, 5]);

  test(`Conv2D ${label}`, { skip }, () => {
    expectSame(label, tf.Conv2D, () => tf.conv2d(t(x) as tf.Tensor4D, t(w) as tf.Tensor4D, c.s, c.pad, 'NHWC', c.dilation ?? 1));
  });

  if (c.dilation) continue; // the gradient kernels take no dilation in tfjs
  const y = tf.tidy(() => { tf.setBackend('cpu'); return tf.conv2d(t(x) as tf.Tensor4D, t(w) as tf.Tensor4D, c.s, c.pad).shape; });
  const dy = data(y);

  test(`Conv2DBackpropInput ${label}`, { skip }, () => {
    expectSame(label, tf.Conv2DBackpropInput, () =>
      tf.conv2dTranspose(t(dy) as tf.Tensor4D, t(w) as tf.Tensor4D, x.shape as [number, number, number, number], c.s, c.pad as 'same'));
  });

  test(`Conv2DBackpropFilter ${label}`, { skip }, () => {
    expectSame(label, tf.Conv2DBackpropFilter, () => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: t(x), dy: t(dy) }, {
      strides: [c.s, c.s], pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: w.shape,
    } as unknown as tf.NamedAttrMap) as tf.Tensor);
  });
}

test('Conv2DBackpropInput as FC-DenseNet\'s 3x3/2 transposed conv (8x8 -> 16x16)', { skip }, () => {
  const x = data([2, 8, 8, 7]);
  const w = data([3, 3, 4, 7]);
  expectSame('conv2dTranspose', tf.Conv2DBackpropInput, () => tf.conv2dTranspose(t(x) as tf.Tensor4D, t(w) as tf.Tensor4D, [2, 16, 16, 4], 2, 'same'));
});

test('FusedConv2D with bias and each activation', { skip }, () => {
  const x = data([2, 8, 8, 6]);
  const w = data([3, 3, 6, 5]);
  const b = data([5]);
  for (const activation of ['linear', 'relu', 'relu6', 'sigmoid', 'elu', 'leakyrelu'] as const) {
    expectSame(`fused ${activation}`, tf.FusedConv2D, () => tf.fused.conv2d({
      x: t(x) as tf.Tensor4D, filter: t(w) as tf.Tensor4D, strides: 1, pad: 'same', bias: t(b), activation, leakyreluAlpha: 0.1,
    }));
  }
});

test('conv2d gradients through tf.grads (the training path)', { skip }, () => {
  const x = data([2, 9, 9, 4]);
  const w = data([3, 3, 4, 6]);
  const r = data([2, 5, 5, 6]);
  expectSame('grads', [tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter], () =>
    tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'), t(r))))([t(x), t(w)]));
});

// ---------------------------------------------------------------------------------------------
// Matrix multiplication

test('BatchMatMul with every transpose combination, batched and broadcast', { skip }, () => {
  const a = data([3, 20, 30]);
  const b = data([3, 30, 40]);
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
    const aa = ta ? { values: tf.transpose(t(a), [0, 2, 1]).dataSync() as Float32Array, shape: [3, 30, 20] } : a;
    const bb = tb ? { values: tf.transpose(t(b), [0, 2, 1]).dataSync() as Float32Array, shape: [3, 40, 30] } : b;
    expectSame(`matmul ${ta} ${tb}`, tf.BatchMatMul, () => tf.matMul(t(aa), t(bb), ta, tb));
  }
  const m = data([64, 50]);
  const n = data([50, 10]);
  expectSame('2-D', tf.BatchMatMul, () => tf.matMul(t(m), t(n)));
  const one = data([1, 30, 40]);
  expectSame('broadcast batch', tf.BatchMatMul, () => tf.matMul(t(a), t(one)));
});

test('_FusedMatMul with bias and relu (tfjs-layers Dense)', { skip }, () => {
  const a = data([64, 50]);
  const b = data([50, 10]);
  const bias = data([10]);
  expectSame('fused matmul', tf._FusedMatMul, () => tf.fused.matMul({ a: t(a) as tf.Tensor2D, b: t(b) as tf.Tensor2D, bias: t(bias), activation: 'relu' }));
  expectSame('fused matmul transposeB', tf._FusedMatMul, () =>
    tf.fused.matMul({ a: t(a) as tf.Tensor2D, b: tf.transpose(t(b)) as tf.Tensor2D, transposeB: true, bias: t(bias) }));
});

// ---------------------------------------------------------------------------------------------
// Batch norm, pooling

test('FusedBatchNorm with and without scale/offset', { skip }, () => {
  const x = data([4, 8, 8, 12]);
  const mean = data([12]);
  const variance = data([12], 0.2, 2);
  const offset = data([12]);
  const scale = data([12]);
  expectSame('full', tf.FusedBatchNorm, () => tf.batchNorm(t(x), t(mean), t(variance), t(offset), t(scale), 1e-5));
  expectSame('no scale/offset', tf.FusedBatchNorm, () => tf.batchNorm(t(x), t(mean), t(variance), undefined, undefined, 1e-3));
});

const poolCases: Array<{ k: number; s: number; pad: 'same' | 'valid'; size: number }> = [
  { k: 2, s: 2, pad: 'valid', size: 8 }, { k: 3, s: 2, pad: 'same', size: 8 }, { k: 3, s: 2, pad: 'same', size: 9 },
  { k: 3, s: 1, pad: 'same', size: 8 }, { k: 3, s: 2, pad: 'valid', size: 9 },
];

for (const c of poolCases) {
  const label = `${c.k}x${c.k}/${c.s} ${c.pad} on ${c.size}x${c.size}`;
  const x = data([2, c.size, c.size, 5]);
  const out = tf.tidy(() => { tf.setBackend('cpu'); return tf.maxPool(t(x) as tf.Tensor4D, c.k, c.s, c.pad).shape; });
  const r = data(out);
  test(`MaxPool and MaxPoolGrad ${label}`, { skip }, () => {
    expectSame(label, tf.MaxPool, () => tf.maxPool(t(x) as tf.Tensor4D, c.k, c.s, c.pad));
    expectSame(label, tf.MaxPoolGrad, () => tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, c.k, c.s, c.pad), t(r))))(t(x)));
  });
  // Average pooling is native when tfjs pads symmetrically (always for 'valid' and odd windows).
  const totalPad = Math.max((Math.ceil(c.size / c.s) - 1) * c.s + c.k - c.size, 0);
  const symmetric = c.pad === 'valid' || totalPad % 2 === 0;
  test(`AvgPool and AvgPoolGrad ${label}`, { skip }, () => {
    const kernels = symmetric ? [tf.AvgPool] : [];
    expectSame(label, kernels, () => tf.avgPool(t(x) as tf.Tensor4D, c.k, c.s, c.pad));
    expectSame(label, symmetric ? [tf.AvgPoolGrad] : [], () =>
      tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.avgPool(a as tf.Tensor4D, c.k, c.s, c.pad), t(r))))(t(x)));
  });
}

// ---------------------------------------------------------------------------------------------
// Concat, slice, split

test('Concat along every axis, float and int32', { skip }, () => {
  const parts = [data([2, 6, 6, 3]), data([2, 6, 6, 5]), data([2, 6, 6, 12])];
  expectSame('channels', tf.Concat, () => tf.concat(parts.map(t), 3));
  const rows = [data([2, 4, 6, 3]), data([2, 2, 6, 3])];
  expectSame('rows', tf.Concat, () => tf.concat(rows.map(t), 1));
  const batch = [data([1, 4, 6, 3]), data([3, 4, 6, 3])];
  expectSame('batch', tf.Concat, () => tf.concat(batch.map(t), 0));
  expectSame('int32', tf.Concat, () => tf.concat(parts.map((p) => tf.cast(tf.mul(t(p), 100), 'int32')), 3));
});

test('Slice and SplitV (strided, as the concat gradient uses them)', { skip }, () => {
  const x = data([2, 6, 6, 20]);
  expectSame('slice channels', tf.Slice, () => tf.slice(t(x), [0, 0, 0, 3], [2, 6, 6, 7]));
  expectSame('slice box', tf.Slice, () => tf.slice(t(x), [1, 2, 1, 0], [1, 3, 4, 20]));
  expectSame('split int32', [tf.SplitV], () => tf.split(tf.cast(tf.mul(t(x), 100), 'int32'), [15, 5], 3));
  expectSame('split batch (zero-copy views)', [], () => tf.split(t(x), [1, 1], 0));
  expectSame('split channels', [tf.SplitV], () => tf.split(t(x), [3, 5, 12], 3));
  const a = data([2, 6, 6, 4]);
  const b = data([2, 6, 6, 9]);
  expectSame('concat gradient', [tf.SplitV], () =>
    tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.square(tf.concat([p, q], 3))))([t(a), t(b)]));
});

// ---------------------------------------------------------------------------------------------
// Elementwise ops and reductions

test('binary ops, same shape and broadcast over channels', { skip }, () => {
  const x = data([4, 8, 8, 12]);
  const y = data([4, 8, 8, 12]);
  const c = data([12], 0.5, 2);
  const ops: Array<[string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor]> = [
    [tf.Add, tf.add], [tf.Sub, tf.sub], [tf.Multiply, tf.mul], [tf.RealDiv, tf.div],
    [tf.SquaredDifference, tf.squaredDifference], [tf.Maximum, tf.maximum], [tf.Minimum, tf.minimum],
  ];
  for (const [name, op] of ops) {
    expectSame(`${name} same shape`, name, () => op(t(x), name === tf.RealDiv ? tf.add(tf.abs(t(y)), 0.5) : t(y)));
    expectSame(`${name} broadcast`, name, () => op(t(x), t(c)));
    expectSame(`${name} broadcast reversed`, name, () => op(t(c), t(x)));
  }
});

test('float32 tensors cast from bool or int32 (which share the integer array) run natively', { skip }, () => {
  const x = data([4, 8, 8, 12]);
  // A dropout mask, as dense layers build it in training.
  expectSame('div of a cast bool', tf.RealDiv, () => tf.div(tf.cast(tf.greaterEqual(t(x), 0.2), 'float32'), 0.8));
  expectSame('mul by a cast int32', tf.Multiply, () => tf.mul(t(x), tf.reshape(tf.cast(tf.range(0, 4 * 8 * 8 * 12, 1, 'int32'), 'float32'), x.shape)));
});

test('unary ops', { skip }, () => {
  const x = data([4, 8, 8, 12], -8, 8);
  expectSame('relu', tf.Relu, () => tf.relu(t(x)));
  expectSame('relu6', tf.Relu6, () => tf.relu6(t(x)));
  expectSame('step', tf.Step, () => tf.step(t(x), 0.25));
  expectSame('sigmoid', tf.Sigmoid, () => tf.sigmoid(t(x)));
  expectSame('neg', tf.Neg, () => tf.neg(t(x)));
  expectSame('square', tf.Square, () => tf.square(t(x)));
});

test('Tile and PadV2', { skip }, () => {
  const x = data([4, 1, 8, 12]);
  expectSame('tile', tf.Tile, () => tf.tile(t(x), [2, 8, 1, 3]));
  const y = data([2, 9, 9, 16]);
  expectSame('pad', tf.PadV2, () => tf.pad(t(y), [[0, 0], [1, 2], [3, 0], [0, 1]], 0.5));
});

test('Sum and Mean over any axes', { skip }, () => {
  const x = data([4, 8, 8, 12]);
  for (const [axis, keepDims] of [[[0, 1, 2], false], [[0, 1, 2], true], [3, false], [[1, 2], true], [undefined, false]] as const) {
    expectSame(`sum ${axis}`, tf.Sum, () => tf.sum(t(x), axis as number[] | undefined, keepDims));
    expectSame(`mean ${axis}`, tf.Mean, () => tf.mean(t(x), axis as number[] | undefined, keepDims));
  }
});

test('small and non-float inputs take the cpu kernels and still agree', { skip }, () => {
  const a = data([3, 4]);
  expectSame('small add', [], () => tf.add(t(a), t(a)));
  expectSame('int32 add', [], () => tf.add(tf.tensor([1, 2, 3], [3], 'int32'), tf.tensor([4, 5, 6], [3], 'int32')));
  expectSame('int32 sum', [], () => tf.sum(tf.range(0, 5000, 1, 'int32')));
});

// ---------------------------------------------------------------------------------------------
// The training core's fused BN-ReLU kernels (src/core/fused-kernels.ts) and one-pass moments,
// against the composite tfjs ops and autodiff on cpu

test('fused moments, BN-ReLU and BN-ReLU backward equal tfjs ops and autodiff on cpu', { skip }, () => {
  const x = data([4, 8, 8, 20], -2, 3);
  const gamma = data([20], 0.5, 1.5);
  const beta = data([20], -0.5, 0.5);
  const dr = data([4, 8, 8, 20]);
  const eps = 1e-5;
  const onCpu = () => tf.getBackend() === 'cpu';
  const stats = (h: tf.Tensor) => {
    const { mean, variance } = tf.moments(h, [0, 1, 2]);
    return { mean: mean as tf.Tensor1D, invStd: tf.rsqrt(tf.add(variance, eps)) as tf.Tensor1D };
  };
  const scaleShift = (g: tf.Tensor, b: tf.Tensor, mean: tf.Tensor, invStd: tf.Tensor) => {
    const scale = tf.mul(g, invStd);
    return { scale, shift: tf.sub(b, tf.mul(mean, scale)) };
  };
  const forward = (h: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const { mean, invStd } = stats(h);
    const { scale, shift } = scaleShift(g, b, mean, invStd);
    return tf.relu(tf.add(tf.mul(h, scale), shift));
  };
  expectSame('moments', BATCH_MOMENTS, () => {
    if (onCpu()) return Object.values(tf.moments(t(x), [0, 1, 2]));
    return tf.engine().runKernel(BATCH_MOMENTS, { x: t(x) }) as tf.Tensor[];
  });
  expectSame('bnRelu', BN_RELU, () => {
    if (onCpu()) return forward(t(x), t(gamma), t(beta));
    const { mean, invStd } = stats(t(x));
    return tf.engine().runKernel(BN_RELU, { x: t(x), ...scaleShift(t(gamma), t(beta), mean, invStd) }) as tf.Tensor;
  });
  expectSame('bnReluBackward', BN_RELU_GRAD, () => {
    if (onCpu()) return tf.grads((h: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(forward(h, g, b), t(dr))))([t(x), t(gamma), t(beta)]);
    const { mean, invStd } = stats(t(x));
    return tf.engine().runKernel(BN_RELU_GRAD, { x: t(x), dr: t(dr), gamma: t(gamma), beta: t(beta), mean, invStd }) as tf.Tensor[];
  });
});

test('the addon itself refuses a dx split that crosses a piece or leaves channels out', { skip }, () => {
  const addon = require(ADDON_PATH) as { bnReluGrad(...args: unknown[]): void };
  const rows = 6;
  const f = (n: number) => new Float32Array(n);
  const call = (splits: number[], pooled: [number, number] = [0, 0]) => addon.bnReluGrad([f(rows * 4), f(rows * 4)], [4, 4], f(rows * 8), f(8), f(8), f(8), f(8),
    splits, splits.map((w) => f(rows * w)), splits.map(() => null), f(8), f(8), ...pooled);
  call([4, 2, 2]);
  assert.throws(() => call([2, 4, 2]), /split widths: each split must be positive and lie within one piece/);
  assert.throws(() => call([4, 3]), /split widths: expected widths adding up to 8/);
  assert.throws(() => call([4, 0, 4]), /expected positive widths/);
  // The pooled gradient's geometry: even height and width whose product divides the rows.
  assert.throws(() => call([8], [3, 2]), /\(pooled height\): expected 0, or even height and width that divide the rows/);
  assert.throws(() => call([8], [4, 2]), /\(pooled height\): expected 0, or even height and width that divide the rows/);
});

// ---------------------------------------------------------------------------------------------
// Recycled output buffers

test('output buffers of disposed tensors are reused, never those read out or still viewed', { skip }, () => {
  tf.setBackend(TORCH_CPU);
  const x = tf.tensor(data([8, 16, 16, 32]).values, [8, 16, 16, 32]);
  const y = tf.tensor(data([8, 16, 16, 32]).values, [8, 16, 16, 32]);
  const before = torchCpuInfo().pool!;
  // Read out, then disposed: the array handed out must keep its values.
  const sum = tf.add(x, y);
  const read = sum.dataSync();
  const kept = Float32Array.from(read);
  sum.dispose();
  // A zero-copy view (contiguous slice) outlives the tensor it views.
  const product = tf.mul(x, y);
  const view = tf.slice(product, [0], [4]);
  const viewKept = Float32Array.from(tf.mul(x, y).dataSync().subarray(0, 4 * 16 * 16 * 32));
  product.dispose();
  for (let i = 0; i < 5; i++) tf.tidy(() => tf.sub(tf.mul(tf.add(x, 1), tf.sub(y, 2)), x));
  const after = torchCpuInfo().pool!;
  assert.ok(after.recycled > before.recycled, `no buffer was recycled (${JSON.stringify(after)})`);
  assert.deepEqual(read, kept, 'an array returned by dataSync was overwritten');
  assert.deepEqual(view.dataSync(), viewKept, 'a slice view was overwritten after its source was disposed');
  tf.dispose([x, y, view]);
});

// ---------------------------------------------------------------------------------------------
// A small DenseNet-style training step: every gradient agrees with the cpu backend.

test('gradients of a small BN-ReLU-Conv/concat/pool/dense network agree with cpu', { skip }, () => {
  const x = data([4, 16, 16, 3]);
  const w0 = data([3, 3, 3, 8], -0.5, 0.5);
  const w1 = data([1, 1, 8, 16], -0.5, 0.5);
  const w2 = data([3, 3, 16, 4], -0.5, 0.5);
  const wd = data([12, 10], -0.5, 0.5);
  const labels = tf.tidy(() => { tf.setBackend('cpu'); return tf.oneHot(tf.tensor1d([1, 3, 5, 7], 'int32'), 10).dataSync(); });
  // tfjs's batchNorm gradient needs scale and offset tensors.
  const bnRelu = (h: tf.Tensor4D) => {
    const { mean, variance } = tf.moments(h, [0, 1, 2]);
    const c = h.shape[3];
    return tf.relu(tf.batchNorm(h, mean, variance, tf.fill([c], 0.1), tf.fill([c], 1.5), 1e-5)) as tf.Tensor4D;
  };
  expectSame('network', [tf.Conv2D, tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter, tf.Concat, tf.MaxPoolGrad, tf.FusedBatchNorm, tf.Mean], () =>
    tf.grads((...ws: tf.Tensor[]) => {
      const stem = tf.conv2d(t(x) as tf.Tensor4D, ws[0] as tf.Tensor4D, 1, 'same');
      const bottleneck = tf.conv2d(bnRelu(stem), ws[1] as tf.Tensor4D, 1, 'same');
      const fresh = tf.conv2d(bnRelu(bottleneck), ws[2] as tf.Tensor4D, 1, 'same');
      const block = tf.concat([stem, fresh], 3) as tf.Tensor4D;
      const pooled = tf.maxPool(tf.avgPool(bnRelu(block), 2, 2, 'valid'), 3, 2, 'same');
      const features = tf.mean(pooled, [1, 2]) as tf.Tensor2D;
      const logits = tf.matMul(features, ws[3] as tf.Tensor2D);
      return tf.losses.softmaxCrossEntropy(tf.tensor2d(labels as Float32Array, [4, 10]), logits);
    })([t(w0), t(w1), t(w2), t(wd)]));
});

test('a memory-efficient DenseNet-BC training step (fused moments, BN-ReLU, customGrad backward) changes every weight as on cpu', { skip }, async () => {
  const deltas = async (backend: string, calls?: Record<string, number>) => {
    assert.ok(tf.setBackend(backend));
    const before = nativeCallCounts();
    const model = zoo.create('densenet-bc-100-k12', { inputShape: [8, 8, 3], memoryEfficient: true });
    const start = initial.map((w) => tf.tensor(w.values, w.shape));
    model.setWeights(start);
    tf.dispose(start);
    const harness = trainingHarness(model, 4);
    await harness.step();
    const after = model.getWeights().map((w) => Float32Array.from(w.dataSync() as Float32Array));
    harness.dispose();
    model.dispose();
    if (calls) Object.assign(calls, Object.fromEntries(Object.entries(nativeCallCounts()).map(([k, v]) => [k, v - (before[k] ?? 0)])));
    return after.map((a, i) => a.map((v, j) => v - initial[i].values[j]));
  };
  assert.ok(tf.setBackend('cpu'));
  const initial = tf.tidy(() => {
    const model = zoo.create('densenet-bc-100-k12', { inputShape: [8, 8, 3], seed: 1 });
    const ws = model.getWeights().map((w) => ({ values: Float32Array.from(w.dataSync() as Float32Array), shape: w.shape }));
    model.dispose();
    return ws;
  });
  const want = await deltas('cpu');
  const calls: Record<string, number> = {};
  const got = await deltas(TORCH_CPU, calls);
  for (const k of [BATCH_MOMENTS, BN_RELU, BN_RELU_GRAD]) assert.ok((calls[k] ?? 0) > 0, `${k} did not run in libtorch`);
  // Float32 sums in another order, through 100 layers whose last BatchNorms see 16 values: the worst
  // weight differs by 5.6e-4 to 9.6e-4 over seeds 1-6 (an unseeded run once reached 6.5e-3, hence the
  // fixed seed); a wrong kernel by O(1).
  got.forEach((g, i) => {
    const err = maxRelativeErrorOf(g, want[i]);
    assert.ok(err < 5e-3, `weight ${i} [${initial[i].shape}]: update differs from cpu's, relative error ${err.toExponential(2)}`);
  });
});
