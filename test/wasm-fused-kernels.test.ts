// The wasm backend's fused BatchNorm-ReLU kernels (src/backend/wasm-fused-kernels.ts)
// against the cpu backend's JS reference kernels (src/core/fused-kernels.ts): equal bit
// for bit on random data, odd channel counts, values on the ReLU's edge; no leaks; the
// embedded module matches the committed .wasm and owns no memory of its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import { BN_RELU, BN_RELU_GRAD, hasFusedKernels } from '../src/core/fused-kernels';
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
async function runKernel(backend: 'cpu' | 'wasm', kernel: string, inputs: () => Record<string, tf.Tensor>): Promise<Float32Array[]> {
  await init(backend, { log: null });
  if (backend === 'wasm') await registerWasmFusedKernels();
  assert.ok(hasFusedKernels(), `${kernel} is registered for ${backend}`);
  const before = tf.memory().numTensors;
  const outputs = tf.tidy(() => {
    const out = tf.engine().runKernel(kernel, inputs() as unknown as tf.NamedTensorMap);
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

test('the kernels leave no tensors, data ids or scratch behind', async () => {
  await init('wasm', { log: null });
  await registerWasmFusedKernels();
  const backend = tf.backend() as unknown as { numDataIds(): number; wasm: { _malloc(n: number): number; _free(p: number): void } };
  const k = randomCase([2, 4, 4, 24], 11);
  const run = (): void => {
    tf.tidy(() => {
      const f = forwardInputs(k);
      tf.engine().runKernel(BN_RELU, f as unknown as tf.NamedTensorMap);
      tf.engine().runKernel(BN_RELU_GRAD, gradInputs(k) as unknown as tf.NamedTensorMap);
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
  const k = randomCase([2, 3, 3, 8], 12);
  assert.throws(() => tf.tidy(() => {
    const inputs = gradInputs(k);
    inputs.gamma = tf.ones([7]);
    tf.engine().runKernel(BN_RELU_GRAD, inputs as unknown as tf.NamedTensorMap);
  }), /'gamma' has shape \[7\], expected \[8\]/);
  assert.throws(() => tf.tidy(() => {
    const inputs = gradInputs(k);
    inputs.dr = tf.ones([2, 3, 3, 4]);
    tf.engine().runKernel(BN_RELU_GRAD, inputs as unknown as tf.NamedTensorMap);
  }), /'dr' has shape \[2,3,3,4\], expected the shape of x/);
  assert.throws(() => tf.tidy(() => {
    const f = forwardInputs(k);
    tf.engine().runKernel(BN_RELU, { ...f, x: tf.cast(f.x, 'int32') } as unknown as tf.NamedTensorMap);
  }), /'x' must be float32, got int32/);
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
