// Resume equality: N steps in one go, or k steps, a stop, and N - k more from the checkpoint,
// give bit-identical weights, optimizer state and logged losses (dropout on, so its random
// state must be restored too).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { init } from '../src/backend';
import { FashionMnist } from '../src/data/fashion-mnist';
import { readCheckpointState, readOptimizerSlots } from '../src/train/checkpoint';
import { dataSpecFor } from '../src/train/data-spec';
import { silentReporter, Reporter, MetricsRecord } from '../src/train/progress';
import { resolveConfig, TrainConfig } from '../src/train/recipes';
import { train, StopSignal, TrainResult } from '../src/train/trainer';
import { tempDir } from './data-fixtures';
import { checkpointWeights, differingWeights, tinySpec, writeTinyFashion } from './train-fixtures';

const tmp = tempDir('train-resume');
const data = join(tmp.dir, 'data');

before(async () => {
  await init('wasm', { log: null });
  require('fs').mkdirSync(data);
  writeTinyFashion(data, 24, 10, 8);
});
after(() => tmp.cleanup());

/** 24 images, batch 4: 6 steps per epoch; 2 epochs planned = 12 steps. */
function config(overrides: Partial<TrainConfig> = {}): TrainConfig {
  return resolveConfig('densenet-cifar', { batchSize: 4, epochs: 2, logEvery: 1, seed: 3, ...overrides });
}

async function run(
  out: string, cfg: TrainConfig, opts: { resume?: boolean; reporter?: Reporter; stop?: StopSignal; dropRate?: number } = {},
): Promise<TrainResult> {
  const dataset = new FashionMnist({ dir: data });
  const model = tinySpec(dataset, { dropRate: opts.dropRate ?? 0.2 });
  return train({
    model, dataset, config: cfg, data: dataSpecFor(dataset, { dir: data }), out,
    resume: opts.resume ? readCheckpointState(out) : undefined, reporter: opts.reporter ?? silentReporter, stop: opts.stop,
  });
}

function records(out: string): MetricsRecord[] {
  return readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
}

async function assertSameRun(a: string, b: string): Promise<void> {
  const diff = differingWeights(checkpointWeights(join(a, 'last')), checkpointWeights(join(b, 'last')));
  assert.deepEqual(diff, [], 'weights (BatchNorm statistics included) must be bit-identical');
  const sa = await readOptimizerSlots(join(a, 'last'));
  const sb = await readOptimizerSlots(join(b, 'last'));
  for (const [k, v] of sa) assert.deepEqual(Array.from(sb.get(k)!.data), Array.from(v.data), `momentum slot ${k}`);
  const stA = readCheckpointState(a).state;
  const stB = readCheckpointState(b).state;
  assert.deepEqual(stB.position, stA.position);
  assert.deepEqual(stB.rng, stA.rng);
  // The stopped run also evaluated where it stopped; every record of the reference must be there, the same.
  const key = (r: MetricsRecord) => JSON.stringify([r.type, r.step, r.loss]);
  const inB = new Set(records(b).map(key));
  const missing = records(a).filter((r) => r.type !== 'summary' && !inB.has(key(r)));
  assert.deepEqual(missing, [], 'metrics.jsonl: the same losses at the same steps');
}

let reference: string;

test('uninterrupted reference run: 9 steps across an epoch boundary, with evaluation and checkpoints', async () => {
  reference = join(tmp.dir, 'reference');
  const r = await run(reference, config({ maxSteps: 9 }));
  assert.equal(r.status, 'completed');
  assert.deepEqual(r.position, { step: 9, epoch: 1, batch: 3 });
  const recs = records(reference);
  const evals = recs.filter((x) => x.type === 'eval');
  assert.deepEqual(evals.map((e) => e.step), [6, 9], 'evaluated after epoch 1 and where --max-steps stopped');
  assert.ok(evals.every((e) => typeof e.loss === 'number' && typeof (e.metrics as Record<string, number>).top1 === 'number'));
  const trains = recs.filter((x) => x.type === 'train');
  assert.deepEqual(trains.map((t) => t.step), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.ok(trains.every((t) => Number.isFinite(t.loss) && typeof t.epoch === 'number'));
  // Step schedule over the 12 planned steps: lr / 10 from step 6 (0-based) on, i.e. for the records of steps 7-9.
  const expectedLr = [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01];
  trains.forEach((t, i) => assert.ok(Math.abs((t.lr as number) - expectedLr[i]) < 1e-12, `lr of step ${t.step}: ${t.lr}`));
  assert.equal(recs[recs.length - 1].type, 'summary');
  const state = readCheckpointState(reference).state;
  assert.deepEqual(state.model.inputShape, [8, 8, 1], 'the model was built for the data: 8x8x1');
  assert.equal(state.model.numClasses, 10);
  assert.equal(state.model.depth, 10);
  assert.equal(state.totalSteps, 12, 'the schedule spans the 2 planned epochs, not --max-steps');
});

test('4 steps, stop (--max-steps), resume to 9: identical weights, optimizer slots, dropout state and losses', async () => {
  const out = join(tmp.dir, 'split-max-steps');
  const first = await run(out, config({ maxSteps: 4 }));
  assert.equal(first.position.step, 4);
  const second = await run(out, config({ maxSteps: 9 }), { resume: true });
  assert.equal(second.position.step, 9);
  await assertSameRun(reference, out);
});

test('interrupted by a stop request (as Ctrl-C does) after step 5, resumed: identical to the uninterrupted run', async () => {
  const out = join(tmp.dir, 'split-stop');
  const stop: StopSignal = { requested: false };
  const reporter: Reporter = { ...silentReporter, step: (r) => { if (r.step === 5) stop.requested = true; } };
  const first = await run(out, config({ maxSteps: 9 }), { reporter, stop });
  assert.equal(first.status, 'interrupted');
  assert.deepEqual(readCheckpointState(out).state.position, { step: 5, epoch: 0, batch: 5 });
  const second = await run(out, config({ maxSteps: 9 }), { resume: true });
  assert.equal(second.status, 'completed');
  await assertSameRun(reference, out);
});

test('a different seed gives different weights (the comparison above can fail)', async () => {
  const out = join(tmp.dir, 'other-seed');
  await run(out, config({ maxSteps: 9, seed: 4 }));
  assert.notDeepEqual(differingWeights(checkpointWeights(join(reference, 'last')), checkpointWeights(join(out, 'last'))), []);
});

test('fractional epochs: 0.5 of 6 steps per epoch trains 3 steps and evaluates at the end; the best checkpoint is kept', async () => {
  const out = join(tmp.dir, 'half-epoch');
  const r = await run(out, config({ epochs: 0.5 }), { dropRate: 0 });
  assert.deepEqual(r.position, { step: 3, epoch: 0, batch: 3 });
  assert.equal(r.lastEval?.step, 3);
  assert.equal(r.best?.step, 3);
  assert.equal(readCheckpointState(join(out, 'best')).state.position.step, 3);
});

test('--eval-every adds evaluations (with checkpoints) between the epoch ends', async () => {
  const out = join(tmp.dir, 'eval-every');
  await run(out, config({ maxSteps: 9, evalEvery: 4 }), { dropRate: 0 });
  assert.deepEqual(records(out).filter((r) => r.type === 'eval').map((r) => r.step), [4, 6, 8, 9]);
});
