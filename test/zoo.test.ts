// The zoo: exact parameter counts, the papers' channel tables, options, bad input,
// save/load and transfer learning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import * as zoo from '../src/zoo';
import { blockChannels, summarize } from '../src/models/summary';
import { saveLayersModelToFile } from '../src/weights/file-io';
import { saveTorchvisionSafetensors } from '../src/weights/torchvision';
import { maxRelativeError, sameValues } from './helpers';

test('the zoo lists all 14 models', () => {
  assert.deepEqual(zoo.list(), [
    'densenet121', 'densenet169', 'densenet201', 'densenet264', 'densenet161',
    'densenet-40-k12', 'densenet-100-k12', 'densenet-100-k24', 'densenet-bc-100-k12', 'densenet-bc-250-k24', 'densenet-bc-190-k40',
    'fc-densenet56', 'fc-densenet67', 'fc-densenet103',
  ]);
});

// The reference counts of numbers.md, written out here rather than read from the records they check.
const PARAMS: Record<string, number> = {
  densenet121: 7978856, densenet169: 14149480, densenet201: 20013928, densenet264: 33337704, densenet161: 28681000,
  'densenet-40-k12': 1019722, 'densenet-100-k12': 6979642, 'densenet-100-k24': 27249082, 'densenet-bc-100-k12': 769162,
  'densenet-bc-250-k24': 15324406, 'densenet-bc-190-k40': 25624430,
  'fc-densenet56': 1376795, 'fc-densenet67': 3463243, 'fc-densenet103': 9322091,
};

for (const [name, params] of Object.entries(PARAMS)) {
  test(`${name} has exactly ${params.toLocaleString('en-US')} trainable parameters`, async () => {
    await init('cpu', { log: null });
    const model = zoo.create(name);
    assert.equal(zoo.countTrainableParams(model), params);
    assert.equal(zoo.info(name).params, params);
    model.dispose();
  });
}

test('CIFAR-100 variants have the paper-table counts', async () => {
  await init('cpu', { log: null });
  const expected: Record<string, number> = { 'densenet-40-k12': 1060132, 'densenet-bc-100-k12': 800032 };
  for (const [name, params] of Object.entries(expected)) {
    const model = zoo.create(name, { numClasses: 100 });
    assert.equal(zoo.countTrainableParams(model), params, name);
    model.dispose();
  }
});

test('block-by-block channel tables match the papers', async () => {
  await init('cpu', { log: null });
  const channels = (name: string, options?: zoo.CreateOptions) => blockChannels(summarize(zoo.create(name, options)));
  assert.deepEqual(channels('fc-densenet103'), [112, 192, 304, 464, 656, 896, 1088, 816, 576, 384, 256]);
  assert.deepEqual(channels('densenet121'), [256, 512, 1024, 1024]);
  assert.deepEqual(channels('densenet161'), [384, 768, 2112, 2208]);
  assert.deepEqual(channels('densenet-bc-100-k12'), [216, 300, 342]);
  assert.deepEqual(channels('densenet-40-k12'), [160, 304, 448]);
  // Without compression the transition keeps every channel.
  assert.deepEqual(channels('densenet-bc-100-k12', { compression: 1 }), [216, 408, 600]);
});

test('summary reports resolutions and FLOPs of densenet121 like the paper (2.9 GFLOPs, 7x7 final maps)', async () => {
  await init('cpu', { log: null });
  const s = summarize(zoo.create('densenet121'));
  const block4 = s.stages.find((x) => x.stage === 'block4')!;
  assert.deepEqual(block4.resolution, [7, 7]);
  assert.ok(s.totalFlops > 2.8e9 && s.totalFlops < 2.9e9, `${s.totalFlops}`);
  assert.equal(s.totalParams, PARAMS.densenet121);
});

test('segmentation models give per-pixel logits at any size from 32 up, as the authors\' crop-after-upsampling allows', async () => {
  await init('cpu', { log: null });
  for (const [h, w] of [[64, 96], [45, 70], [33, 32]]) {
    const model = zoo.create('fc-densenet56', { inputShape: [h, w, 1], numClasses: 4 });
    const y = model.predict(tf.zeros([2, h, w, 1])) as tf.Tensor;
    assert.deepEqual(y.shape, [2, h, w, 4]);
    tf.dispose([y]);
    model.dispose();
  }
  assert.throws(() => zoo.create('fc-densenet56', { inputShape: [31, 96, 3] }), /fc-densenet56 cannot take input 31x96x3.*at least 32/);
});

test('FC-DenseNet trains on whole 360x480 CamVid frames: forward and backward at that size', async () => {
  await init(undefined, { log: null }); // the fastest backend here: a 360x480 backward pass is slow in plain JavaScript
  const model = zoo.create('fc-densenet56', { inputShape: [360, 480, 3], blockLayers: [1, 1, 1, 1, 1], growthRate: 2, stemChannels: 4, dropRate: 0 });
  const x = tf.randomNormal([1, 360, 480, 3], 0, 1, 'float32', 3);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => tf.mean(tf.square(model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar, vars);
  assert.deepEqual((model.outputs[0].shape as number[]).slice(1), [360, 480, 11]);
  assert.ok(Number.isFinite((await value.data())[0]));
  assert.equal(Object.keys(grads).length, vars.length, 'a gradient for every weight');
  const stem = grads[(model.getLayer('stem_conv').trainableWeights[0].read() as tf.Variable).name];
  assert.ok((await tf.max(tf.abs(stem)).data())[0] > 0, 'the loss reaches the first conv');
  tf.dispose([x, value, ...Object.values(grads)]);
  model.dispose();
});

test('options change the architecture as documented', async () => {
  await init('cpu', { log: null });
  const noBottleneck = zoo.create('densenet-bc-100-k12', { bottleneck: false });
  assert.ok(zoo.countTrainableParams(noBottleneck) !== PARAMS['densenet-bc-100-k12']);
  const grey = zoo.create('densenet-bc-100-k12', { inChannels: 1, inputShape: [28, 28] });
  assert.deepEqual(grey.inputs[0].shape, [null, 28, 28, 1]);
  assert.throws(() => zoo.create('densenet-bc-100-k12', { compression: 1.5 }), /compression must be in \(0, 1\], got 1.5/);
  assert.throws(() => zoo.create('fc-densenet56', { bottleneck: true }), /apply to DenseNet models/);
  assert.throws(() => zoo.create('densenet121', { inputShape: [16, 16, 3] }), /densenet121 cannot take input 16x16x3.*at least 32/);
  assert.throws(() => zoo.create('densenet122'), /unknown model 'densenet122'; the zoo has: densenet121, /);
  assert.throws(() => zoo.create('densenet121', { numClasses: 0 }), /numClasses must be a positive integer/);
});

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'densenet-zoo-'));
}

test('save then load gives identical predictions (tfjs format, model and weights)', async () => {
  await init('cpu', { log: null });
  const model = zoo.create('densenet-bc-100-k12', { inputShape: [16, 16, 3] });
  const x = tf.randomNormal([2, 16, 16, 3], 0, 1, 'float32', 3);
  // A training step moves the BN statistics away from their initial values.
  tf.train.sgd(0.1).minimize(() => tf.mean(model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar);
  const dir = tmpDir();
  await saveLayersModelToFile(model, dir);
  const loaded = await zoo.load('densenet-bc-100-k12', { weights: path.join(dir, 'model.json'), inputShape: [16, 16, 3] });
  const a = model.predict(x) as tf.Tensor;
  const b = loaded.predict(x) as tf.Tensor;
  assert.ok(sameValues(b, a));
});

test('ImageNet-shaped safetensors into a 10-class grey model: all but the classifier kept, first conv summed', async () => {
  await init('cpu', { log: null });
  const source = zoo.create('densenet121', { inputShape: [32, 32, 3] });
  const file = path.join(tmpDir(), 'w.safetensors');
  await saveTorchvisionSafetensors(source, file);
  const target = await zoo.load('densenet121', { weights: file, numClasses: 10, inChannels: 1, inputShape: [32, 32, 1] });
  const byName = (m: tf.LayersModel) => new Map(m.weights.map((w) => [w.originalName, w.read()]));
  const src = byName(source);
  let compared = 0;
  for (const [name, value] of byName(target)) {
    if (name.startsWith('classifier/')) {
      assert.equal(value.shape[value.shape.length - 1], 10);
    } else if (name === 'stem_conv/kernel') {
      assert.ok(maxRelativeError(value, tf.sum(src.get(name)!, 2, true)) < 1e-6);
    } else {
      assert.ok(sameValues(value, src.get(name)!), name);
      compared++;
    }
  }
  assert.equal(compared, source.weights.length - 3); // all but the classifier's two and the stem conv
});

test('weights problems are clear errors', async () => {
  await init('cpu', { log: null });
  await assert.rejects(zoo.load('densenet121', { weights: 'fashion' }), /densenet121: unknown weights 'fashion'; tags for this model: imagenet/);
  const missing = path.join(tmpDir(), 'nothing.safetensors');
  await assert.rejects(zoo.load('densenet-bc-100-k12', { weights: missing }), new RegExp(missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
  const small = zoo.create('densenet-40-k12');
  const file = path.join(tmpDir(), 'w.safetensors');
  await saveTorchvisionSafetensors(small, file);
  await assert.rejects(zoo.load('densenet-bc-100-k12', { weights: file }), /features\.denseblock1\.denselayer1\.conv1\.weight/);
  await assert.rejects(zoo.load('fc-densenet56', { weights: file }), /FC-DenseNet weights come as a tfjs model\.json/);
});
