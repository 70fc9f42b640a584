// The wasm training kernels (src/backend/wasm-kernels.ts) against the plain JS cpu
// backend: every kernel and every gradient the zoo's models need, on random data,
// several shapes (odd sizes, batch 1), relative error under 1e-4; no leaks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import { registerWasmGradientKernels, unregisterWasmGradientKernels } from '../src/backend/wasm-kernels';
import { maxRelativeErrorOf } from './helpers';

const TOLERANCE = 1e-4;

/** Deterministic uniform values in [lo, hi) (mulberry32), the same on every backend. */
function rand(shape: number[], seed: number, lo = -1, hi = 1): tf.Tensor {
  let s = seed >>> 0;
  const values = new Float32Array(shape.reduce((p, d) => p * d, 1));
  for (let i = 0; i < values.length; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    values[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return tf.tensor(values, shape);
}

interface Result {
  shapes: number[][];
  values: Float32Array[];
}

async function runOn(backend: 'cpu' | 'wasm', f: () => tf.Tensor | tf.Tensor[]): Promise<Result> {
  await init(backend, { log: null });
  const out = tf.tidy(f);
  const list = Array.isArray(out) ? out : [out];
  const result = { shapes: list.map((t) => t.shape), values: list.map((t) => Float32Array.from(t.dataSync())) };
  tf.dispose(list);
  return result;
}


/** Computes `f` on cpu and on wasm and asserts the outputs agree. */
async function assertWasmMatchesCpu(label: string, f: () => tf.Tensor | tf.Tensor[]): Promise<void> {
  const cpu = await runOn('cpu', f);
  const wasm = await runOn('wasm', f);
  assert.deepEqual(wasm.shapes, cpu.shapes, `${label}: output shapes`);
  cpu.values.forEach((ref, i) => {
    assert.ok(!ref.some(Number.isNaN), `${label}: cpu output ${i} has NaN`);
    const err = maxRelativeErrorOf(wasm.values[i], ref, 1e-6);
    assert.ok(err < TOLERANCE, `${label}: output ${i} [${cpu.shapes[i]}] differs from cpu, relative error ${err.toExponential(2)}`);
  });
}

/** Gradients of sum(op(inputs) * r) for a fixed random r, so every output element matters. */
function weightedGrads(op: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], seed = 99): tf.Tensor[] {
  const loss = (...xs: tf.Tensor[]): tf.Tensor => {
    const y = op(...xs);
    return tf.sum(tf.mul(y, rand(y.shape, seed)));
  };
  return tf.grads(loss)(inputs);
}

type Shape4 = [number, number, number, number];
interface ConvCase {
  x: Shape4;
  k: number;
  cout: number;
  stride: number;
  pad: 'same' | 'valid';
}

// The zoo's convolutions (1x1, 3x3, 7x7/2 stem, 3x3/2) plus odd sizes, batch 1, odd channels.
const CONV_CASES: ConvCase[] = [
  { x: [2, 8, 8, 6], k: 1, cout: 4, stride: 1, pad: 'same' },
  { x: [3, 5, 7, 9], k: 1, cout: 5, stride: 1, pad: 'valid' },
  { x: [1, 6, 6, 5], k: 1, cout: 11, stride: 1, pad: 'same' },
  { x: [2, 7, 7, 5], k: 1, cout: 3, stride: 2, pad: 'valid' },
  { x: [2, 8, 8, 4], k: 1, cout: 3, stride: 2, pad: 'same' },
  { x: [2, 8, 8, 5], k: 3, cout: 7, stride: 1, pad: 'same' },
  { x: [3, 7, 9, 5], k: 3, cout: 6, stride: 1, pad: 'same' },
  { x: [1, 9, 7, 3], k: 3, cout: 4, stride: 1, pad: 'valid' },
  { x: [2, 8, 8, 5], k: 3, cout: 7, stride: 2, pad: 'same' },
  { x: [2, 9, 9, 5], k: 3, cout: 6, stride: 2, pad: 'same' },
  { x: [3, 9, 8, 4], k: 3, cout: 5, stride: 2, pad: 'valid' },
  { x: [2, 10, 10, 3], k: 3, cout: 4, stride: 2, pad: 'valid' },
  { x: [2, 16, 16, 3], k: 7, cout: 8, stride: 2, pad: 'same' },
  { x: [1, 15, 13, 3], k: 7, cout: 4, stride: 2, pad: 'same' },
  { x: [2, 15, 13, 2], k: 7, cout: 3, stride: 2, pad: 'valid' },
  { x: [2, 9, 9, 3], k: 7, cout: 3, stride: 1, pad: 'same' },
];

function describe(c: ConvCase): string {
  return `x [${c.x}] ${c.k}x${c.k}/${c.stride} ${c.pad} -> ${c.cout}`;
}

function convOutShape(c: ConvCase): Shape4 {
  const [n, h, w] = c.x;
  const size = (d: number): number => (c.pad === 'same' ? Math.ceil(d / c.stride) : Math.ceil((d - c.k + 1) / c.stride));
  return [n, size(h), size(w), c.cout];
}

test('Conv2DBackpropInput (tf.conv2dTranspose) matches cpu for strides 1 and 2, same and valid, kernels 1, 3, 7', async () => {
  for (const [i, c] of CONV_CASES.entries()) {
    await assertWasmMatchesCpu(`Conv2DBackpropInput ${describe(c)}`, () =>
      tf.conv2dTranspose(
        rand(convOutShape(c), 10 + i) as tf.Tensor4D, rand([c.k, c.k, c.x[3], c.cout], 20 + i) as tf.Tensor4D,
        c.x, c.stride, c.pad,
      ));
  }
});

test('Conv2DBackpropFilter matches cpu for strides 1 and 2, same and valid, kernels 1, 3, 7', async () => {
  for (const [i, c] of CONV_CASES.entries()) {
    await assertWasmMatchesCpu(`Conv2DBackpropFilter ${describe(c)}`, () =>
      tf.engine().runKernel('Conv2DBackpropFilter', { x: rand(c.x, 30 + i), dy: rand(convOutShape(c), 40 + i) }, {
        strides: [c.stride, c.stride], pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined,
        filterShape: [c.k, c.k, c.x[3], c.cout],
      } as unknown as tf.NamedAttrMap) as tf.Tensor);
  }
});

test('Conv2DBackpropFilter 1x1 over many pixels matches cpu', async () => {
  // The last two split the reduction over pixels into blocks (see matmulTNChunked).
  for (const [x, cout] of [[[3, 90, 70, 5], 3], [[2, 24, 24, 256], 8], [[2, 25, 23, 6], 300]] as Array<[Shape4, number]>) {
    await assertWasmMatchesCpu(`Conv2DBackpropFilter 1x1 x [${x}] -> ${cout}`, () =>
      tf.engine().runKernel('Conv2DBackpropFilter', { x: rand(x, 1), dy: rand([x[0], x[1], x[2], cout], 2) }, {
        strides: [1, 1], pad: 'same', dataFormat: 'NHWC', filterShape: [1, 1, x[3], cout],
      } as unknown as tf.NamedAttrMap) as tf.Tensor);
  }
});

test('BatchMatMul with transposeA/transposeB, batched and broadcast, matches cpu', async () => {
  const cases: Array<[number[], number[], boolean, boolean]> = [
    [[5, 7], [7, 3], false, false],
    [[7, 5], [7, 3], true, false],
    [[5, 7], [3, 7], false, true],
    [[7, 5], [3, 7], true, true],
    [[1, 9], [9, 1], false, false],
    [[300, 17], [300, 10], true, false],
    [[6000, 70], [6000, 40], true, false],
    [[2, 50], [300, 50], false, true],
    [[50, 2], [300, 50], true, true],
    [[3, 4, 6], [3, 6, 5], false, false],
    [[3, 6, 4], [3, 5, 6], true, true],
    [[2, 64, 70], [2, 70, 65], false, false],
    [[2, 3, 40, 64], [64, 70], false, false],
    [[1, 64, 40], [3, 64, 70], true, false],
    [[3, 40, 64], [1, 70, 64], false, true],
  ];
  for (const [i, [a, b, ta, tb]] of cases.entries()) {
    await assertWasmMatchesCpu(`matMul [${a}]${ta ? 'T' : ''} x [${b}]${tb ? 'T' : ''}`, () =>
      tf.matMul(rand(a, 50 + i), rand(b, 60 + i), ta, tb));
  }
});

test('Tile, and Sum/Mean over leading or middle axes, match cpu', async () => {
  const tiles: Array<[number[], number[]]> = [
    [[1, 1, 1, 7], [3, 5, 4, 1]], [[2, 3], [3, 2]], [[3, 1, 2], [1, 4, 1]], [[4, 5, 1], [1, 1, 6]], [[5], [3]], [[2, 3, 4], [1, 1, 1]],
  ];
  for (const [i, [shape, reps]] of tiles.entries()) {
    await assertWasmMatchesCpu(`tile [${shape}] by [${reps}]`, () => tf.tile(rand(shape, 70 + i), reps));
  }
  await assertWasmMatchesCpu('tile int32', () => tf.cast(tf.tile(tf.tensor2d([[1, 2], [3, 4]], [2, 2], 'int32'), [2, 3]), 'float32'));
  const reductions: Array<[number[], number | number[], boolean]> = [
    [[3, 9, 7, 5], [0, 1, 2], false], [[3, 9, 7, 5], [1, 2], true], [[3, 9, 7, 5], [0], false], [[3, 9, 7, 5], 2, true],
    [[3, 9, 7, 5], [0, 2], false], [[3, 9, 7, 5], [3], false], [[3, 9, 7, 5], [2, 3], false], [[40, 3], 0, false],
  ];
  for (const [i, [shape, axis, keepDims]] of reductions.entries()) {
    await assertWasmMatchesCpu(`sum and mean of [${shape}] over ${JSON.stringify(axis)}${keepDims ? ' (keepDims)' : ''}`, () =>
      [tf.sum(rand(shape, 80 + i), axis, keepDims), tf.mean(rand(shape, 90 + i), axis, keepDims)]);
  }
});

test('Slice, split and concat match cpu', async () => {
  const x = (): tf.Tensor => rand([3, 9, 7, 5], 23);
  await assertWasmMatchesCpu('slices', () => [
    tf.slice(x(), [1, 2, 1, 1], [2, 5, 4, 3]), tf.slice(x(), [0, 3, 0, 0], [3, 4, 7, 5]), tf.slice(x(), [2, 0, 0, 0], [1, -1, -1, -1]),
    tf.slice(x(), [0, 0, 6, 4], [3, 9, 1, 1]), tf.slice(rand([10], 24), 3, 4), tf.slice(rand([6, 8], 25), [1, 2], [4, 6]),
  ]);
  await assertWasmMatchesCpu('splits', () => [
    ...tf.split(x(), [3, 2], 3), ...tf.split(x(), 3, 0), ...tf.split(x(), [2, 4, 1], 2), ...tf.split(rand([12], 26), 4),
  ]);
  await assertWasmMatchesCpu('concats', () => [
    tf.concat([x(), rand([3, 9, 7, 12], 27)], 3), tf.concat([x(), rand([3, 2, 7, 5], 28), x()], 1), tf.concat([x(), x()], 0),
    tf.concat([rand([4, 1], 29), rand([4, 0], 30), rand([4, 70], 31)], 1), tf.concat([rand([5], 32), rand([3], 33)]),
  ]);
  await assertWasmMatchesCpu('int32 slice', () => tf.cast(tf.slice(tf.reshape(tf.range(0, 60, 1, 'int32'), [5, 12]), [1, 3], [3, 5]), 'float32'));
});

test('gradients of conv2d (1x1, 3x3, 7x7/2) and conv2dTranspose 3x3/2 match cpu', async () => {
  const cases: Array<[string, Shape4, Shape4, number]> = [
    ['conv2d 1x1', [2, 6, 6, 7], [1, 1, 7, 5], 1],
    ['conv2d 3x3', [3, 7, 5, 4], [3, 3, 4, 6], 1],
    ['conv2d 7x7/2', [2, 17, 15, 3], [7, 7, 3, 8], 2],
  ];
  for (const [label, xs, ws, stride] of cases) {
    await assertWasmMatchesCpu(`grad ${label}`, () =>
      weightedGrads((x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, 'same'), [rand(xs, 1), rand(ws, 2)]));
  }
  await assertWasmMatchesCpu('grad fused conv2d + bias + relu', () =>
    weightedGrads((x, w, b) => tf.fused.conv2d({
      x: x as tf.Tensor4D, filter: w as tf.Tensor4D, bias: b, strides: 1, pad: 'same', activation: 'relu',
    }), [rand([2, 6, 6, 5], 3), rand([3, 3, 5, 4], 4), rand([4], 5)]));
  await assertWasmMatchesCpu('grad conv2dTranspose 3x3/2', () =>
    weightedGrads((x, w) => tf.conv2dTranspose(x as tf.Tensor4D, w as tf.Tensor4D, [2, 10, 10, 4], 2, 'same'),
      [rand([2, 5, 5, 6], 6), rand([3, 3, 4, 6], 7)]));
});

test('gradients of batchNorm, relu, concat, pooling, mean, matMul, add/mul, dropout mask, slice match cpu', async () => {
  const x = (): tf.Tensor => rand([3, 9, 7, 5], 11);
  const chan = (seed: number, lo = -1, hi = 1): tf.Tensor => rand([5], seed, lo, hi);
  const cases: Array<[string, () => tf.Tensor[]]> = [
    ['batchNorm', () => weightedGrads(
      (a, m, v, o, s) => tf.batchNorm(a, m, v, o, s, 1e-5), [x(), chan(1), chan(2, 0.5, 1.5), chan(3), chan(4)])],
    ['batchNorm with batch moments', () => weightedGrads((a, g, b) => {
      const { mean, variance } = tf.moments(a, [0, 1, 2]);
      return tf.batchNorm(a, mean, variance, b, g, 1e-5);
    }, [x(), chan(5), chan(6)])],
    ['relu', () => weightedGrads((a) => tf.relu(a), [x()])],
    ['concat', () => weightedGrads((a, b) => tf.concat([a, b], 3), [x(), rand([3, 9, 7, 2], 12)])],
    ['concat of many narrow parts (a dense block)', () => weightedGrads(
      (...parts) => tf.concat(parts, 3), [rand([2, 5, 6, 24], 40), ...[41, 42, 43, 44, 45].map((seed) => rand([2, 5, 6, 12], seed))])],
    ['maxPool 3x3/2 same', () => weightedGrads((a) => tf.maxPool(a as tf.Tensor4D, 3, 2, 'same'), [x()])],
    ['maxPool 2x2/2', () => weightedGrads((a) => tf.maxPool(a as tf.Tensor4D, 2, 2, 'valid'), [x()])],
    ['avgPool 2x2/2', () => weightedGrads((a) => tf.avgPool(a as tf.Tensor4D, 2, 2, 'valid'), [x()])],
    ['mean (global average pool)', () => weightedGrads((a) => tf.mean(a, [1, 2]), [x()])],
    ['sum over batch and space', () => weightedGrads((a) => tf.sum(a, [0, 1, 2], true), [x()])],
    ['matMul', () => weightedGrads((a, b) => tf.matMul(a, b), [rand([6, 13], 13), rand([13, 4], 14)])],
    ['fused matMul + bias + relu', () => weightedGrads(
      (a, b, c) => tf.fused.matMul({ a, b, bias: c, activation: 'relu' }), [rand([6, 13], 15), rand([13, 4], 16), rand([4], 17)])],
    ['add/mul with broadcast', () => weightedGrads((a, b) => tf.mul(tf.add(a, b), b), [x(), chan(7)])],
    ['dropout mask', () => {
      const mask = tf.cast(tf.greater(rand([3, 9, 7, 5], 18, 0, 1), 0.3), 'float32');
      return weightedGrads((a) => tf.div(tf.mul(a, mask), 0.7), [x()]);
    }],
    ['softmax cross entropy', () => {
      const labels = tf.oneHot(tf.tensor1d([1, 0, 3, 2, 3, 1], 'int32'), 4);
      return tf.grads((l: tf.Tensor) => tf.losses.softmaxCrossEntropy(labels, l))([rand([6, 4], 19, -3, 3)]);
    }],
    ['slice', () => weightedGrads((a) => tf.slice(a, [1, 2, 1, 1], [2, 5, 4, 3]), [x()])],
    ['categorical cross entropy on clipped softmax', () => {
      const labels = tf.oneHot(tf.tensor1d([2, 0, 1], 'int32'), 3);
      const loss = (l: tf.Tensor): tf.Tensor =>
        tf.neg(tf.mean(tf.sum(tf.mul(labels, tf.log(tf.clipByValue(tf.softmax(l), 1e-7, 1 - 1e-7))), -1)));
      return tf.grads(loss)([rand([3, 3], 20, -4, 4)]);
    }],
  ];
  for (const [label, f] of cases) await assertWasmMatchesCpu(`grad ${label}`, f);
});

test('maxPool gradient matches cpu where windows hold only zeros (the output of a ReLU)', async () => {
  // Stock wasm MaxPoolGrad starts its running max at FLT_MIN and sends such windows' gradient to element 0.
  for (const [pool, stride, pad] of [[3, 2, 'same'], [2, 2, 'valid'], [3, 1, 'same']] as Array<[number, number, 'same' | 'valid']>) {
    await assertWasmMatchesCpu(`grad maxPool ${pool}x${pool}/${stride} ${pad} of relu output`, () =>
      weightedGrads((z) => tf.maxPool(z as tf.Tensor4D, pool, stride, pad), [tf.relu(rand([2, 9, 8, 4], 21, -1, 0.3))]));
  }
});

test('Cast matches cpu, including numbers to bool', async () => {
  await assertWasmMatchesCpu('casts', () => {
    const x = tf.tensor1d([0.5, -0.3, 0, 2, -7.9, 1e-30]);
    return [
      tf.cast(tf.cast(x, 'bool'), 'float32'), tf.cast(tf.cast(x, 'int32'), 'float32'),
      tf.cast(tf.cast(tf.tensor1d([0, 3, -1], 'int32'), 'bool'), 'float32'), tf.cast(x, 'float32'),
    ];
  });
});

test('forward pooling and mean match cpu on odd sizes', async () => {
  const x = (): tf.Tensor4D => rand([3, 9, 7, 5], 22) as tf.Tensor4D;
  await assertWasmMatchesCpu('forward pools', () => [
    tf.maxPool(x(), 3, 2, 'same'), tf.maxPool(x(), 2, 2, 'valid'), tf.avgPool(x(), 2, 2, 'valid'), tf.mean(x(), [1, 2]),
  ]);
});

test('gradients of a conv -> batchNorm -> relu -> maxPool -> dense chain match cpu', async () => {
  const inputs = (): tf.Tensor[] => [
    rand([3, 12, 10, 3], 1), rand([3, 3, 3, 6], 2), rand([6], 3), rand([6], 4), rand([1, 1, 6, 5], 5), rand([5, 4], 6),
  ];
  const labels = (): tf.Tensor => tf.oneHot(tf.tensor1d([0, 3, 1], 'int32'), 4);
  await assertWasmMatchesCpu('chain gradients', () => {
    const loss = (x: tf.Tensor, w: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, w2: tf.Tensor, dense: tf.Tensor): tf.Tensor => {
      const y = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same');
      const { mean, variance } = tf.moments(y, [0, 1, 2]);
      const z = tf.relu(tf.batchNorm(y, mean, variance, beta, gamma, 1e-5));
      const p = tf.maxPool(z as tf.Tensor4D, 3, 2, 'same');
      const q = tf.avgPool(tf.conv2d(p, w2 as tf.Tensor4D, 1, 'same'), 2, 2, 'valid');
      const logits = tf.matMul(tf.mean(q, [1, 2]), dense);
      return tf.losses.softmaxCrossEntropy(labels(), logits);
    };
    return tf.grads(loss)(inputs());
  });
});

test('the kernels free every intermediate (numTensors and wasm data ids stay flat)', async () => {
  await init('wasm', { log: null });
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const step = (): void => {
    const grads = tf.tidy(() => [
      ...weightedGrads((x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'), [rand([2, 6, 6, 5], 1), rand([3, 3, 5, 4], 2)]),
      ...weightedGrads((x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same'), [rand([2, 9, 9, 3], 3), rand([7, 7, 3, 4], 4)]),
      ...weightedGrads((x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'), [rand([2, 6, 6, 5], 5), rand([1, 1, 5, 4], 6)]),
      tf.conv2dTranspose(rand([2, 5, 5, 6], 7) as tf.Tensor4D, rand([3, 3, 4, 6], 8) as tf.Tensor4D, [2, 10, 10, 4], 2, 'same'),
      tf.matMul(rand([7, 5], 9), rand([3, 7], 10), true, true),
      tf.matMul(rand([3, 70, 64], 11), rand([3, 64, 70], 12)),
      tf.matMul(rand([2, 40, 64], 13), rand([1, 64, 70], 14)),
      tf.matMul(rand([3000, 70], 15), rand([3000, 40], 16), true, false),
      ...weightedGrads((a, g, b) => {
        const { mean, variance } = tf.moments(a, [0, 1, 2]);
        return tf.maxPool(tf.relu(tf.batchNorm(a, mean, variance, b, g, 1e-5)) as tf.Tensor4D, 3, 2, 'same');
      }, [rand([2, 7, 7, 5], 17), rand([5], 18), rand([5], 19)]),
      ...weightedGrads((...parts) => tf.concat(parts, 3), [rand([2, 4, 4, 6], 20), rand([2, 4, 4, 3], 21), rand([2, 4, 4, 3], 22)]),
      tf.tile(rand([1, 1, 1, 5], 23), [2, 3, 3, 1]), tf.slice(rand([3, 5, 5, 4], 24), [1, 1, 1, 1], [2, 3, 3, 2]),
      tf.clone(rand([4, 4], 25)), tf.cast(rand([4, 4], 26), 'float32'), tf.mean(rand([3, 5, 5, 4], 27), [1, 2]),
    ]);
    for (const g of grads) g.dataSync();
    tf.dispose(grads);
  };
  step();
  const before = { tensors: tf.memory().numTensors, dataIds: backend.numDataIds() };
  for (let i = 0; i < 3; i++) step();
  assert.deepEqual({ tensors: tf.memory().numTensors, dataIds: backend.numDataIds() }, before);
});

test('a kernel that fails frees its intermediates and says what was wrong', async () => {
  await init('wasm', { log: null });
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const x = rand([2, 8, 8, 3], 1);
  const dy = rand([2, 7, 7, 4], 2);
  const before = backend.numDataIds();
  assert.throws(
    () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
      strides: [1, 1], pad: 'same', dataFormat: 'NCHW', filterShape: [3, 3, 8, 4],
    } as unknown as tf.NamedAttrMap),
    /Conv2DBackpropFilter: dy has shape \[2,7,7,4\], expected/,
  );
  assert.equal(backend.numDataIds(), before);
  tf.dispose([x, dy]);
});

test('registration is idempotent, warning-free, and reversible', async () => {
  await init('wasm', { log: null });
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => void warnings.push(args.join(' '));
  try {
    registerWasmGradientKernels();
    registerWasmGradientKernels();
    unregisterWasmGradientKernels();
    assert.equal(tf.getKernel('Conv2DBackpropFilter', 'wasm'), undefined, 'stock wasm has no Conv2DBackpropFilter');
    assert.ok(tf.getKernel('BatchMatMul', 'wasm'), 'stock BatchMatMul restored');
    registerWasmGradientKernels();
  } finally {
    console.warn = warn;
  }
  assert.deepEqual(warnings, []);
  assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm'));
  await assertWasmMatchesCpu('matMul after re-registration', () => tf.matMul(rand([4, 6], 1), rand([5, 6], 2), false, true));
});
