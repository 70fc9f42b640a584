// Fine-tuning: torchvision-layout weights (the tiny committed fixture, shaped like an ImageNet
// DenseNet) loaded into a model for other classes, then trained through train.train.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'path';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import * as zoo from '../src/zoo';
import { dataSpecFor, readCheckpointState, resolveConfig, silentReporter, train, TrainConfig } from '../src/train';
import { FIXTURES, readTinyDensenetFixture, TinyDensenetFixture } from './helpers';
import { tempDir } from './data-fixtures';
import { colourBlobs } from './memory-dataset';

const WEIGHTS = path.join(FIXTURES, 'tiny-densenet.safetensors');
const tmp = tempDir('densenet-fine-tune-');
let cfg: TinyDensenetFixture;

before(async () => {
  await init('cpu', { log: null });
  cfg = await readTinyDensenetFixture();
});
after(() => tmp.cleanup());

/** densenet121's record with the fixture's (smaller) architecture. */
const fixtureOptions = (): zoo.ModelOptions => ({
  growthRate: cfg.growth_rate, blockLayers: cfg.block_config, stemChannels: cfg.num_init_features, inputShape: cfg.input_hwc,
});

async function loaded(numClasses: number): Promise<zoo.ZooModel> {
  const model = zoo.create('densenet121', { ...fixtureOptions(), numClasses, seed: 5 });
  await zoo.loadWeights(model, WEIGHTS);
  return model;
}

const values = (model: tf.LayersModel, keep: (name: string) => boolean) =>
  new Map(model.weights.filter((w) => keep(w.originalName)).map((w) => [w.originalName, w.read().dataSync().slice()]));
const isHead = (name: string) => name.startsWith('classifier/');
const differing = (a: Map<string, Float32Array | Int32Array | Uint8Array>, b: Map<string, Float32Array | Int32Array | Uint8Array>) =>
  [...a.keys()].filter((k) => a.get(k)!.some((v, i) => v !== b.get(k)![i]));

test('weights for 10 classes into a 3-class model: the backbone is loaded, the head is fresh, and the card says so', async () => {
  const three = await loaded(3);
  const ten = await loaded(cfg.num_classes);
  try {
    assert.deepEqual(three.card.weights, { source: WEIGHTS, format: 'safetensors', headLoaded: false });
    assert.equal(ten.card.weights?.headLoaded, true);
    assert.deepEqual(differing(values(three, (n) => !isHead(n)), values(ten, (n) => !isHead(n))), [], 'same backbone weights');
    const fresh = zoo.create('densenet121', { ...fixtureOptions(), numClasses: 3, seed: 5 });
    assert.deepEqual(differing(values(three, isHead), values(fresh, isHead)), [], 'the head is the seeded fresh one');
    fresh.dispose();
    assert.deepEqual(three.card.classNames, ['class 0', 'class 1', 'class 2']);
    const freshTen = await zoo.load('densenet121', { ...fixtureOptions(), numClasses: cfg.num_classes, seed: 5, weights: WEIGHTS, freshHead: true });
    const seededTen = zoo.create('densenet121', { ...fixtureOptions(), numClasses: cfg.num_classes, seed: 5 });
    assert.equal(freshTen.card.weights?.headLoaded, false, 'freshHead: a head that fits is still left fresh');
    assert.deepEqual(differing(values(freshTen, isHead), values(seededTen, isHead)), []);
    assert.deepEqual(differing(values(freshTen, (n) => !isHead(n)), values(ten, (n) => !isHead(n))), []);
    freshTen.dispose();
    seededTen.dispose();
  } finally {
    three.dispose();
    ten.dispose();
  }
});

function config(overrides: Partial<TrainConfig>): TrainConfig {
  return resolveConfig('densenet-imagenet', { batchSize: 4, epochs: 1, maxSteps: 3, lr: 0.05, logEvery: 1, evalLimit: 4, ...overrides });
}

async function fineTune(name: string, overrides: Partial<TrainConfig>) {
  const dataset = colourBlobs(cfg.input_hwc, 3, { train: 12, test: 4 });
  const model = await loaded(3);
  const before = values(model, () => true);
  const out = path.join(tmp.dir, name);
  const result = await train({ model, dataset, data: dataSpecFor(dataset), config: config(overrides), out, reporter: silentReporter });
  const afterTraining = values(model, () => true);
  return { model, before, after: afterTraining, out, result };
}

test('fine-tuning trains the given model in place; the backbone moves only when it is not frozen', async () => {
  for (const freezeBackbone of [false, true]) {
    const run = await fineTune(`freeze-${freezeBackbone}`, { freezeBackbone });
    try {
      assert.equal(run.result.position.step, 3);
      const moved = differing(run.before, run.after);
      assert.ok(moved.includes('classifier/kernel') && moved.includes('classifier/bias'), 'the head is trained');
      const backboneMoved = moved.filter((n) => !isHead(n));
      if (freezeBackbone) {
        assert.deepEqual(backboneMoved, [], 'frozen: no backbone weight and no BatchNorm statistic changes');
      } else {
        assert.ok(backboneMoved.includes('stem_conv/kernel'), 'the stem conv is trained');
        assert.ok(backboneMoved.some((n) => n.endsWith('moving_mean')), 'BatchNorm statistics follow the new data');
      }
      const { state } = readCheckpointState(path.join(run.out, 'last'));
      assert.deepEqual(state.initialWeights, { source: WEIGHTS, format: 'safetensors', headLoaded: false });
      assert.equal(state.config.freezeBackbone, freezeBackbone);
      assert.deepEqual(state.model.blockLayers, cfg.block_config);
      const y = run.model.predict(tf.zeros([1, ...cfg.input_hwc])) as tf.Tensor;
      assert.deepEqual(y.shape, [1, 3], 'the caller still owns a working model');
      y.dispose();
    } finally {
      run.model.dispose();
    }
  }
});

test('--backbone-lr-mult scales the backbone\'s first update exactly and leaves the head\'s as it is', async () => {
  const full = await fineTune('mult-1', { maxSteps: 1 });
  const tenth = await fineTune('mult-0.1', { maxSteps: 1, backboneLrMult: 0.1 });
  try {
    for (const name of ['stem_conv/kernel', 'classifier/kernel']) {
      const step = (r: typeof full) => Array.from(r.after.get(name)!, (v, i) => v - r.before.get(name)![i]);
      const [a, b] = [step(full), step(tenth)];
      const scale = isHead(name) ? 1 : 0.1;
      const worst = a.reduce((m, v, i) => Math.max(m, Math.abs(b[i] - scale * v)), 0);
      const size = a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      assert.ok(size > 0 && worst <= 1e-4 * size, `${name}: update x${scale}, worst deviation ${worst} of ${size}`);
    }
  } finally {
    full.model.dispose();
    tenth.model.dispose();
  }
});
