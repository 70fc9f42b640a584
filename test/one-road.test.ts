// One road from a name to a model: the same record and options give the same model whether it is
// built by zoo.create, by the trainer, for eval and predict from a checkpoint, by the planner or
// the CLI; and `densenet train --weights` fine-tunes from trained weights and resumes like any run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import * as zoo from '../src/zoo';
import { FashionMnist } from '../src/data/fashion-mnist';
import { loadCheckpointModel, readCheckpointState } from '../src/train/checkpoint';
import { dataSpecFor } from '../src/train/data-spec';
import { resolveConfig } from '../src/train/recipes';
import { silentReporter } from '../src/train/progress';
import { Trainer } from '../src/train/trainer';
import { specFactory, zooFactory } from '../src/measure/memory';
import { planMemory } from '../src/measure/planner';
import { tempDir } from './data-fixtures';
import { FIXTURES } from './helpers';
import { checkpointWeights, differingWeights, runCli, stderrErrorLines, TINY_ARGS, TINY_MODEL, tinySpec, writeTinyFashion } from './train-fixtures';

const tmp = tempDir('one-road-');
const data = join(tmp.dir, 'fashion');
const data32 = join(tmp.dir, 'fashion32');

before(async () => {
  await init('cpu', { log: null });
  mkdirSync(data);
  mkdirSync(data32);
  writeTinyFashion(data, 16, 8, 8);
  writeTinyFashion(data32, 8, 4, 32);
});
after(() => tmp.cleanup());

const layout = (m: tf.LayersModel) => m.weights.map((w) => `${w.originalName} [${w.shape}]`);

test('zoo.create, the trainer, a checkpoint and the planner build the same model from the same spec', async () => {
  const dataset = new FashionMnist({ dir: data });
  const spec = tinySpec(dataset, { dropRate: 0.1 });
  const created = zoo.create(TINY_MODEL, spec);
  const want = layout(created);
  assert.ok(want.length > 20);
  assert.deepEqual(created.card.spec, spec, 'the model carries the spec it was built from');

  const out = join(tmp.dir, 'run');
  const config = resolveConfig('densenet-cifar', { batchSize: 4, epochs: 1, maxSteps: 1, evalLimit: 4 });
  const trainer = await Trainer.create({ model: spec, dataset, data: dataSpecFor(dataset), config, out, reporter: silentReporter });
  assert.deepEqual(layout(trainer.trainedModel), want, 'the trainer');
  await trainer.run();
  trainer.dispose();

  const { model: fromCheckpoint, state } = await loadCheckpointModel(out);
  assert.deepEqual(state.model, spec, 'the checkpoint records the spec');
  assert.deepEqual(layout(fromCheckpoint), want, 'eval/predict from the checkpoint');
  assert.equal(fromCheckpoint.card.classNames[0], 'T-shirt/top', 'with the training data\'s class names');
  fromCheckpoint.dispose();

  for (const [what, make] of [['specFactory', specFactory(spec)], ['zooFactory', zooFactory(TINY_MODEL, spec)]] as const) {
    for (const efficient of [false, true]) {
      const m = make(efficient);
      assert.deepEqual(layout(m), want, `${what}, ${efficient ? 'efficient' : 'naive'}`);
      m.dispose();
    }
  }
  const plan = await planMemory(TINY_MODEL, { ...spec, batch: 2, budgetBytes: 1e8 });
  assert.deepEqual(plan.input, spec.inputShape);

  const summary = runCli(['summary', TINY_MODEL, ...TINY_ARGS, '--drop-rate', '0.1', '--input', '8x8x1', '--json']);
  assert.equal(summary.status, 0, summary.stderr);
  assert.equal(JSON.parse(summary.stdout).totalParams, zoo.countTrainableParams(created), 'densenet summary with the same flags');
  created.dispose();
});

test('options that do not apply to a model, or that contradict each other, are one clear error', () => {
  assert.throws(() => zoo.resolve('fc-densenet56', { depth: 40 }), /fc-densenet56: 'depth' apply to DenseNet models, not FC-DenseNet/);
  assert.throws(() => zoo.resolve('densenet121', { stemNorm: true }), /'stemNorm' apply to the CIFAR DenseNets/);
  assert.throws(() => zoo.resolve('densenet-bc-100-k12', { depth: 40, blockLayers: [6, 6, 6] }), /give 'depth' or 'blockLayers', not both/);
  assert.throws(() => zoo.resolve('densenet-bc-100-k12', { depth: 41 }), /depth 41 does not give whole blocks; DenseNet-BC depth is 6 x \(layers per block\) \+ 4/);
  assert.throws(() => zoo.resolve('densenet121', { blockLayers: [6, 0] }), /blockLayers must be a non-empty list of positive integers, got \[6,0\]/);
  assert.throws(() => zoo.resolve('densenet121', { growthRate: 2.5 }), /growthRate must be a positive integer, got 2.5/);
  const bc = zoo.resolve('densenet-bc-100-k12', { depth: 40, growthRate: 24 });
  assert.deepEqual(bc.arch.family === 'densenet' && [bc.arch.blockLayers, bc.arch.stemChannels], [[6, 6, 6], 48], 'BC stem follows 2k');
  const stemNorm = zoo.create('densenet-bc-100-k12', { depth: 10, stemNorm: true });
  assert.ok(stemNorm.getLayer('stem_norm') && stemNorm.getLayer('stem_relu'), 'a BN-ReLU after the CIFAR stem conv');
  stemNorm.dispose();
});

const fineTune = (out: string, extra: string[]) => [
  'train', 'densenet121', '--growth', '8', '--block-layers', '2,3,2,2', '--stem-channels', '16',
  '--weights', join(FIXTURES, 'tiny-densenet.safetensors'), '--dataset', 'fashion-mnist', '--data', data32,
  '--batch', '4', '--epochs', '2', '--lr', '0.01', '--log-every', '1', '--out', out, ...extra,
];

test('densenet train --weights: fine-tunes from torchvision-layout weights, records them, and resumes exactly', () => {
  const whole = join(tmp.dir, 'whole');
  const r = runCli(fineTune(whole, ['--freeze-backbone']));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /fine-tuned from .*tiny-densenet\.safetensors, backbone frozen/);
  const { state } = readCheckpointState(whole);
  assert.equal(state.initialWeights?.source, join(FIXTURES, 'tiny-densenet.safetensors'));
  assert.equal(state.initialWeights?.headLoaded, true, 'ten classes in the file and in Fashion-MNIST: the head loads too');
  assert.deepEqual(state.model.blockLayers, [2, 3, 2, 2]);

  const split = join(tmp.dir, 'split');
  assert.equal(runCli(fineTune(split, ['--freeze-backbone', '--max-steps', '2'])).status, 0);
  const resumed = runCli(fineTune(split, ['--freeze-backbone', '--resume', '--max-steps', '4']));
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.deepEqual(differingWeights(checkpointWeights(join(whole, 'last')), checkpointWeights(join(split, 'last'))), [],
    'stopping at step 2 and resuming gives the weights of the uninterrupted run');

  const refused = runCli([...fineTune(split, ['--resume']).filter((a) => !a.endsWith('.safetensors') && a !== '--weights'),
    '--weights', 'imagenet']);
  assert.notEqual(refused.status, 0);
  assert.match(stderrErrorLines(refused.stderr)[0], /--weights imagenet differs from the run's .*tiny-densenet\.safetensors/);
  const noWeights = runCli(['train', TINY_MODEL, ...TINY_ARGS, '--dataset', 'fashion-mnist', '--data', data, '--freeze-backbone', '--out', join(tmp.dir, 'x')]);
  assert.match(stderrErrorLines(noWeights.stderr)[0], /--freeze-backbone, --backbone-lr-mult and --fresh-head fine-tune trained weights: give --weights too/);
});
