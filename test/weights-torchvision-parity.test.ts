// torchvision parity with the zoo's DenseNet (densenet121's record with the fixture's options), on the committed fixture
// (scripts/make-torchvision-fixtures.py): same weights and input -> same logits within 1e-4.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'path';
import * as tf from '../src/tf';
import { init, webgpuProbe } from '../src/backend';
import * as zoo from '../src/zoo';
import { readSafetensors } from '../src/weights/safetensors';
import { exportTorchvisionStateDict, loadTorchvisionSafetensors } from '../src/weights/torchvision';
import { FIXTURES, TinyDensenetFixture, readTinyDensenetFixture } from './helpers';



let cfg: TinyDensenetFixture;

function build(overrides: { numClasses?: number } = {}): tf.LayersModel {
  assert.equal(cfg.bn_size, 4, 'the fixture uses DenseNet-B bottlenecks (bn_size 4)');
  return zoo.create('densenet121', {
    growthRate: cfg.growth_rate, blockLayers: cfg.block_config, stemChannels: cfg.num_init_features,
    inputShape: cfg.input_hwc, numClasses: overrides.numClasses ?? cfg.num_classes,
  });
}

before(async () => {
  cfg = await readTinyDensenetFixture();
});

for (const backend of ['cpu', 'wasm', 'webgpu']) {
  test(`zoo DenseNet on ${backend} gives torchvision's logits within 1e-4`, async (t) => {
    if (backend === 'webgpu') {
      const probe = await webgpuProbe();
      if (!probe.adapter) return t.skip(`no WebGPU adapter here: ${probe.reason}`);
    }
    await init(backend, { log: null });
    const model = build();
    const trainable = model.trainableWeights.reduce((n, w) => n + (w.shape as number[]).reduce((a, b) => a * b, 1), 0);
    assert.equal(trainable, cfg.trainable_params, 'same trainable parameter count as torchvision');
    const report = await loadTorchvisionSafetensors(model, path.join(FIXTURES, 'tiny-densenet.safetensors'));
    assert.equal(report.loaded.length, model.weights.length);
    const io = await readSafetensors(path.join(FIXTURES, 'tiny-densenet-io.safetensors'));
    const x = tf.tensor(io.read('input_nhwc'), io.shape('input_nhwc'));
    const y = model.predict(x) as tf.Tensor;
    assert.deepEqual(y.shape, io.shape('logits'));
    const got = await y.data();
    const want = io.read('logits');
    let diff = 0;
    for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(got[i] - want[i]));
    assert.ok(diff < 1e-4, `max |zoo - torchvision| = ${diff}`);
    tf.dispose([x, y]);
  });
}

test('export from the zoo model reproduces the torchvision state dict exactly', async () => {
  await init('cpu', { log: null });
  const model = build();
  const file = await readSafetensors(path.join(FIXTURES, 'tiny-densenet.safetensors'));
  await loadTorchvisionSafetensors(model, path.join(FIXTURES, 'tiny-densenet.safetensors'));
  const exported = await exportTorchvisionStateDict(model);
  assert.deepEqual([...exported.keys()].sort(), file.names().filter((n) => !n.endsWith('num_batches_tracked')).sort());
  for (const [key, t] of exported) assert.deepEqual(t.data, file.read(key), key);
});

test('ImageNet-shaped weights into a model with another class count keep everything but the classifier', async () => {
  await init('cpu', { log: null });
  const model = build({ numClasses: 3 });
  const fresh = model.getLayer('classifier').getWeights().map((w) => w.dataSync().slice());
  const report = await loadTorchvisionSafetensors(model, path.join(FIXTURES, 'tiny-densenet.safetensors'), { skipClassifier: 'auto' });
  assert.deepEqual(report.skipped.sort(), ['classifier/bias', 'classifier/kernel']);
  assert.equal(report.loaded.length, model.weights.length - 2);
  model.getLayer('classifier').getWeights().forEach((w, i) => assert.deepEqual(w.dataSync(), fresh[i]));
});
