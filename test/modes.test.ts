// Whole models: naive and memory-efficient training give the same loss, the same gradient
// for every weight and the same BatchNorm running statistics after a step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import * as zoo from '../src/zoo';
import { maxRelativeError } from './helpers';

const CASES: Array<[string, zoo.CreateOptions, number]> = [
  ['densenet-bc-100-k12', { inputShape: [16, 16, 3] }, 4],
  ['densenet121', { inputShape: [32, 32, 3], numClasses: 10 }, 2], // a small ImageNet-style DenseNet
  ['fc-densenet56', { inputShape: [32, 32, 3], dropRate: 0 }, 2],
  // Odd sizes: pooling floors and every transposed conv's output is cropped to its skip.
  ['fc-densenet56', { inputShape: [45, 38, 3], dropRate: 0, growthRate: 6 }, 1],
];

function step(model: tf.LayersModel, x: tf.Tensor, labels: tf.Tensor): { loss: number; grads: Map<string, tf.Tensor> } {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, vars);
  return { loss: value.dataSync()[0], grads: new Map(model.trainableWeights.map((w, i) => [w.originalName, grads[vars[i].name]])) };
}

for (const [name, options, batch] of CASES) {
  test(`${name} ${(options.inputShape ?? []).join('x')}: naive and efficient training agree (loss, every gradient, BN running statistics)`, async () => {
    await init('wasm', { log: null });
    const naive = zoo.create(name, { ...options, memoryEfficient: false, seed: 1 });
    const efficient = zoo.create(name, { ...options, memoryEfficient: true });
    efficient.setWeights(naive.getWeights());
    const inShape = (naive.inputs[0].shape as number[]).slice(1);
    const outShape = (naive.outputs[0].shape as number[]).slice(1);
    const x = tf.randomNormal([batch, ...inShape], 0, 1, 'float32', 11);
    const classes = outShape[outShape.length - 1];
    const labels = tf.oneHot(tf.randomUniform([batch, ...outShape.slice(0, -1)], 0, classes, 'int32', 12), classes);
    const a = step(naive, x, labels);
    const b = step(efficient, x, labels);
    assert.ok(Math.abs(a.loss - b.loss) <= 1e-6 * Math.abs(a.loss), `loss ${a.loss} vs ${b.loss}`);
    assert.equal(a.grads.size, naive.trainableWeights.length);
    for (const [weight, g] of a.grads) {
      const err = maxRelativeError(b.grads.get(weight)!, g, 1e-2);
      assert.ok(err < 1e-5, `${weight}: relative error ${err}`);
    }
    const stats = (m: tf.LayersModel) => m.weights.filter((w) => /moving_(mean|variance)$/.test(w.originalName));
    const [sa, sb] = [stats(naive), stats(efficient)];
    assert.ok(sa.length > 0 && sa.length === sb.length);
    sa.forEach((w, i) => assert.ok(maxRelativeError(sb[i].read(), w.read()) < 1e-6, w.originalName));
    // The statistics moved (the step really updated them).
    assert.ok(sa.some((w) => w.originalName.endsWith('moving_mean') && tf.max(tf.abs(w.read())).dataSync()[0] > 0));
  });
}
