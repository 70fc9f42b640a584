// The fused BN-ReLU kernels on channel pieces (src/core/fused-kernels.ts), on cpu (the JS
// reference) and torch-cpu (libtorch addon, where built): reading the pieces in place and
// writing the input gradient into per-split outputs with accumulators must give exactly what
// the whole concatenation, tf.split and tf.add give on the same backend. (The wasm kernels
// are checked against the cpu ones bit for bit in wasm-fused-kernels.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import { registerTorchCpuBackend, torchCpuInfo } from '../src/backend/torch-cpu';
import { BN_RELU, BN_RELU_GRAD, BN_RELU_POOLED_GRAD, pieceInputs } from '../src/core/fused-kernels';
import { sameValues } from './helpers';

registerTorchCpuBackend();
const BACKENDS = ['cpu', ...(torchCpuInfo().available ? ['torch-cpu'] : [])];
const LEAD: [number, number, number] = [3, 5, 4];

interface Setup {
  pieces: tf.Tensor4D[];
  whole: tf.Tensor4D;
  dr: tf.Tensor4D;
  vectors: Record<'gamma' | 'beta' | 'mean' | 'invStd' | 'scale' | 'shift', tf.Tensor1D>;
}

function setup(widths: number[], seed: number, lead: [number, number, number] = LEAD): Setup {
  const pieces = widths.map((w, i) => tf.randomNormal([...lead, w], 0, 1, 'float32', seed + i) as tf.Tensor4D);
  const whole = tf.concat(pieces, 3) as tf.Tensor4D;
  const c = whole.shape[3];
  const vector = (lo: number, hi: number, s: number) => tf.randomUniform([c], lo, hi, 'float32', seed + 100 + s) as tf.Tensor1D;
  const gamma = tf.mul(vector(0.5, 1.5, 0), tf.sign(vector(-1, 2, 1))) as tf.Tensor1D;
  const beta = vector(-0.5, 0.5, 2);
  const mean = tf.mean(whole, [0, 1, 2]) as tf.Tensor1D;
  const invStd = tf.rsqrt(tf.add(tf.moments(whole, [0, 1, 2]).variance, 1e-5)) as tf.Tensor1D;
  const scale = tf.mul(gamma, invStd) as tf.Tensor1D;
  const shift = tf.sub(beta, tf.mul(mean, scale)) as tf.Tensor1D;
  const dr = tf.randomNormal(whole.shape, 0, 1, 'float32', seed + 50) as tf.Tensor4D;
  return { pieces, whole, dr, vectors: { gamma, beta, mean, invStd, scale, shift } };
}

function grad(s: Setup, x: Record<string, tf.Tensor>, accs: Array<tf.Tensor | null>, splits?: number[], kernel = BN_RELU_GRAD): tf.Tensor[] {
  const { gamma, beta, mean, invStd } = s.vectors;
  const accInputs = Object.fromEntries(accs.flatMap((a, j) => (a ? [[`acc${j}`, a]] : [])));
  return tf.engine().runKernel(kernel, { ...x, dr: s.dr, gamma, beta, mean, invStd, ...accInputs },
    splits ? { splits } : {}) as tf.Tensor[];
}

/** The gradient of the whole concatenation, split and added to the accumulators with tfjs ops. */
function expectedGrad(s: Setup, accs: Array<tf.Tensor | null>, splits: number[]): tf.Tensor[] {
  const [dx, dGamma, dBeta] = grad(s, { x: s.whole }, []);
  const parts = tf.split(dx, splits, 3);
  return [...parts.map((p, j) => (accs[j] ? tf.add(accs[j]!, p) : p)), dGamma, dBeta];
}

function assertAllSame(got: tf.Tensor[], want: tf.Tensor[], what: string): void {
  assert.equal(got.length, want.length, `${what}: number of outputs`);
  got.forEach((g, i) => assert.ok(sameValues(g, want[i]), `${what}: output ${i} differs`));
}

for (const backend of BACKENDS) {
  test(`${backend}: BN-ReLU on pieces equals BN-ReLU on their concatenation`, async () => {
    await init(backend, { log: null });
    tf.tidy(() => {
      const s = setup([6, 3, 3, 5], 1);
      const { scale, shift } = s.vectors;
      const want = tf.engine().runKernel(BN_RELU, { x: s.whole, scale, shift }) as tf.Tensor;
      const got = tf.engine().runKernel(BN_RELU, { ...pieceInputs(s.pieces), scale, shift }) as tf.Tensor;
      assert.deepEqual(got.shape, [...LEAD, 17]);
      assert.ok(sameValues(got, want));
    });
  });

  test(`${backend}: BN-ReLU backward writes split, accumulated input gradients (pieces and whole input)`, async () => {
    await init(backend, { log: null });
    tf.tidy(() => {
      const widths = [6, 3, 12, 16];
      const s = setup(widths, 7);
      const accs = widths.map((w, j) => (j === 1 ? null : tf.randomNormal([...LEAD, w], 0, 1, 'float32', 70 + j)));
      const want = expectedGrad(s, accs, widths);
      // Efficient mode: the pieces themselves; naive mode: the stored concatenation, split the same way.
      assertAllSame(grad(s, pieceInputs(s.pieces), accs, widths), want, 'pieces');
      assertAllSame(grad(s, { x: s.whole }, accs, widths), want, 'whole x');
      // Splits finer than the pieces, no accumulators.
      const finer = [2, 4, 3, 12, 8, 8];
      assertAllSame(grad(s, pieceInputs(s.pieces), [], finer), expectedGrad(s, [], finer), 'finer splits');
    });
  });

  test(`${backend}: the pooled BN-ReLU backward reads dr per 2x2 window: AvgPoolGrad then the plain kernel, without the full-size dr`, async () => {
    await init(backend, { log: null });
    tf.tidy(() => {
      const widths = [5, 7];
      const s = setup(widths, 21, [2, 6, 4]);
      const pooledDr = tf.randomNormal([2, 3, 2, 12], 0, 1, 'float32', 22) as tf.Tensor4D;
      const accs = [tf.randomNormal([2, 6, 4, 5], 0, 1, 'float32', 23), null];
      const full = tf.engine().runKernel('AvgPoolGrad', { dy: pooledDr, input: s.whole }, { filterSize: 2, strides: 2, pad: 'valid' }) as tf.Tensor4D;
      const want = grad({ ...s, dr: full }, pieceInputs(s.pieces), accs, widths);
      const got = grad({ ...s, dr: tf.div(pooledDr, 4) as tf.Tensor4D }, pieceInputs(s.pieces), accs, widths, BN_RELU_POOLED_GRAD);
      assertAllSame(got, want, 'pooled');
      const odd = setup([3], 24, [2, 5, 4]);
      assert.throws(() => grad({ ...odd, dr: tf.zeros([2, 2, 2, 3]) }, { x: odd.whole }, [], undefined, BN_RELU_POOLED_GRAD), /even height and width/);
      assert.throws(() => grad({ ...s, dr: full }, pieceInputs(s.pieces), [], widths, BN_RELU_POOLED_GRAD), /'dr' is float32 \[2,6,4,12\], expected float32 \[2,3,2,12\] \(x pooled 2x2\)/);
    });
  });

  test(`${backend}: bad pieces, splits and accumulators are refused, naming them`, async () => {
    await init(backend, { log: null });
    tf.tidy(() => {
      const s = setup([4, 4], 11);
      const x = pieceInputs(s.pieces);
      assert.throws(() => grad(s, x, [], [2, 4, 2]), /splits \[2,4,2\] must .* lie within one x piece/);
      assert.throws(() => grad(s, x, [], [4, 3]), /add up to 7, expected 8/);
      assert.throws(() => grad(s, x, [tf.zeros([...LEAD, 3])], [4, 4]), /'acc0' is float32 \[3,5,4,3\], expected float32 \[3,5,4,4\]/);
      const odd = { x0: s.pieces[0], x1: tf.zeros([3, 5, 2, 4]) };
      assert.throws(() => tf.engine().runKernel(BN_RELU, { ...odd, scale: s.vectors.scale, shift: s.vectors.shift }),
        /x piece 1 has shape \[3,5,2,4\], expected \[3,5,4,C\]/);
    });
  });
}

test('a dense block makes no Concat, SplitV or AddN/Add on full feature maps in memory-efficient training on backends with the kernels', async () => {
  await init('cpu', { log: null });
  const { DenseBlock } = await import('../src/layers/dense-block');
  const block = new DenseBlock({ numLayers: 3, growthRate: 4, bottleneckWidth: 8, useBias: false, dropRate: 0, memoryEfficient: true, output: 'all' });
  const x = tf.randomNormal([2, 6, 6, 5], 0, 1, 'float32', 3) as tf.Tensor4D;
  block.apply(tf.input({ shape: [6, 6, 5] }));
  const probe = tf.randomNormal([2, 6, 6, 17]);
  const profile = await tf.profile(() => {
    const g = tf.grads((input: tf.Tensor) => tf.sum(tf.mul(block.apply(input, { training: true }) as tf.Tensor, probe)))([x]);
    tf.dispose(g);
  });
  const featureSized = (shape: number[] | null) => shape !== null && shape.length === 4 && shape[1] === 6;
  const copies = profile.kernels.filter((k) => ['Concat', 'SplitV', 'Add', 'AddN'].includes(k.name) && k.outputShapes.some(featureSized));
  // The block's output itself is the one concatenation a DenseNet needs (and its gradient is split once).
  assert.deepEqual(copies.map((k) => k.name).sort(), ['Concat', 'SplitV']);
  tf.dispose([x, probe]);
});
