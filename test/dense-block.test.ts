// The hand-written backward of the dense block and the transition layer against tfjs
// autodiff of the same forward in plain ops, and naive against memory-efficient mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import { DenseBlock } from '../src/layers/dense-block';
import { dropoutMaskValues } from '../src/core/dropout-mask';
import { PreActivationConv } from '../src/layers/pre-activation-conv';
import { maxRelativeError } from './helpers';

const EPS = 1e-5;
const SHAPE: [number, number, number, number] = [2, 5, 6, 4];

/** Short weight name inside the layer, e.g. `layer2/norm1/gamma`. */
const localName = (layer: tf.layers.Layer, full: string) => full.slice(full.indexOf(`${layer.name}/`) + layer.name.length + 1);

function unitReference(h: tf.Tensor4D, w: Record<string, tf.Tensor>, norm: string, convName: string): tf.Tensor4D {
  const { mean, variance } = tf.moments(h, [0, 1, 2]);
  const r = tf.relu(tf.batchNorm(h, mean, variance, w[`${norm}/beta`] as tf.Tensor1D, w[`${norm}/gamma`] as tf.Tensor1D, EPS)) as tf.Tensor4D;
  const y = tf.conv2d(r, w[`${convName}/kernel`] as tf.Tensor4D, 1, 'same');
  return (w[`${convName}/bias`] ? tf.add(y, w[`${convName}/bias`]) : y) as tf.Tensor4D;
}

/** `masks` gives the dropout mask after unit u of layer l, where there is one. */
type MaskOf = (l: number, u: number, shape: number[]) => tf.Tensor | undefined;

function blockReference(x: tf.Tensor4D, w: Record<string, tf.Tensor>, layers: number, units: number, output: 'all' | 'new', masks?: MaskOf): tf.Tensor4D {
  const features = [x];
  for (let l = 1; l <= layers; l++) {
    let h = tf.concat(features, 3) as tf.Tensor4D;
    for (let u = 1; u <= units; u++) {
      h = unitReference(h, w, `layer${l}/norm${u}`, `layer${l}/conv${u}`);
      const mask = masks?.(l, u, h.shape);
      if (mask) h = tf.mul(h, mask) as tf.Tensor4D;
    }
    features.push(h);
  }
  return tf.concat(output === 'all' ? features : features.slice(1), 3) as tf.Tensor4D;
}

function randomize(layer: tf.layers.Layer, seed: number): void {
  layer.setWeights(layer.weights.map((w, i) => {
    const name = w.originalName;
    if (name.endsWith('moving_variance') || name.endsWith('gamma')) return tf.randomUniform(w.shape as number[], 0.5, 1.5, 'float32', seed + i);
    return tf.randomNormal(w.shape as number[], 0, 0.3, 'float32', seed + i);
  }));
}

interface Result { loss: number; dx: tf.Tensor; dw: tf.Tensor[] }

/** Loss = sum(output * probe); gradients by the layer's own backward, via tf.variableGrads. */
function layerGrads(layer: tf.layers.Layer, x: tf.Tensor4D, probe: tf.Tensor): Result {
  const vars = layer.trainableWeights.map((w) => w.read() as tf.Variable);
  const xv = tf.variable(x);
  const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(xv, { training: true }) as tf.Tensor, probe)) as tf.Scalar, [xv, ...vars]);
  return { loss: value.dataSync()[0], dx: grads[xv.name], dw: vars.map((v) => grads[v.name]) };
}

function referenceGrads(layer: tf.layers.Layer, x: tf.Tensor4D, probe: tf.Tensor, forward: (x: tf.Tensor4D, w: Record<string, tf.Tensor>) => tf.Tensor): Result {
  const names = layer.trainableWeights.map((w) => localName(layer, w.originalName));
  const values = layer.trainableWeights.map((w) => w.read());
  let loss = 0;
  const g = tf.grads((...args: tf.Tensor[]) => {
    const out = tf.sum(tf.mul(forward(args[0] as tf.Tensor4D, Object.fromEntries(names.map((n, i) => [n, args[1 + i]]))), probe));
    loss = out.dataSync()[0];
    return out;
  })([x, ...values]);
  return { loss, dx: g[0], dw: g.slice(1) };
}

function compare(got: Result, want: Result, tolerance: number, what: string): void {
  assert.ok(Math.abs(got.loss - want.loss) <= tolerance * Math.max(1, Math.abs(want.loss)), `${what}: loss ${got.loss} vs ${want.loss}`);
  const e = maxRelativeError(got.dx, want.dx);
  assert.ok(e < tolerance, `${what}: input gradient rel err ${e}`);
  got.dw.forEach((g, i) => {
    const err = maxRelativeError(g, want.dw[i]);
    assert.ok(err < tolerance, `${what}: weight ${i} rel err ${err}`);
  });
}

for (const backendName of ['cpu', 'wasm']) {
  for (const [bottleneck, useBias, output] of [[true, false, 'all'], [false, true, 'new']] as const) {
    test(`dense block backward (${backendName}, bottleneck=${bottleneck}, bias=${useBias}, output=${output}) matches autodiff; naive equals efficient`, async () => {
      await init(backendName, { log: null });
      const x = tf.randomNormal(SHAPE, 0, 1, 'float32', 1) as tf.Tensor4D;
      const results = [false, true].map((memoryEfficient) => {
        const block = new DenseBlock({ numLayers: 3, growthRate: 3, bottleneckWidth: bottleneck ? 8 : 0, useBias, dropRate: 0, memoryEfficient, output });
        block.apply(tf.input({ shape: SHAPE.slice(1) }));
        randomize(block, 100);
        const probe = tf.randomNormal(block.computeOutputShape([...SHAPE]) as number[], 0, 1, 'float32', 7);
        const want = referenceGrads(block, x, probe, (xx, w) => blockReference(xx, w, 3, bottleneck ? 2 : 1, output));
        const initialMean = block.weights.find((w) => w.originalName.endsWith('layer1/norm1/moving_mean'))!.read().clone();
        const got = layerGrads(block, x, probe);
        compare(got, want, 1e-4, memoryEfficient ? 'efficient' : 'naive');
        // One training forward moves the moving mean once, with momentum 0.9, toward the batch mean.
        const movingMean = block.weights.find((w) => w.originalName.endsWith('layer1/norm1/moving_mean'))!.read();
        const expected = tf.add(tf.mul(initialMean, 0.9), tf.mul(tf.mean(x, [0, 1, 2]), 0.1));
        assert.ok(maxRelativeError(movingMean, expected) < 1e-5, 'moving mean updated exactly once');
        return got;
      });
      compare(results[1], results[0], 1e-5, 'efficient vs naive');
    });
  }

  test(`transition layer backward (${backendName}) matches autodiff in both modes`, async () => {
    await init(backendName, { log: null });
    const x = tf.randomNormal(SHAPE, 0, 1, 'float32', 2) as tf.Tensor4D;
    for (const memoryEfficient of [false, true]) {
      const layer = new PreActivationConv({ filters: 5, kernelSize: 1, useBias: true, memoryEfficient });
      layer.apply(tf.input({ shape: SHAPE.slice(1) }));
      randomize(layer, 200);
      const probe = tf.randomNormal([2, 5, 6, 5], 0, 1, 'float32', 8);
      const want = referenceGrads(layer, x, probe, (xx, w) => unitReference(xx, w, 'norm', 'conv'));
      compare(layerGrads(layer, x, probe), want, 1e-4, `transition efficient=${memoryEfficient}`);
    }
  });
}

/** Runs f with Math.random (where dropout draws its mask seeds) giving `seeds` in turn; returns how many it drew. */
function withMaskSeeds(seeds: number[], f: () => void): number {
  const original = Math.random;
  let drawn = 0;
  Math.random = () => seeds[drawn++] / 2 ** 32;
  try {
    f();
  } finally {
    Math.random = original;
  }
  return drawn;
}

for (const placement of ['every-conv', 'last-conv'] as const) {
  test(`dropout after ${placement === 'every-conv' ? 'every conv (the DenseNet paper)' : 'each layer\'s last conv'}: backward matches autodiff with the same masks, naive equals efficient`, async () => {
    await init('cpu', { log: null });
    const layers = 2;
    const rate = 0.3;
    const seeds = [11, 22, 33, 44];
    const x = tf.randomNormal(SHAPE, 0, 1, 'float32', 4) as tf.Tensor4D;
    // Masks are drawn in forward order: layer 1 unit 1, layer 1 unit 2, layer 2 unit 1, ...
    const dropped = (u: number) => placement === 'every-conv' || u === 2;
    const masks: MaskOf = (l, u, shape) => {
      if (!dropped(u)) return undefined;
      const index = placement === 'every-conv' ? 2 * (l - 1) + (u - 1) : l - 1;
      return tf.tensor(dropoutMaskValues(tf.util.sizeFromShape(shape), rate, seeds[index]), shape);
    };
    const results = [false, true].map((memoryEfficient) => {
      const block = new DenseBlock({
        numLayers: layers, growthRate: 3, bottleneckWidth: 8, useBias: false, dropRate: rate, dropoutPlacement: placement, memoryEfficient, output: 'all',
      });
      block.apply(tf.input({ shape: SHAPE.slice(1) }));
      randomize(block, 400);
      const probe = tf.randomNormal(block.computeOutputShape([...SHAPE]) as number[], 0, 1, 'float32', 10);
      const want = referenceGrads(block, x, probe, (xx, w) => blockReference(xx, w, layers, 2, 'all', masks));
      let got: Result | undefined;
      const drawn = withMaskSeeds(seeds, () => (got = layerGrads(block, x, probe)));
      assert.equal(drawn, placement === 'every-conv' ? 2 * layers : layers, 'one mask per dropped conv');
      compare(got!, want, 1e-4, `${placement} efficient=${memoryEfficient}`);
      return got!;
    });
    compare(results[1], results[0], 1e-5, 'efficient vs naive');
  });
}

test('a training step leaks no tensors', async () => {
  await init('cpu', { log: null });
  const block = new DenseBlock({ numLayers: 2, growthRate: 2, bottleneckWidth: 4, useBias: false, dropRate: 0.2, memoryEfficient: true, output: 'all' });
  block.apply(tf.input({ shape: SHAPE.slice(1) }));
  const x = tf.randomNormal(SHAPE) as tf.Tensor4D;
  const opt = tf.train.sgd(0.01);
  const step = () => opt.minimize(() => tf.sum(block.apply(x, { training: true }) as tf.Tensor) as tf.Scalar);
  step();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) step();
  assert.equal(tf.memory().numTensors, before);
});

test('without fused kernels (backends such as tfjs-node) the composite path gives the same gradients', async () => {
  await init('cpu', { log: null });
  const { BN_RELU, BN_RELU_GRAD, registerFusedKernels } = await import('../src/core/fused-kernels');
  const x = tf.randomNormal(SHAPE, 0, 1, 'float32', 3) as tf.Tensor4D;
  const block = new DenseBlock({ numLayers: 2, growthRate: 3, bottleneckWidth: 8, useBias: false, dropRate: 0, memoryEfficient: true, output: 'all' });
  block.apply(tf.input({ shape: SHAPE.slice(1) }));
  randomize(block, 300);
  const probe = tf.randomNormal(block.computeOutputShape([...SHAPE]) as number[], 0, 1, 'float32', 9);
  const want = referenceGrads(block, x, probe, (xx, w) => blockReference(xx, w, 2, 2, 'all'));
  tf.unregisterKernel(BN_RELU, 'cpu');
  tf.unregisterKernel(BN_RELU_GRAD, 'cpu');
  try {
    compare(layerGrads(block, x, probe), want, 1e-4, 'composite');
  } finally {
    registerFusedKernels();
  }
});

test('inference-mode layers are differentiable (input gradients, saliency)', async () => {
  for (const backendName of ['cpu', 'wasm']) {
    await init(backendName, { log: null });
    const block = new DenseBlock({ numLayers: 2, growthRate: 3, bottleneckWidth: 0, useBias: true, dropRate: 0, memoryEfficient: false, output: 'new' });
    block.apply(tf.input({ shape: SHAPE.slice(1) }));
    randomize(block, 400);
    const x = tf.randomNormal(SHAPE, 0, 1, 'float32', 4) as tf.Tensor4D;
    const w = Object.fromEntries(block.weights.map((v) => [localName(block, v.originalName), v.read()]));
    const reference = (xx: tf.Tensor4D) => {
      const features = [xx];
      for (let l = 1; l <= 2; l++) {
        const h = tf.concat(features, 3) as tf.Tensor4D;
        const r = tf.relu(tf.batchNorm(h, w[`layer${l}/norm1/moving_mean`] as tf.Tensor1D, w[`layer${l}/norm1/moving_variance`] as tf.Tensor1D,
          w[`layer${l}/norm1/beta`] as tf.Tensor1D, w[`layer${l}/norm1/gamma`] as tf.Tensor1D, EPS)) as tf.Tensor4D;
        features.push(tf.add(tf.conv2d(r, w[`layer${l}/conv1/kernel`] as tf.Tensor4D, 1, 'same'), w[`layer${l}/conv1/bias`]) as tf.Tensor4D);
      }
      return tf.concat(features.slice(1), 3);
    };
    const got = tf.grad((xx: tf.Tensor) => tf.sum(tf.square(block.apply(xx, { training: false }) as tf.Tensor)))(x);
    const want = tf.grad((xx: tf.Tensor) => tf.sum(tf.square(reference(xx as tf.Tensor4D))))(x);
    assert.ok(maxRelativeError(got, want) < 1e-4, `${backendName}: ${maxRelativeError(got, want)}`);
  }
});
