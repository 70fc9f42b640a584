// Data-parallel training over c10d/Gloo on loopback, through the real CLI and launcher: the
// communicator's gradient sums, synchronised BatchNorm against one process on the global batch,
// a rank killed mid-run, Ctrl-C on the launcher, and resuming with the same or another world size.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { communicatorStatus } from '../src/distributed/communicator';
import { freePort } from '../src/distributed/launcher';
import { readCheckpointState } from '../src/train/checkpoint';
import { tempDir } from './data-fixtures';
import { maxRelativeErrorOf } from './helpers';
import {
  checkpointWeights, exitOf, runCli, spawnCli, TINY_ARGS, TINY_MODEL, waitForOutput, writeTinyFashion, collectOutput,
} from './train-fixtures';

const status = communicatorStatus();
const skip = status.available ? false : `the c10d communicator is not built (${status.reason.split(';')[0]})`;

const tmp = tempDir('data-parallel');
const data = join(tmp.dir, 'data');
const longData = join(tmp.dir, 'long');

const trainArgs = (dir: string, out: string, maxSteps: number, extra: string[] = []) => [
  'train', TINY_MODEL, ...TINY_ARGS, '--dataset', 'fashion-mnist', '--data', dir, '--batch', '16', '--epochs', '3',
  '--max-steps', String(maxSteps), '--log-every', '1', '--drop-rate', '0', '--eval-limit', '10', '--out', out, ...extra,
];

/** Largest relative difference over all weights of two checkpoints (relative to each weight's largest value). */
function weightsDifference(a: string, b: string): number {
  const x = checkpointWeights(join(a, 'last'));
  const y = checkpointWeights(join(b, 'last'));
  assert.deepEqual([...x.keys()].sort(), [...y.keys()].sort());
  return Math.max(...[...x.keys()].map((k) => maxRelativeErrorOf(x.get(k)!, y.get(k)!, 1e-3)));
}


/** Exit of a process once its output is read to the end (its workers write to the same pipes). */
function closed(child: ReturnType<typeof spawnCli>): Promise<{ code: number | null }> {
  return new Promise((r) => child.once('close', (code) => r({ code })));
}

function workerPids(launcherOutput: string): Map<number, number> {
  const m = /started ((?:rank \d+ pid \d+(?:, )?)+)/.exec(launcherOutput);
  assert.ok(m, launcherOutput);
  return new Map([...m[1].matchAll(/rank (\d+) pid (\d+)/g)].map((r) => [Number(r[1]), Number(r[2])]));
}

before(() => {
  mkdirSync(data);
  mkdirSync(longData);
  writeTinyFashion(data, 64, 10, 8);
  writeTinyFashion(longData, 4000, 10, 8);
});
after(() => tmp.cleanup());

test('without --sync-bn the summed gradients are the mean of the two ranks\' gradients, the same on both', { skip }, async () => {
  const port = await freePort();
  const worker = join(__dirname, 'data-parallel-worker.js');
  const outs = [0, 1].map((r) => join(tmp.dir, `grads-${r}.json`));
  const runs = [0, 1].map((rank) => spawn(process.execPath, [worker, outs[rank], 'wasm'], {
    env: { ...process.env, RANK: String(rank), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) }, stdio: 'inherit',
  }));
  const exits = await Promise.all(runs.map(exitOf));
  assert.deepEqual(exits.map((e) => e.code), [0, 0]);
  const [a, b] = outs.map((f) => JSON.parse(readFileSync(f, 'utf8')) as { reduced: number[]; rank0: number[]; rank1: number[]; samples: number });
  const mean = a.rank0.map((g, i) => (g + a.rank1[i]) / 2);
  assert.ok(a.reduced.length > 1000);
  assert.ok(maxRelativeErrorOf(a.reduced, mean) < 1e-6, `reduced vs mean: ${maxRelativeErrorOf(a.reduced, mean)}`);
  assert.ok(maxRelativeErrorOf(a.rank0, a.rank1) > 1e-3, 'the two shards give different gradients');
  assert.deepEqual(a.reduced, b.reduced, 'every rank holds the same sum');
  assert.equal(a.samples, 8, 'the figures are summed too: 4 + 4 samples');
});

test('--sync-bn: 2 ranks x batch 8 train as 1 process x batch 16 for 10 steps; without it they do not', { skip }, () => {
  const single = join(tmp.dir, 'single');
  const synced = join(tmp.dir, 'synced');
  const local = join(tmp.dir, 'local');
  for (const [out, extra] of [[single, []], [synced, ['--nproc', '2', '--sync-bn']], [local, ['--nproc', '2']]] as const) {
    const r = runCli(trainArgs(data, out, 10, [...extra]));
    assert.equal(r.status, 0, r.stdout + r.stderr);
  }
  assert.equal(readCheckpointState(synced).state.position.step, 10);
  const syncedDiff = weightsDifference(single, synced);
  assert.ok(syncedDiff < 1e-5, `synchronised BatchNorm: weights differ by ${syncedDiff}`);
  assert.ok(weightsDifference(single, local) > 1e-4, 'per-rank BatchNorm statistics change the run');
  const logged = readFileSync(join(synced, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(logged.filter((r) => r.type === 'train').length, 10, 'rank 0 alone writes the metrics');
});

test('a rank killed with SIGKILL stops the run naming it, keeps the last checkpoint, and --resume goes on', { skip }, async () => {
  const out = join(tmp.dir, 'killed');
  const child = spawnCli(trainArgs(longData, out, 2000, ['--nproc', '2', '--checkpoint-every', '5', '--eval-every', '1000']));
  const seen = collectOutput(child);
  await waitForOutput(child, 'stdout', /step 12\//);
  const pids = workerPids(seen.stdout);
  const killed = Date.now();
  const exited = closed(child);
  process.kill(pids.get(1)!, 'SIGKILL');
  const exit = await exited;
  const seconds = (Date.now() - killed) / 1000;
  const output = seen.stdout + seen.stderr;
  assert.equal(exit.code, 1, output);
  assert.ok(seconds < 30, `the launcher took ${seconds.toFixed(1)} s to stop`);
  assert.match(output, new RegExp(`rank 1 \\(pid ${pids.get(1)}\\) was killed by SIGKILL`));
  assert.match(output, new RegExp(`allreduce on rank 0 of 2 failed: .*rank 1 \\(pid ${pids.get(1)}\\) has stopped`));
  const { state } = readCheckpointState(out);
  assert.ok(state.position.step >= 10 && state.position.step % 5 === 0, `checkpoint at step ${state.position.step}`);
  assert.deepEqual(readdirSync(join(out, 'last')).filter((f) => f.includes('.tmp')), [], 'no half-written file');

  const resumed = runCli(trainArgs(longData, out, state.position.step + 3, ['--nproc', '2', '--resume']));
  assert.equal(resumed.status, 0, resumed.stdout + resumed.stderr);
  assert.match(resumed.stdout, new RegExp(`resuming at step ${state.position.step}`));
  assert.equal(readCheckpointState(out).state.position.step, state.position.step + 3);
});

test('Ctrl-C on the launcher stops every rank after the same step with one checkpoint (exit 130)', { skip }, async () => {
  const out = join(tmp.dir, 'interrupted');
  const child = spawnCli(trainArgs(longData, out, 2000, ['--nproc', '2']));
  const seen = collectOutput(child);
  await waitForOutput(child, 'stdout', /step 4\//);
  const exited = closed(child);
  child.kill('SIGINT');
  const exit = await exited;
  assert.equal(exit.code, 130, seen.stdout + seen.stderr);
  const step = Number(/interrupted at step (\d+)/.exec(seen.stdout)?.[1]);
  assert.ok(step >= 4, seen.stdout);
  assert.equal(readCheckpointState(out).state.position.step, step);
  assert.equal(seen.stdout.match(/interrupted at step/g)?.length, 1, 'rank 0 alone reports');
});

test('resuming a 2-rank --sync-bn run in one process continues it exactly (another world size, the same global batch)', { skip }, () => {
  const out = join(tmp.dir, 'regrouped');
  const reference = join(tmp.dir, 'regrouped-reference');
  const first = runCli(trainArgs(data, out, 5, ['--nproc', '2', '--sync-bn']));
  assert.equal(first.status, 0, first.stdout + first.stderr);
  const second = runCli(trainArgs(data, out, 10, ['--resume']));
  assert.equal(second.status, 0, second.stdout + second.stderr);
  const straight = runCli(trainArgs(data, reference, 10));
  assert.equal(straight.status, 0, straight.stderr);
  const diff = weightsDifference(out, reference);
  assert.ok(diff < 1e-5, `weights differ by ${diff}`);
});

test('two launchers as two machines (--nnodes 2 --node-rank 0|1 --master) train as one process on the global batch with --sync-bn', { skip }, async () => {
  const out = join(tmp.dir, 'two-nodes');
  const reference = join(tmp.dir, 'two-nodes-reference');
  const master = `127.0.0.1:${await freePort()}`;
  const nodes = [0, 1].map((rank) => spawnCli(trainArgs(data, out, 6, ['--nproc', '1', '--nnodes', '2', '--node-rank', String(rank), '--master', master, '--sync-bn'])));
  const seen = nodes.map((n) => collectOutput(n));
  const exits = await Promise.all(nodes.map(closed));
  assert.deepEqual(exits.map((e) => e.code), [0, 0], seen.map((x) => x.stdout + x.stderr).join('\n---\n'));
  assert.match(seen[0].stdout, /2 ranks \(1 here/);
  const straight = runCli(trainArgs(data, reference, 6));
  assert.equal(straight.status, 0, straight.stderr);
  const diff = weightsDifference(out, reference);
  assert.ok(diff < 1e-5, `weights differ by ${diff}`);
});

test('without the communicator a multi-process run fails at once, saying what to install', () => {
  const out = join(tmp.dir, 'no-addon');
  const r = runCli(trainArgs(data, out, 2, ['--nproc', '2']), { DENSENET_C10D_ADDON: '/nonexistent/densenet_c10d.node' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /libgloo-dev/);
  assert.ok(!existsSync(join(out, 'last')), 'nothing was trained');
});
