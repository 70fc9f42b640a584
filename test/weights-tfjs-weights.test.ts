import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import { fileSystem } from '../src/weights/file-io';
import { WeightsMismatchError } from '../src/weights/mapping';
import { loadTfjsWeights } from '../src/weights/tfjs-weights';
import { randomiseWeights, seededValues, tinyDenseNet, TinyDenseNetConfig } from './weights-tiny-model';

const BASE: TinyDenseNetConfig = {
  growthRate: 4, blockConfig: [2, 2], numInitFeatures: 8, bnSize: 2, numClasses: 5, inputShape: [32, 32, 3],
};

let savedDir: string;
let saved: tf.LayersModel;

before(async () => {
  await init('cpu', { log: null });
  savedDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'densenet-tfjs-weights-'));
  saved = tinyDenseNet(BASE);
  randomiseWeights(saved, 4);
  await saved.save(fileSystem(savedDir));
});

function values(model: tf.LayersModel): Map<string, Float32Array> {
  return new Map(model.weights.map((w) => [w.originalName, Float32Array.from(w.read().dataSync() as Float32Array)]));
}

test('weights of a saved model.json load into a freshly built model: identical predictions', async () => {
  const model = tinyDenseNet(BASE);
  const report = await loadTfjsWeights(model, path.join(savedDir, 'model.json'));
  assert.equal(report.loaded.length, model.weights.length);
  const x = tf.tensor4d(seededValues(32 * 32 * 3, 8), [1, 32, 32, 3]);
  assert.deepEqual((model.predict(x) as tf.Tensor).dataSync(), (saved.predict(x) as tf.Tensor).dataSync());
});

test('another class count: fails naming the classifier shapes, or keeps the classifier when skipped', async () => {
  const model = tinyDenseNet({ ...BASE, numClasses: 3 });
  await assert.rejects(loadTfjsWeights(model, savedDir), (e: Error) =>
    e instanceof WeightsMismatchError && /wrong shape for tensor 'classifier\/kernel': the model \(weight 'classifier\/kernel'\) needs \[\d+,3\] but the file has \[\d+,5\]/.test(e.message));
  const before = values(model);
  const report = await loadTfjsWeights(model, savedDir, { skipClassifier: 'auto' });
  assert.deepEqual(report.skipped.sort(), ['classifier/bias', 'classifier/kernel']);
  const after = values(model);
  const reference = values(saved);
  for (const [name, v] of after) {
    assert.deepEqual(v, name.startsWith('classifier/') ? before.get(name) : reference.get(name), name);
  }
});

test('one input channel: the stem filters are summed over the saved model\'s channels', async () => {
  const model = tinyDenseNet({ ...BASE, inputShape: [32, 32, 1] });
  const report = await loadTfjsWeights(model, savedDir);
  assert.deepEqual(report.adapted, [{ key: 'stem_conv/kernel', from: [7, 7, 3, 8], to: [7, 7, 1, 8] }]);
  const src = saved.getLayer('stem_conv').getWeights()[0].dataSync();
  const got = model.getLayer('stem_conv').getWeights()[0].dataSync();
  for (let k = 0; k < 49; k++)
    for (let o = 0; o < 8; o++) {
      const sum = src[(k * 3 + 0) * 8 + o] + src[(k * 3 + 1) * 8 + o] + src[(k * 3 + 2) * 8 + o];
      assert.ok(Math.abs(got[k * 8 + o] - sum) < 1e-6);
    }
});

test('another architecture: missing and unexpected weights are named', async () => {
  const model = tinyDenseNet({ ...BASE, blockConfig: [2, 3] });
  await assert.rejects(loadTfjsWeights(model, savedDir), (e: Error) =>
    e instanceof WeightsMismatchError &&
    /missing tensor 'block2_layer3\/norm1\/gamma'/.test(e.message) &&
    /wrong shape for tensor 'final_norm\/gamma'/.test(e.message));
  const smaller = tinyDenseNet({ ...BASE, blockConfig: [2, 1] });
  await assert.rejects(loadTfjsWeights(smaller, savedDir), /unexpected tensor 'block2_layer2\/conv1\/kernel'/);
});
