// Checkpoints that survive a crash, through the real CLI in child processes: a process killed
// while it writes a checkpoint (paused there by a test hook, then SIGKILLed) leaves the previous
// checkpoint loadable and --resume finishes the run with the weights of an uninterrupted one;
// Ctrl-C writes a checkpoint and exits 130; a NaN loss stops with the step named.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { init } from '../src/backend';
import type { Batch, BatchOptions, Dataset, Split } from '../src/data/dataset';
import { FashionMnist } from '../src/data/fashion-mnist';
import { PAUSE_ENV, readCheckpointState } from '../src/train/checkpoint';
import { dataSpecFor } from '../src/train/data-spec';
import { resolveConfig } from '../src/train/recipes';
import { NonFiniteLossError, train } from '../src/train/trainer';
import { tempDir } from './data-fixtures';
import {
  checkpointWeights, differingWeights, exitOf, runCli, spawnCli, stderrErrorLines, TINY_ARGS, TINY_MODEL, waitForOutput,
  tinySpec, writeTinyFashion,
} from './train-fixtures';

const tmp = tempDir('train-ckpt');
const data = join(tmp.dir, 'data');

/** 24 images, batch 4: 6 steps per epoch; a checkpoint every 2 steps; stop at 6. */
const trainArgs = (out: string, extra: string[] = []) => [
  'train', TINY_MODEL, ...TINY_ARGS, '--dataset', 'fashion-mnist', '--data', data, '--batch', '4', '--epochs', '2',
  '--max-steps', '6', '--checkpoint-every', '2', '--log-every', '1', '--drop-rate', '0.2', '--out', out, ...extra,
];

let reference: Map<string, Float32Array>;

before(async () => {
  await init('wasm', { log: null });
  mkdirSync(data);
  writeTinyFashion(data, 24, 10, 8);
});
after(() => tmp.cleanup());

test('an uninterrupted CLI run to step 6 (the reference)', () => {
  const out = join(tmp.dir, 'reference');
  const r = runCli(trainArgs(out));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /step 6\/6/);
  assert.match(r.stdout, /eval test at step 6/);
  assert.equal(readCheckpointState(out).state.position.step, 6);
  reference = checkpointWeights(join(out, 'last'));
  const again = runCli(trainArgs(out, ['--resume']));
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /the run is already at step 6; nothing to do/);
  assert.deepEqual(differingWeights(checkpointWeights(join(out, 'last')), reference), []);
});

for (const stage of ['writing', 'swapping'] as const) {
  test(`killed while ${stage === 'writing' ? 'writing the new checkpoint' : 'swapping it in'} at step 4: step 2 stays loadable, --resume ends like the uninterrupted run`, async () => {
    const out = join(tmp.dir, `killed-${stage}`);
    const child = spawnCli(trainArgs(out), { [PAUSE_ENV]: `${stage}@4` });
    await waitForOutput(child, 'stderr', `paused at ${stage} (step 4)`);
    child.kill('SIGKILL');
    const exit = await exitOf(child);
    assert.equal(exit.signal, 'SIGKILL');

    const { dir, state } = readCheckpointState(out);
    assert.equal(state.position.step, 2, 'the checkpoint before the interrupted write');
    assert.equal(dir, stage === 'writing' ? join(out, 'last') : join(out, 'last.old'));
    if (stage === 'writing') assert.ok(readdirSync(out).some((n) => n.startsWith('.tmp-last-')), 'the half-written folder is left behind...');

    const resumed = runCli(trainArgs(out, ['--resume']));
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.match(resumed.stdout, /resuming at step 2/);
    assert.ok(!readdirSync(out).some((n) => n.startsWith('.tmp-')), '...and removed by the next run');
    assert.ok(!existsSync(join(out, 'last.old')));
    assert.equal(readCheckpointState(out).state.position.step, 6);
    assert.deepEqual(differingWeights(checkpointWeights(join(out, 'last')), reference), []);
  });
}

test('Ctrl-C (SIGINT) writes a checkpoint and exits 130; --resume continues from it', async () => {
  const out = join(tmp.dir, 'sigint');
  const args = trainArgs(out).map((a, i, all) => (all[i - 1] === '--max-steps' ? '400' : all[i - 1] === '--epochs' ? '100' : a));
  const child = spawnCli(args);
  let stdout = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  await waitForOutput(child, 'stdout', /step 3\/400/);
  child.kill('SIGINT');
  const exit = await exitOf(child);
  assert.equal(exit.code, 130);
  const m = /interrupted at step (\d+)/.exec(stdout);
  assert.ok(m, stdout);
  const step = Number(m[1]);
  assert.ok(step >= 3 && step < 400);
  assert.equal(readCheckpointState(out).state.position.step, step);
  const resumed = runCli(args.map((a, i, all) => (all[i - 1] === '--max-steps' ? String(step + 2) : a)).concat('--resume'));
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.equal(readCheckpointState(out).state.position.step, step + 2);
});

test('a NaN/Inf loss stops training with the step named, non-zero exit, and the last good checkpoint kept', () => {
  const out = join(tmp.dir, 'nan');
  const r = runCli(trainArgs(out, ['--lr', '1e8', '--checkpoint-every', '1', '--max-steps', '12']));
  assert.notEqual(r.status, 0);
  const errors = stderrErrorLines(r.stderr);
  assert.equal(errors.length, 1, r.stderr);
  // The loss (or, first, the weights it is computed from) overflows: either is caught before it is saved.
  const m = /training stopped: (?:the loss is (?:NaN|Infinity|-Infinity) at|the gradients hold .* at|after) step (\d+)\b.*last good checkpoint \(step (\d+)\) is kept in (\S+)\./.exec(errors[0]);
  assert.ok(m, errors[0]);
  const [, failed, kept] = m;
  assert.ok(Number(kept) < Number(failed));
  const { state } = readCheckpointState(out);
  assert.equal(state.position.step, Number(kept));
  for (const [name, values] of checkpointWeights(join(out, 'last'))) assert.ok(values.every(Number.isFinite), `${name} is finite`);
});

/** The dataset with NaN pixels in one training batch: a loss that is fine until that step. */
function withPoisonedBatch(ds: Dataset, poisoned: number): Dataset {
  return Object.assign(Object.create(ds), {
    async *batches(split: Split, opts: BatchOptions): AsyncGenerator<Batch, void, undefined> {
      for await (const b of ds.batches(split, opts)) {
        if (split === 'train' && b.index === poisoned) b.images.fill(NaN);
        yield b;
      }
    },
  }) as Dataset;
}

test('NaN pixels in a batch mid-epoch: stops before updating with them, names the step, keeps the checkpoint of the step before', async () => {
  const out = join(tmp.dir, 'nan-data');
  const dataset = withPoisonedBatch(new FashionMnist({ dir: data }), 3);
  const config = resolveConfig('densenet-cifar', { batchSize: 4, epochs: 1, checkpointEvery: 1, logEvery: 1 });
  const model = tinySpec(dataset);
  await assert.rejects(
    train({ model, dataset, config, data: dataSpecFor(dataset, { dir: data }), out }),
    (err: Error) => {
      assert.ok(err instanceof NonFiniteLossError);
      assert.equal(err.step, 4);
      assert.match(err.message, /^training stopped: (the loss is NaN|the gradients hold NaN or infinite values \(the loss is [^)]*\)) at step 4 \(epoch 1, batch 4 of 6\); the weights were not updated with it and the last good checkpoint \(step 3\) is kept in .*last\./);
      return true;
    },
  );
  assert.equal(readCheckpointState(out).state.position.step, 3);
  for (const [name, values] of checkpointWeights(join(out, 'last'))) assert.ok(values.every(Number.isFinite), `${name} is finite`);
});

test('densenet-cifar without augmentation trains with the paper\'s dropout 0.2 unless --drop-rate says otherwise', () => {
  const withoutDropRate = trainArgs(join(tmp.dir, 'no-augment')).filter((a, i, all) => a !== '--drop-rate' && all[i - 1] !== '--drop-rate');
  const run = (args: string[]) => {
    const out = args[args.indexOf('--out') + 1];
    const r = runCli([...args.map((a, i) => (args[i - 1] === '--max-steps' ? '1' : a)), '--no-augment']);
    assert.equal(r.status, 0, r.stderr);
    return { stdout: r.stdout, dropRate: readCheckpointState(out).state.model.dropRate };
  };
  const paper = run(withoutDropRate);
  assert.match(paper.stdout, /no augmentation: dropout 0.2 after every conv but the stem's, as the DenseNet paper/);
  assert.equal(paper.dropRate, 0.2);
  const explicit = run(trainArgs(join(tmp.dir, 'no-augment-explicit')).map((a, i, all) => (all[i - 1] === '--drop-rate' ? '0' : a)));
  assert.doesNotMatch(explicit.stdout, /no augmentation: dropout/);
  assert.equal(explicit.dropRate, 0);
});
