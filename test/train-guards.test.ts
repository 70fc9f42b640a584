// What the trainer refuses: an evaluation that is NaN (never "best", the run stops), resuming on
// other data than the run's (a smaller split would otherwise never find its next batch), and a
// report of a run whose metrics hold the nulls that NaN becomes in JSON.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { init } from '../src/backend';
import type { Dataset } from '../src/data/dataset';
import { FashionMnist } from '../src/data/fashion-mnist';
import { readCheckpointState } from '../src/train/checkpoint';
import { dataSpecFor } from '../src/train/data-spec';
import { topKCorrect } from '../src/train/metrics';
import { resolveConfig } from '../src/train/recipes';
import { writeRunReport } from '../src/train/report';
import { NonFiniteLossError, train } from '../src/train/trainer';
import { Reporter, silentReporter } from '../src/train/progress';
import * as tf from '../src/tf';
import * as zoo from '../src/zoo';
import { tempDir, writeFashionMnist } from './data-fixtures';
import { learnableSplit, TINY_MODEL, tinySpec, writeTinyFashion } from './train-fixtures';

const tmp = tempDir('train-guards');
const dirs = { data: join(tmp.dir, 'data'), small: join(tmp.dir, 'small'), other: join(tmp.dir, 'other') };
const config = resolveConfig('densenet-cifar', { batchSize: 4, epochs: 1, maxSteps: 4, logEvery: 1 });

before(async () => {
  await init('wasm', { log: null });
  for (const d of Object.values(dirs)) mkdirSync(d);
  writeTinyFashion(dirs.data, 24, 10, 8);
  writeTinyFashion(dirs.small, 8, 10, 8);
  // Same sizes, other images (another seed).
  writeFashionMnist(dirs.other, { train: learnableSplit(24, 8, 8, 7), test: learnableSplit(10, 8, 8, 2) }, true);
});
after(() => tmp.cleanup());

function run(dataset: Dataset, out: string, dir = dirs.data) {
  return train({ model: tinySpec(dataset), dataset, config, data: dataSpecFor(dataset, { dir }), out });
}

/**
 * A reporter that sets the classifier's bias to NaN after `step`, before the evaluation that follows
 * it: the logits, the loss and the scores of that evaluation are NaN whatever the data. (Poisoned
 * inputs are not reliable: ReLU maps NaN to 0, so whether they reach the logits depends on the weights.)
 */
function poisonAfter(model: zoo.ZooModel, step: number): Reporter {
  return {
    ...silentReporter,
    step: (r) => {
      if (r.step !== step) return;
      const classifier = model.getLayer('classifier');
      const [kernel, bias] = classifier.getWeights();
      classifier.setWeights([kernel, tf.fill(bias.shape, NaN)]);
    },
  };
}

test('a row of NaN scores is never counted correct (NaN > x is false for every x)', () => {
  assert.equal(topKCorrect([NaN, NaN, NaN, 1, 2, 3], [0, 2], 3, 1), 1);
  assert.equal(topKCorrect([0.1, NaN, 0.5], [2], 3, 2), 0);
});

test('a NaN evaluation stops the run with a clear error and is never saved as best', async () => {
  const out = join(tmp.dir, 'nan-eval');
  const dataset = new FashionMnist({ dir: dirs.data });
  const model = zoo.create(TINY_MODEL, { ...tinySpec(dataset), seed: 0 });
  const training = train({ model, dataset, config, data: dataSpecFor(dataset, { dir: dirs.data }), out, reporter: poisonAfter(model, 4) });
  await assert.rejects(training, (err: Error) => {
    assert.ok(err instanceof NonFiniteLossError, err.message);
    assert.match(err.message, /^training stopped: the test evaluation after step 4 gave loss NaN \(top1 0\); these weights are not saved, not as best either, and no checkpoint had been written yet\. Lower the learning rate \(--lr\)\.$/);
    return true;
  });
  assert.ok(!existsSync(join(out, 'best')), 'no best/ checkpoint');
  assert.ok(!existsSync(join(out, 'last')), 'no last/ checkpoint of NaN-scoring weights');
  model.dispose();
});

test('densenet report reads a run whose metrics.jsonl holds nulls (NaN in JSON)', async () => {
  const out = join(tmp.dir, 'report-nulls');
  await run(new FashionMnist({ dir: dirs.data }), out);
  appendFileSync(join(out, 'metrics.jsonl'), JSON.stringify({ type: 'eval', step: 5, epoch: 1, split: 'test', loss: NaN, metrics: { top1: NaN, top5: NaN }, count: 10 }) + '\n');
  const files = writeRunReport(out);
  const report = readFileSync(files.report, 'utf8');
  assert.match(report, /\| 5 \| 1 \| NaN \| NaN \| NaN \|/);
});

test('--resume on a smaller training split is refused (it used to wait forever for the next batch)', { timeout: 60_000 }, async () => {
  const out = join(tmp.dir, 'smaller');
  await run(new FashionMnist({ dir: dirs.data }), out);
  const resume = readCheckpointState(out);
  assert.deepEqual(resume.state.trainData?.sizes, { train: 24, test: 10 });
  const small = new FashionMnist({ dir: dirs.small });
  await assert.rejects(
    train({ model: resume.state.model, dataset: small, config: { ...resume.state.config, maxSteps: 8 }, data: resume.state.data, out, resume }),
    new RegExp(`^Error: cannot resume ${resume.dir} on this fashion-mnist data: its train split has 8 samples, the run's had 24; resume on the data the run was trained on`),
  );
});

test('--resume on other data of the same size is refused by the fingerprint', async () => {
  const out = join(tmp.dir, 'other');
  await run(new FashionMnist({ dir: dirs.data }), out);
  const resume = readCheckpointState(out);
  const other = new FashionMnist({ dir: dirs.other });
  await assert.rejects(
    train({ model: resume.state.model, dataset: other, config: { ...resume.state.config, maxSteps: 8 }, data: resume.state.data, out, resume }),
    /cannot resume .* the first and last training samples differ from the run's \(sha256 [0-9a-f]{12}, the run's [0-9a-f]{12}\)/,
  );
});

test('a changed --lr on resume is said and recorded in the checkpoint', async () => {
  const out = join(tmp.dir, 'lr');
  await run(new FashionMnist({ dir: dirs.data }), out);
  const resume = readCheckpointState(out);
  const notes: string[] = [];
  const reporter = { start() {}, step() {}, evalProgress() {}, eval() {}, note: (t: string) => notes.push(t), stop() {} };
  const dataset = new FashionMnist({ dir: dirs.data });
  await train({ model: resume.state.model, dataset, config: { ...resume.state.config, lr: 0.05, maxSteps: 6 }, data: resume.state.data, out, resume, reporter });
  assert.ok(notes.some((n) => /resuming with changed settings \(recorded in the checkpoint\): .*lr 0\.1 -> 0\.05/.test(n)), notes.join('\n'));
  const { state } = readCheckpointState(out);
  assert.deepEqual(state.configChanges?.find((c) => c.setting === 'lr'), { step: 4, setting: 'lr', from: 0.1, to: 0.05 });
});
