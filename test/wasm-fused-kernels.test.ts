// The wasm backend's fused BatchNorm-ReLU kernels (src/backend/wasm-fused-kernels.ts)
// against the cpu backend's JS reference kernels (src/core/fused-kernels.ts): equal bit
// for bit on random data, odd channel counts, values on the ReLU's edge, x whole or as
// channel pieces, dx split and added to accumulators; bad input refused; no leaks; the
// embedded module matches the committed .wasm and owns no memory of its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import { BN_RELU, BN_RELU_GRAD, hasFusedKernels, pieceInputs } from '../src/core/fused-kernels';
import { registerWasmFusedKernels, wasmFusedKernelsProblem } from '../src/backend/wasm-fused-kernels';
import { WASM_FUSED_KERNELS_BASE64 } from '../src/backend/wasm-fused-kernels-binary';

/** Deterministic values (mulberry32), uniform in [lo, hi). */
function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0;
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    values[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return values;
}

interface Case {
  label: string;
  shape: number[];
  x: Float32Array;
  dr: Float32Array;
  gamma: Float32Array;
  beta: Float32Array;
  mean: Float32Array;
  invStd: Float32Array;
}

/** Random x and dr; gamma of both signs; mean and invStd the batch statistics of x, as in training. */
function randomCase(shape: number[], seed: number): Case {
  const channels = shape[shape.length - 1];
  const size = shape.reduce((a, b) => a * b, 1);
  const x = uniform(size, seed, -1, 2);
  const gamma = uniform(channels, seed + 2, 0.5, 1.5).map((g, c) => (c % 3 === 1 ? -g : g));
  const mean = new Float32Array(channels);
  const invStd = new Float32Array(channels);
  const rows = size / channels;
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    for (let r = 0; r < rows; r++) sum += x[r * channels + c];
    const m = sum / rows;
    let sq = 0;
    for (let r = 0; r < rows; r++) sq += (x[r * channels + c] - m) ** 2;
    mean[c] = m;
    invStd[c] = 1 / Math.sqrt(sq / rows + 1e-5);
  }
  return {
    label: `random [${shape}]`, shape, x, dr: uniform(size, seed + 1), gamma,
    beta: uniform(channels, seed + 3, -0.5, 0.5), mean, invStd,
  };
}

/**
 * x placed on and around each channel's ReLU threshold -shift/scale (the float32 value
 * nearest it and its neighbours a few ulps away), with channels of positive, negative
 * and zero scale: where a mask computed any other way would differ from the reference.
 */
function edgeCase(rowsPerChannel: number): Case {
  const gamma = Float32Array.from([1.3, -0.7, 0, 0, 2.1, -1e-3, 0.9]);
  const beta = Float32Array.from([0.2, -0.4, 0.5, -0.5, 0.1, 0.3, 0]);
  const mean = Float32Array.from([0.1, -0.3, 0.2, 0.2, 7.5, 1e3, 0]);
  const invStd = Float32Array.from([3.7, 0.9, 1.1, 1.1, 12.3, 0.05, 1]);
  const channels = gamma.length;
  const x = new Float32Array(rowsPerChannel * channels);
  const bits = new Int32Array(1);
  const f = new Float32Array(bits.buffer);
  for (let c = 0; c < channels; c++) {
    const scale = gamma[c] * invStd[c];
    const threshold = scale === 0 ? 0.25 : -(beta[c] - mean[c] * scale) / scale;
    f[0] = threshold;
    const base = bits[0];
    for (let r = 0; r < rowsPerChannel; r++) {
      bits[0] = base + (r % 9) - 4; // -4..+4 ulps around the threshold
      x[r * channels + c] = f[0];
    }
  }
  return { label: 'ReLU edge', shape: [rowsPerChannel, channels], x, dr: uniform(x.length, 99), gamma, beta, mean, invStd };
}

function forwardInputs(k: Case): { x: tf.Tensor; scale: tf.Tensor; shift: tf.Tensor } {
  // The scale and shift bnRelu passes: gamma*invStd and beta - mean*scale, in float32.
  const scale = k.gamma.map((g, c) => g * k.invStd[c]);
  const shift = k.beta.map((b, c) => b - k.mean[c] * scale[c]);
  return { x: tf.tensor(k.x, k.shape), scale: tf.tensor1d(scale), shift: tf.tensor1d(shift) };
}

function gradInputs(k: Case): Record<string, tf.Tensor> {
  return {
    x: tf.tensor(k.x, k.shape), dr: tf.tensor(k.dr, k.shape), gamma: tf.tensor1d(k.gamma),
    beta: tf.tensor1d(k.beta), mean: tf.tensor1d(k.mean), invStd: tf.tensor1d(k.invStd),
  };
}

/** Runs the kernel on `backend` and returns its outputs' values. */
async function runKernel(
  backend: 'cpu' | 'wasm', kernel: string, inputs: () => Record<string, tf.Tensor>, attrs: tf.NamedAttrMap = {},
): Promise<Float32Array[]> {
  await init(backend, { log: null });
  if (backend === 'wasm') await registerWasmFusedKernels();
  assert.ok(hasFusedKernels(), `${kernel} is registered for ${backend}`);
  const before = tf.memory().numTensors;
  const outputs = tf.tidy(() => {
    const out = tf.engine().runKernel(kernel, inputs() as unknown as tf.NamedTensorMap, attrs);
    return Array.isArray(out) ? out : [out];
  }) as tf.Tensor[];
  const values = outputs.map((t) => Float32Array.from(t.dataSync()));
  tf.dispose(outputs);
  assert.equal(tf.memory().numTensors, before, `${kernel} on ${backend} leaks tensors`);
  return values;
}

/** Equal bit for bit (NaN equals NaN; +0 equals -0). */
function assertSame(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (a !== e && !(Number.isNaN(a) && Number.isNaN(e))) {
      assert.fail(`${what}: element ${i} is ${a}, the cpu reference gives ${e} (difference ${a - e})`);
    }
  }
}

const CASES: Case[] = [
  randomCase([2, 6, 5, 216], 1), // DenseNet-BC width, C % 4 == 0
  randomCase([3, 4, 5, 13], 2), // C % 4 == 1
  randomCase([2, 3, 3, 6], 3), // C % 4 == 2
  randomCase([1, 7, 3, 7], 4), // C % 4 == 3
  randomCase([2, 5, 5, 3], 5), // C < 4
  randomCase([4, 2, 2, 1], 6), // one channel
  randomCase([1, 1, 1, 8], 7), // one row
  randomCase([9, 20], 8), // rank 2
  edgeCase(90),
];

test('the wasm backend can share its memory with the kernels module', async () => {
  await init('wasm', { log: null });
  assert.equal(wasmFusedKernelsProblem(), null);
  await registerWasmFusedKernels();
  assert.ok(tf.getKernel(BN_RELU, 'wasm') && tf.getKernel(BN_RELU_GRAD, 'wasm'));
});

for (const k of CASES) {
  test(`${BN_RELU}: wasm equals the cpu reference, ${k.label}`, async () => {
    const [expected] = await runKernel('cpu', BN_RELU, () => forwardInputs(k));
    const [actual] = await runKernel('wasm', BN_RELU, () => forwardInputs(k));
    assertSame(actual, expected, `${BN_RELU} ${k.label}`);
    assert.ok(expected.some((v) => v > 0) && expected.some((v) => v === 0), 'the case exercises both sides of the ReLU');
  });

  test(`${BN_RELU_GRAD}: wasm equals the cpu reference, ${k.label}`, async () => {
    const expected = await runKernel('cpu', BN_RELU_GRAD, () => gradInputs(k));
    const actual = await runKernel('wasm', BN_RELU_GRAD, () => gradInputs(k));
    ['dx', 'dGamma', 'dBeta'].forEach((name, i) => assertSame(actual[i], expected[i], `${BN_RELU_GRAD} ${k.label} ${name}`));
  });
}

// ---------------------------------------------------------------------------
// x as channel pieces, dx split and added to accumulators.

interface PieceCase {
  label: string;
  /** The logical (concatenated) x, dr and the per-channel vectors. */
  base: Case;
  /** Channel widths of the pieces x0, x1, ...; null: the single input x. */
  widths: number[] | null;
  /** attrs.splits; undefined: none (one dx of all channels). */
  splits?: number[];
  /** Which dx_j have an accumulator acc_j. */
  accs: boolean[];
}

/** Channels [from, from + width) of row-major [rows, channels] values. */
function channelSlice(values: Float32Array, channels: number, from: number, width: number): Float32Array {
  const rows = channels === 0 ? 0 : values.length / channels;
  const out = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) out.set(values.subarray(r * channels + from, r * channels + from + width), r * width);
  return out;
}

function leadOf(k: Case): number[] {
  return k.shape.slice(0, -1);
}

function channelsOf(k: Case): number {
  return k.shape[k.shape.length - 1];
}

/** The x inputs of a piece case: { x } or { x0, x1, ... }. */
function xInputs(p: PieceCase): Record<string, tf.Tensor> {
  if (p.widths === null) return { x: tf.tensor(p.base.x, p.base.shape) };
  let from = 0;
  return pieceInputs(p.widths.map((w) => {
    const piece = tf.tensor(channelSlice(p.base.x, channelsOf(p.base), from, w), [...leadOf(p.base), w]);
    from += w;
    return piece;
  }));
}

function splitWidths(p: PieceCase): number[] {
  return p.splits ?? [channelsOf(p.base)];
}

/** Accumulator values for dx_j: larger than dx, so adding them rounds. */
function accValues(p: PieceCase, j: number): Float32Array {
  return uniform(tf.util.sizeFromShape(leadOf(p.base)) * splitWidths(p)[j], 1000 + 7 * j, -30, 30);
}

function pieceForwardInputs(p: PieceCase): Record<string, tf.Tensor> {
  const { scale, shift } = forwardInputs(p.base);
  return { ...xInputs(p), scale, shift };
}

function pieceGradInputs(p: PieceCase): Record<string, tf.Tensor> {
  const { x: _whole, ...rest } = gradInputs(p.base);
  _whole.dispose();
  const inputs: Record<string, tf.Tensor> = { ...xInputs(p), ...rest };
  splitWidths(p).forEach((w, j) => {
    if (p.accs[j]) inputs[`acc${j}`] = tf.tensor(accValues(p, j), [...leadOf(p.base), w]);
  });
  return inputs;
}

const PIECE_CASES: PieceCase[] = [
  // A dense layer's input in memory-efficient mode: the block input and the new maps, dx into their running gradients.
  { label: 'pieces [5,3,12], splits = pieces, acc on 0 and 2', base: randomCase([2, 3, 4, 20], 21), widths: [5, 3, 12], splits: [5, 3, 12], accs: [true, false, true] },
  { label: 'pieces [5,3,12], splits = pieces, no acc', base: randomCase([2, 3, 4, 20], 22), widths: [5, 3, 12], splits: [5, 3, 12], accs: [] },
  { label: 'pieces [5,3,12], splits = pieces, all acc', base: randomCase([3, 2, 5, 20], 23), widths: [5, 3, 12], splits: [5, 3, 12], accs: [true, true, true] },
  { label: 'pieces [5,3,12], finer splits', base: randomCase([2, 3, 4, 20], 24), widths: [5, 3, 12], splits: [2, 3, 1, 2, 4, 1, 7], accs: [false, true, true, false, true, false, true] },
  { label: 'one piece x0', base: randomCase([2, 5, 3, 13], 25), widths: [13], splits: [13], accs: [true] },
  { label: 'one piece x0, no splits', base: randomCase([2, 5, 3, 13], 26), widths: [13], accs: [false] },
  { label: 'one piece x0, no splits, acc', base: randomCase([2, 5, 3, 13], 27), widths: [13], accs: [true] },
  // Naive mode: the whole concatenation as x, dx split into the feature maps' gradients.
  { label: 'whole x, splits [6,5,7,1]', base: randomCase([2, 4, 3, 19], 28), widths: null, splits: [6, 5, 7, 1], accs: [true, true, false, true] },
  { label: 'whole x, splits [8,4,4,4,4]', base: randomCase([2, 6, 5, 24], 29), widths: null, splits: [8, 4, 4, 4, 4], accs: [true, true, true, true, false] },
  { label: 'whole x, one split with acc', base: randomCase([1, 7, 3, 7], 30), widths: null, splits: [7], accs: [true] },
  // DenseNet-BC shapes: block input 16, growth rate 12.
  { label: 'pieces [16,12,12,12,12]', base: randomCase([2, 6, 5, 64], 31), widths: [16, 12, 12, 12, 12], splits: [16, 12, 12, 12, 12], accs: [true, true, true, true, false] },
  // Narrow pieces (the scalar paths) and odd widths.
  { label: 'pieces [1,2,3,7,1]', base: randomCase([3, 4, 5, 14], 32), widths: [1, 2, 3, 7, 1], splits: [1, 2, 3, 7, 1], accs: [true, false, true, true, false] },
  { label: 'pieces [1,2,3,7,1], finer splits', base: randomCase([3, 4, 5, 14], 33), widths: [1, 2, 3, 7, 1], splits: [1, 1, 1, 3, 3, 4, 1], accs: [true, true, false, true, false, true, true] },
  { label: 'pieces [4,0,5] (an empty piece)', base: randomCase([2, 3, 3, 9], 34), widths: [4, 0, 5], splits: [4, 5], accs: [false, true] },
  { label: 'pieces [9,3], rank 2', base: randomCase([40, 12], 35), widths: [9, 3], splits: [9, 1, 2], accs: [true, true, false] },
  // On and around each channel's ReLU threshold.
  { label: 'ReLU edge, pieces [3,4]', base: edgeCase(90), widths: [3, 4], splits: [3, 2, 2], accs: [true, false, true] },
  { label: 'ReLU edge, pieces [1,1,5]', base: edgeCase(45), widths: [1, 1, 5], splits: [1, 1, 5], accs: [false, true, false] },
  { label: 'ReLU edge, whole x, splits [5,2]', base: edgeCase(90), widths: null, splits: [5, 2], accs: [true, true] },
];

for (const p of PIECE_CASES) {
  const attrs: tf.NamedAttrMap = p.splits ? { splits: p.splits } : {};

  test(`${BN_RELU}: wasm equals the cpu reference, ${p.label}`, async () => {
    const [expected] = await runKernel('cpu', BN_RELU, () => pieceForwardInputs(p));
    const [actual] = await runKernel('wasm', BN_RELU, () => pieceForwardInputs(p));
    assertSame(actual, expected, `${BN_RELU} ${p.label}`);
    // Pieces are their concatenation: the same values as the whole x.
    const [whole] = await runKernel('wasm', BN_RELU, () => forwardInputs(p.base));
    assertSame(actual, whole, `${BN_RELU} ${p.label} against the whole x`);
    assert.ok(expected.some((v) => v > 0) && expected.some((v) => v === 0), 'the case exercises both sides of the ReLU');
  });

  test(`${BN_RELU_GRAD}: wasm equals the cpu reference, ${p.label}`, async () => {
    const expected = await runKernel('cpu', BN_RELU_GRAD, () => pieceGradInputs(p), attrs);
    const actual = await runKernel('wasm', BN_RELU_GRAD, () => pieceGradInputs(p), attrs);
    const widths = splitWidths(p);
    assert.equal(actual.length, widths.length + 2, 'one dx per split, dGamma, dBeta');
    const names = [...widths.map((_, j) => `dx_${j}`), 'dGamma', 'dBeta'];
    names.forEach((name, i) => assertSame(actual[i], expected[i], `${BN_RELU_GRAD} ${p.label} ${name}`));
    // Against the whole-x kernel: the same dGamma and dBeta, and dx_j = acc_j + its channels of dx in float32.
    const whole = await runKernel('wasm', BN_RELU_GRAD, () => gradInputs(p.base));
    assertSame(actual[widths.length], whole[1], `${p.label} dGamma against the whole x`);
    assertSame(actual[widths.length + 1], whole[2], `${p.label} dBeta against the whole x`);
    let from = 0;
    widths.forEach((w, j) => {
      const piece = channelSlice(whole[0], channelsOf(p.base), from, w);
      if (p.accs[j]) {
        const acc = accValues(p, j);
        for (let i = 0; i < piece.length; i++) piece[i] = Math.fround(acc[i] + piece[i]);
      }
      assertSame(actual[j], piece, `${p.label} dx_${j} against the whole x`);
      from += w;
    });
  });
}

test('the kernels leave no tensors, data ids or scratch behind', async () => {
  await init('wasm', { log: null });
  await registerWasmFusedKernels();
  const backend = tf.backend() as unknown as { numDataIds(): number; wasm: { _malloc(n: number): number; _free(p: number): void } };
  const k = randomCase([2, 4, 4, 24], 11);
  const pieced: PieceCase = { label: 'leak', base: k, widths: [16, 5, 3], splits: [16, 2, 3, 3], accs: [true, false, true, false] };
  const run = (): void => {
    tf.tidy(() => {
      const f = forwardInputs(k);
      tf.engine().runKernel(BN_RELU, f as unknown as tf.NamedTensorMap);
      tf.engine().runKernel(BN_RELU_GRAD, gradInputs(k) as unknown as tf.NamedTensorMap);
      tf.engine().runKernel(BN_RELU, pieceForwardInputs(pieced) as unknown as tf.NamedTensorMap);
      tf.engine().runKernel(BN_RELU_GRAD, pieceGradInputs(pieced) as unknown as tf.NamedTensorMap, { splits: pieced.splits! });
    });
  };
  run();
  const tensors = tf.memory().numTensors;
  const dataIds = backend.numDataIds();
  // The scratch is freed: the allocator hands out the same block before and after many calls.
  const probe = (): number => {
    const p = backend.wasm._malloc(64);
    backend.wasm._free(p);
    return p;
  };
  const before = probe();
  for (let i = 0; i < 20; i++) run();
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(backend.numDataIds(), dataIds);
  assert.equal(probe(), before);
});

test('bad inputs are refused with the name of the tensor', async () => {
  await init('wasm', { log: null });
  await registerWasmFusedKernels();
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const dataIds = backend.numDataIds();
  const k = randomCase([2, 3, 3, 8], 12);
  const refused = (kernel: string, inputs: () => Record<string, tf.Tensor>, message: RegExp, attrs: tf.NamedAttrMap = {}): void => {
    assert.throws(() => tf.tidy(() => {
      tf.engine().runKernel(kernel, inputs() as unknown as tf.NamedTensorMap, attrs);
    }), message);
  };
  refused(BN_RELU_GRAD, () => ({ ...gradInputs(k), gamma: tf.ones([7]) }), /\(wasm\): 'gamma' is float32 \[7\], expected float32 \[8\]/);
  refused(BN_RELU_GRAD, () => ({ ...gradInputs(k), dr: tf.ones([2, 3, 3, 4]) }), /'dr' is float32 \[2,3,3,4\], expected float32 \[2,3,3,8\] \(the shape of x\)/);
  refused(BN_RELU, () => {
    const f = forwardInputs(k);
    return { ...f, x: tf.cast(f.x, 'int32') };
  }, /'x' must be float32, got int32/);
  refused(BN_RELU, () => ({ ...forwardInputs(k), shift: tf.ones([8], 'int32') }), /'shift' is int32 \[8\], expected float32 \[8\]/);

  // The same with pieces: widths [5, 3, 12] of a 20-channel x.
  const p: PieceCase = { label: 'bad', base: randomCase([2, 3, 4, 20], 13), widths: [5, 3, 12], splits: [5, 3, 12], accs: [true, true, false] };
  refused(BN_RELU_GRAD, () => pieceGradInputs(p), /splits \[6,2,12\] must be positive and each lie within one x piece \(piece widths \[5,3,12\]\)/, { splits: [6, 2, 12] });
  refused(BN_RELU_GRAD, () => pieceGradInputs(p), /splits \[20\] must be positive and each lie within one x piece/, {});
  refused(BN_RELU_GRAD, () => pieceGradInputs(p), /splits \[5,3,10\] add up to 18, expected 20 channels/, { splits: [5, 3, 10] });
  refused(BN_RELU_GRAD, () => pieceGradInputs(p), /splits \[5,0,3,12\] must be positive/, { splits: [5, 0, 3, 12] });
  refused(BN_RELU_GRAD, () => ({ ...pieceGradInputs(p), acc1: tf.zeros([2, 3, 4, 4]) }),
    /'acc1' is float32 \[2,3,4,4\], expected float32 \[2,3,4,3\]/, { splits: p.splits! });
  refused(BN_RELU_GRAD, () => ({ ...pieceGradInputs(p), acc0: tf.zeros([2, 3, 4, 5], 'int32') }),
    /'acc0' is int32 \[2,3,4,5\], expected float32 \[2,3,4,5\]/, { splits: p.splits! });
  refused(BN_RELU_GRAD, () => ({ ...pieceGradInputs(p), x1: tf.zeros([2, 3, 5, 3]) }),
    /x piece 1 has shape \[2,3,5,3\], expected \[2,3,4,C\] like piece 0/, { splits: p.splits! });
  refused(BN_RELU_GRAD, () => ({ ...pieceGradInputs(p), dr: tf.zeros([2, 3, 4, 12]) }),
    /'dr' is float32 \[2,3,4,12\], expected float32 \[2,3,4,20\]/, { splits: p.splits! });
  refused(BN_RELU, () => ({ ...pieceForwardInputs(p), x2: tf.zeros([2, 3, 4, 12], 'int32') }), /x piece 2 must be float32, got int32/);
  refused(BN_RELU, () => ({ ...pieceForwardInputs(p), scale: tf.ones([12]) }), /'scale' is float32 \[12\], expected float32 \[20\] \(the channels of x, \[2,3,4,20\]\)/);
  refused(BN_RELU, () => ({ scale: tf.ones([4]), shift: tf.ones([4]) }), /expected an input 'x' or pieces 'x0', 'x1'/);
  // Refused before any output is made: nothing is left on the heap.
  assert.equal(backend.numDataIds(), dataIds);
});

test('the embedded module is the committed .wasm, imports only memory and has no data of its own', async () => {
  const file = path.join(__dirname, '..', '..', 'native', 'wasm-kernels', 'bn_relu.wasm');
  const bytes = fs.readFileSync(file);
  assert.equal(Buffer.from(WASM_FUSED_KERNELS_BASE64, 'base64').equals(bytes), true,
    'src/backend/wasm-fused-kernels-binary.ts is stale: run scripts/build-wasm-kernels.sh');
  const mod = await WebAssembly.compile(bytes);
  assert.deepEqual(WebAssembly.Module.imports(mod), [{ module: 'env', name: 'memory', kind: 'memory' }]);
  // Walk the sections: a data section (id 11) would overwrite the backend's memory on instantiation.
  const ids: number[] = [];
  let at = 8;
  while (at < bytes.length) {
    ids.push(bytes[at++]);
    let size = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[at++];
      size |= (b & 0x7f) << shift;
      if (b < 0x80) break;
    }
    at += size;
  }
  assert.equal(at, bytes.length);
  assert.ok(!ids.includes(11) && !ids.includes(12), `sections ${ids} include data`);
});
