import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import { FloatTensor, readSafetensors, SafetensorsFile } from '../src/weights/safetensors';
import {
  adaptInputChannels, bindWeights, exportTorchvisionStateDict, hwioToOihw, loadTorchvisionSafetensors,
  loadTorchvisionStateDict, oihwToHwio, saveTorchvisionSafetensors, stateDictFromTensors, torchvisionKeyOf,
  WeightsMismatchError,
} from '../src/weights/torchvision';
import { randomiseWeights, seededValues, tinyDenseNet, TinyDenseNetConfig } from './weights-tiny-model';
import { FIXTURES, TinyDensenetFixture, readTinyDensenetFixture } from './helpers';

const WEIGHTS = path.join(FIXTURES, 'tiny-densenet.safetensors');


let fixture: TinyDensenetFixture;
let weights: SafetensorsFile;

before(async () => {
  await init('cpu', { log: null });
  fixture = await readTinyDensenetFixture();
  weights = await readSafetensors(WEIGHTS);
});

function modelConfig(overrides: Partial<TinyDenseNetConfig> = {}): TinyDenseNetConfig {
  return {
    growthRate: fixture.growth_rate, blockConfig: fixture.block_config, numInitFeatures: fixture.num_init_features,
    bnSize: fixture.bn_size, numClasses: fixture.num_classes, inputShape: fixture.input_hwc, ...overrides,
  };
}

/** The fixture's state dict in memory, to corrupt in tests. */
function stateDict(): Map<string, FloatTensor> {
  return new Map(weights.names().map((n) => [n, weights.tensor(n)]));
}

function weightValues(model: tf.LayersModel): Map<string, Float32Array> {
  return new Map(model.weights.map((w) => [w.originalName, Float32Array.from(w.read().dataSync() as Float32Array)]));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function problemsOf(fn: () => unknown): WeightsMismatchError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof WeightsMismatchError, `expected a WeightsMismatchError, got ${e}`);
    return e;
  }
  assert.fail('expected the load to fail');
}

test('names follow the convention, with or without scopes and tfjs suffixes', () => {
  assert.deepEqual(torchvisionKeyOf('stem_conv/kernel'), { key: 'features.conv0.weight', kind: 'conv' });
  assert.equal(torchvisionKeyOf('stem_norm/moving_variance')?.key, 'features.norm0.running_var');
  assert.equal(torchvisionKeyOf('block3_layer12/norm2/gamma')?.key, 'features.denseblock3.denselayer12.norm2.weight');
  assert.equal(torchvisionKeyOf('block1_layer1/conv2/kernel')?.key, 'features.denseblock1.denselayer1.conv2.weight');
  assert.deepEqual(torchvisionKeyOf('block2/layer7/conv1/kernel'), { key: 'features.denseblock2.denselayer7.conv1.weight', kind: 'conv' });
  assert.equal(torchvisionKeyOf('block4/layer16/norm1/moving_mean')?.key, 'features.denseblock4.denselayer16.norm1.running_mean');
  assert.equal(torchvisionKeyOf('transition2_norm/beta')?.key, 'features.transition2.norm.bias');
  assert.equal(torchvisionKeyOf('transition2_conv/kernel')?.key, 'features.transition2.conv.weight');
  assert.equal(torchvisionKeyOf('transition3/conv/kernel')?.key, 'features.transition3.conv.weight');
  assert.equal(torchvisionKeyOf('transition3/norm/moving_variance')?.key, 'features.transition3.norm.running_var');
  assert.equal(torchvisionKeyOf('final_norm/moving_mean')?.key, 'features.norm5.running_mean');
  assert.deepEqual(torchvisionKeyOf('classifier/kernel'), { key: 'classifier.weight', kind: 'linear' });
  assert.equal(torchvisionKeyOf('densenet/classifier/bias')?.key, 'classifier.bias');
  assert.equal(torchvisionKeyOf('dense_1/kernel'), undefined);
});

test('layout conversions: OIHW <-> HWIO are inverse and place each value right', () => {
  const shape = [5, 3, 2, 4]; // O, I, H, W
  const data = seededValues(5 * 3 * 2 * 4, 5);
  const hwio = oihwToHwio(data, shape);
  // value (o=4, i=2, h=1, w=3) lands at [h][w][i][o]
  assert.equal(hwio[((1 * 4 + 3) * 3 + 2) * 5 + 4], data[((4 * 3 + 2) * 2 + 1) * 4 + 3]);
  assert.deepEqual(hwioToOihw(hwio, [2, 4, 3, 5]), data);
});

test('torchvision parity: the fixture weights give torchvision\'s logits within 1e-4', async () => {
  const model = tinyDenseNet(modelConfig());
  const report = loadTorchvisionStateDict(model, weights);
  const bnCount = weights.names().filter((n) => n.endsWith('num_batches_tracked')).length;
  assert.equal(report.loaded.length, fixture.state_dict_tensors - bnCount);
  assert.equal(report.ignored.length, bnCount);
  assert.equal(report.loaded.length, model.weights.length);
  const io = await readSafetensors(path.join(FIXTURES, 'tiny-densenet-io.safetensors'));
  const x = tf.tensor(io.read('input_nhwc'), io.shape('input_nhwc'));
  const y = model.predict(x) as tf.Tensor;
  assert.deepEqual(y.shape, io.shape('logits'));
  const diff = maxAbsDiff(await y.data(), io.read('logits'));
  assert.ok(diff < 1e-4, `max |tfjs - torchvision| = ${diff}`);
  tf.dispose([x, y]);
});

test('export then import round trip through a torchvision-keyed safetensors file', async () => {
  const a = tinyDenseNet(modelConfig());
  randomiseWeights(a, 11);
  const file = path.join(await fsp.mkdtemp(path.join(os.tmpdir(), 'densenet-tv-')), 'a.safetensors');
  await saveTorchvisionSafetensors(a, file);
  const saved = await readSafetensors(file);
  assert.equal(saved.metadata.format, 'pt');
  assert.deepEqual(saved.names().sort(), weights.names().filter((n) => !n.endsWith('num_batches_tracked')).sort());
  for (const n of saved.names()) assert.deepEqual(saved.shape(n), weights.shape(n), n);
  const b = tinyDenseNet(modelConfig());
  await loadTorchvisionSafetensors(b, file);
  assert.deepEqual(weightValues(b), weightValues(a));
});

test('a missing tensor is named with its expected shape', () => {
  const sd = stateDict();
  sd.delete('features.denseblock2.denselayer3.norm2.running_var');
  const err = problemsOf(() => loadTorchvisionStateDict(tinyDenseNet(modelConfig()), stateDictFromTensors(sd, 'x.safetensors')));
  assert.deepEqual(err.problems.map((p) => [p.kind, p.key]), [['missing', 'features.denseblock2.denselayer3.norm2.running_var']]);
  assert.match(err.message, /^x\.safetensors: the weights do not fit the model \(1 missing\)/);
  assert.match(err.message, /missing tensor 'features\.denseblock2\.denselayer3\.norm2\.running_var' \(model weight 'block2_layer3\/norm2\/moving_variance', expected shape \[32\]\)/);
});

test('an unexpected tensor is named with its shape', () => {
  const sd = stateDict();
  sd.set('features.denseblock4.denselayer3.conv1.weight', { shape: [32, 48, 1, 1], data: new Float32Array(32 * 48) });
  const err = problemsOf(() => loadTorchvisionStateDict(tinyDenseNet(modelConfig()), stateDictFromTensors(sd, 'x.safetensors')));
  assert.match(err.message, /\(1 unexpected\)/);
  assert.match(err.message, /unexpected tensor 'features\.denseblock4\.denselayer3\.conv1\.weight' \[32,48,1,1\] matches no weight of the model/);
});

test('a wrong shape names the tensor and both shapes', () => {
  const sd = stateDict();
  sd.set('features.transition1.conv.weight', { shape: [12, 32, 1, 1], data: new Float32Array(12 * 32) });
  const err = problemsOf(() => loadTorchvisionStateDict(tinyDenseNet(modelConfig()), stateDictFromTensors(sd, 'x.safetensors')));
  assert.match(err.message, /\(1 wrong shape\)/);
  assert.match(err.message, /wrong shape for tensor 'features\.transition1\.conv\.weight': the model \(weight 'transition1_conv\/kernel'\) needs \[16,32,1,1\] but the file has \[12,32,1,1\]/);
  const p = err.problems[0];
  assert.equal(p.kind, 'shape');
  if (p.kind === 'shape') assert.deepEqual([p.expected, p.actual], [[16, 32, 1, 1], [12, 32, 1, 1]]);
});

test('every problem is reported at once, and a failed load changes nothing', () => {
  const model = tinyDenseNet(modelConfig());
  const before = weightValues(model);
  const sd = stateDict();
  sd.delete('features.norm5.weight');
  sd.set('extra.weight', { shape: [1], data: new Float32Array(1) });
  sd.set('features.conv0.weight', { shape: [16, 3, 5, 5], data: new Float32Array(16 * 3 * 25) });
  const err = problemsOf(() => loadTorchvisionStateDict(model, stateDictFromTensors(sd)));
  assert.deepEqual(err.problems.map((p) => p.kind).sort(), ['missing', 'shape', 'unexpected']);
  assert.match(err.message, /1 missing, 1 unexpected, 1 wrong shape/);
  assert.deepEqual(weightValues(model), before);
});

test('loading into a model with another class count fails on the classifier, naming both shapes', () => {
  const err = problemsOf(() => loadTorchvisionStateDict(tinyDenseNet(modelConfig({ numClasses: 4 })), weights));
  assert.deepEqual(err.problems.map((p) => p.key).sort(), ['classifier.bias', 'classifier.weight']);
  assert.match(err.message, /tensor 'classifier\.weight': the model \(weight 'classifier\/kernel'\) needs \[4,34\] but the file has \[10,34\]/);
});

for (const skip of [true, 'auto'] as const) {
  test(`skipClassifier: ${skip} keeps the classifier untouched and loads everything else`, () => {
    const model = tinyDenseNet(modelConfig({ numClasses: 4 }));
    randomiseWeights(model, 21);
    const before = weightValues(model);
    const report = loadTorchvisionStateDict(model, weights, { skipClassifier: skip });
    assert.deepEqual(report.skipped.sort(), ['classifier/bias', 'classifier/kernel']);
    assert.ok(report.ignored.includes('classifier.weight') && report.ignored.includes('classifier.bias'));
    const after = weightValues(model);
    for (const b of bindWeights(model)) {
      const value = after.get(b.tfName)!;
      if (b.layerName === 'classifier') {
        assert.deepEqual(value, before.get(b.tfName), `${b.tfName} untouched`);
      } else {
        const expected = b.kind === 'conv' ? oihwToHwio(weights.read(b.torchKey), weights.shape(b.torchKey)) : weights.read(b.torchKey);
        assert.deepEqual(value, expected, `${b.tfName} loaded from ${b.torchKey}`);
      }
    }
  });
}

test("skipClassifier: 'auto' loads the classifier when it fits", () => {
  const model = tinyDenseNet(modelConfig());
  const report = loadTorchvisionStateDict(model, weights, { skipClassifier: 'auto' });
  assert.deepEqual(report.skipped, []);
  assert.ok(report.loaded.includes('classifier.weight'));
});

test('inChannels = 1: the first conv is the sum of the filters over input channels', async () => {
  const grey = tinyDenseNet(modelConfig({ inputShape: [fixture.input_hwc[0], fixture.input_hwc[1], 1] }));
  const report = loadTorchvisionStateDict(grey, weights);
  assert.deepEqual(report.adapted, [{ key: 'features.conv0.weight', from: [16, 3, 7, 7], to: [16, 1, 7, 7] }]);
  const kernel = grey.getLayer('stem_conv').getWeights()[0];
  assert.deepEqual(kernel.shape, [7, 7, 1, 16]);
  const w = weights.read('features.conv0.weight');
  const got = kernel.dataSync();
  for (let o = 0; o < 16; o++)
    for (let y = 0; y < 7; y++)
      for (let x = 0; x < 7; x++) {
        let sum = 0;
        for (let i = 0; i < 3; i++) sum += w[((o * 3 + i) * 7 + y) * 7 + x];
        assert.ok(Math.abs(got[(y * 7 + x) * 16 + o] - sum) < 1e-6);
      }

  // A grey image through the adapted model = the same image as R = G = B through the RGB model.
  const rgb = tinyDenseNet(modelConfig());
  loadTorchvisionStateDict(rgb, weights);
  const [h, wd] = fixture.input_hwc;
  const g = tf.tensor4d(seededValues(h * wd, 77), [1, h, wd, 1]);
  const g3 = tf.tile(g, [1, 1, 1, 3]);
  const a = (grey.predict(g) as tf.Tensor).dataSync();
  const b = (rgb.predict(g3) as tf.Tensor).dataSync();
  assert.ok(maxAbsDiff(a, b) < 1e-4, `grey vs replicated RGB: ${maxAbsDiff(a, b)}`);
});

test('inChannels = 4: channels cycle and are rescaled by 3/4; adaptation can be turned off', () => {
  const four = tinyDenseNet(modelConfig({ inputShape: [fixture.input_hwc[0], fixture.input_hwc[1], 4] }));
  loadTorchvisionStateDict(four, weights);
  const w = weights.read('features.conv0.weight');
  const got = four.getLayer('stem_conv').getWeights()[0].dataSync();
  for (let o = 0; o < 16; o += 5)
    for (let c = 0; c < 4; c++) {
      const expected = w[((o * 3 + (c % 3)) * 7 + 2) * 7 + 3] * 0.75;
      assert.ok(Math.abs(got[((2 * 7 + 3) * 4 + c) * 16 + o] - expected) < 1e-7);
    }
  const err = problemsOf(() => loadTorchvisionStateDict(tinyDenseNet(modelConfig({ inputShape: [64, 48, 4] })), weights, { adaptInputChannels: false }));
  assert.match(err.message, /tensor 'features\.conv0\.weight': the model \(weight 'stem_conv\/kernel'\) needs \[16,4,7,7\] but the file has \[16,3,7,7\]/);
});

test('adaptInputChannels is the only place channels change: the helper on its own', () => {
  const data = Float32Array.from([1, 2, 3, 10, 20, 30]); // O=2, I=3, 1x1
  assert.deepEqual(adaptInputChannels(data, [2, 3, 1, 1], 1), Float32Array.from([6, 60]));
  assert.deepEqual(adaptInputChannels(data, [2, 3, 1, 1], 2), Float32Array.from([1.5, 3, 15, 30]));
});

test('legacy torchvision keys (norm.1) and a DataParallel module. prefix are accepted', () => {
  const sd = new Map<string, FloatTensor>();
  for (const [k, v] of stateDict()) sd.set('module.' + k.replace(/(denselayer\d+\.(?:norm|conv))([12])\./, '$1.$2.'), v);
  assert.ok(sd.has('module.features.denseblock1.denselayer1.norm.1.weight'));
  const model = tinyDenseNet(modelConfig());
  const report = loadTorchvisionStateDict(model, stateDictFromTensors(sd));
  assert.equal(report.loaded.length, model.weights.length);
});

test('tfjs name suffixes (_1) from a second model with the same names do not matter', () => {
  tinyDenseNet(modelConfig());
  const second = tinyDenseNet(modelConfig());
  assert.ok(second.weights.some((w) => /_\d+$/.test(w.name)), 'tfjs renamed some variables');
  assert.equal(loadTorchvisionStateDict(second, weights).loaded.length, second.weights.length);
});

test('a model whose weights follow no torchvision name is refused, naming them', async () => {
  const input = tf.input({ shape: [4] });
  const out = tf.layers.dense({ units: 2, name: 'head' }).apply(input) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out, name: 'other' });
  await assert.rejects(() => exportTorchvisionStateDict(model), /model 'other' has weights with no torchvision DenseNet counterpart: head\/kernel, head\/bias/);
});
