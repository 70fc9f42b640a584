// Whole models: naive and memory-efficient training give the same loss, the same gradient
// for every weight and the same BatchNorm running statistics after a step, on wasm and, where
// Dawn offers an adapter (SwiftShader will do), on webgpu. Reads are async: webgpu has no sync read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../src/tf';
import { init, webgpuProbe } from '../src/backend';
import * as zoo from '../src/zoo';
import { maxRelativeErrorOf } from './helpers';

const CASES: Array<[string, zoo.CreateOptions, number]> = [
  ['densenet-bc-100-k12', { inputShape: [16, 16, 3] }, 4],
  ['densenet121', { inputShape: [32, 32, 3], numClasses: 10 }, 2], // a small ImageNet-style DenseNet
  ['fc-densenet56', { inputShape: [32, 32, 3], dropRate: 0 }, 2],
  // Odd sizes: pooling floors and every transposed conv's output is cropped to its skip.
  ['fc-densenet56', { inputShape: [45, 38, 3], dropRate: 0, growthRate: 6 }, 1],
];

async function step(model: tf.LayersModel, x: tf.Tensor, labels: tf.Tensor): Promise<{ loss: number; grads: Map<string, tf.Tensor> }> {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, vars);
  return { loss: (await value.data())[0], grads: new Map(model.trainableWeights.map((w, i) => [w.originalName, grads[vars[i].name]])) };
}

const relativeError = async (a: tf.Tensor, b: tf.Tensor, floor = 1e-3) => maxRelativeErrorOf(await a.data(), await b.data(), floor);

/** The same models, smaller, for webgpu: on a software driver (CI's) every shader is compiled and run on the CPU. */
const WEBGPU_CASES: typeof CASES = [
  ['densenet-bc-100-k12', { inputShape: [8, 8, 3] }, 2],
  ['densenet121', { inputShape: [32, 32, 3], numClasses: 10 }, 1],
  ['fc-densenet56', { inputShape: [32, 32, 3], dropRate: 0 }, 1],
  ['fc-densenet56', { inputShape: [45, 38, 3], dropRate: 0, growthRate: 6 }, 1],
];

const RUNS = [...CASES.map((c) => ['wasm', c] as const), ...WEBGPU_CASES.map((c) => ['webgpu', c] as const)];

for (const [backend, [name, options, batch]] of RUNS) {
  test(`${backend}: ${name} ${(options.inputShape ?? []).join('x')}: naive and efficient training agree (loss, every gradient, BN running statistics)`, async (t) => {
    if (backend === 'webgpu') {
      const probe = await webgpuProbe();
      if (!probe.adapter) return t.skip(`no WebGPU adapter here: ${probe.reason}`);
    }
    await init(backend, { log: null });
    const naive = zoo.create(name, { ...options, memoryEfficient: false, seed: 1 });
    const efficient = zoo.create(name, { ...options, memoryEfficient: true });
    efficient.setWeights(naive.getWeights());
    const inShape = (naive.inputs[0].shape as number[]).slice(1);
    const outShape = (naive.outputs[0].shape as number[]).slice(1);
    const x = tf.randomNormal([batch, ...inShape], 0, 1, 'float32', 11);
    const classes = outShape[outShape.length - 1];
    const labels = tf.oneHot(tf.randomUniform([batch, ...outShape.slice(0, -1)], 0, classes, 'int32', 12), classes);
    const a = await step(naive, x, labels);
    const b = await step(efficient, x, labels);
    assert.ok(Math.abs(a.loss - b.loss) <= 1e-6 * Math.abs(a.loss), `loss ${a.loss} vs ${b.loss}`);
    assert.equal(a.grads.size, naive.trainableWeights.length);
    for (const [weight, g] of a.grads) {
      const err = await relativeError(b.grads.get(weight)!, g, 1e-2);
      assert.ok(err < 1e-5, `${weight}: relative error ${err}`);
    }
    const stats = (m: tf.LayersModel) => m.weights.filter((w) => /moving_(mean|variance)$/.test(w.originalName));
    const [sa, sb] = [stats(naive), stats(efficient)];
    assert.ok(sa.length > 0 && sa.length === sb.length);
    for (const [i, w] of sa.entries()) assert.ok((await relativeError(sb[i].read(), w.read())) < 1e-6, w.originalName);
    // The statistics moved (the step really updated them).
    const moved = await Promise.all(sa.filter((w) => w.originalName.endsWith('moving_mean')).map(async (w) => (await tf.max(tf.abs(w.read())).data())[0]));
    assert.ok(moved.some((m) => m > 0));
  });
}
