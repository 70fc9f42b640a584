// Stopping a run through the real CLI in child processes: Ctrl-C acts within a step even in a long
// epoch, a second Ctrl-C never leaves the run without its checkpoint, and a second trainer on the
// same run folder is refused while the first one lives.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PAUSE_ENV, readCheckpointState } from '../src/train/checkpoint';
import { LOCK_FILE } from '../src/train/run-lock';
import { tempDir } from './data-fixtures';
import {
  checkpointWeights, differingWeights, exitOf, runCli, spawnCli, stderrErrorLines, TINY_ARGS, TINY_MODEL, waitForOutput, writeTinyFashion, collectOutput,
} from './train-fixtures';

const tmp = tempDir('train-interrupt');
/** 2000 images in batches of 4: an epoch of 500 steps, so Ctrl-C must not wait for its end. */
const longData = join(tmp.dir, 'long');
const shortData = join(tmp.dir, 'short');

const trainArgs = (data: string, out: string, maxSteps: number, extra: string[] = []) => [
  'train', TINY_MODEL, ...TINY_ARGS, '--dataset', 'fashion-mnist', '--data', data, '--batch', '4', '--epochs', '1',
  '--max-steps', String(maxSteps), '--log-every', '1', '--drop-rate', '0.2', '--out', out, ...extra,
];


before(() => {
  mkdirSync(longData);
  mkdirSync(shortData);
  writeTinyFashion(longData, 2000, 10, 8);
  writeTinyFashion(shortData, 24, 10, 8);
});
after(() => tmp.cleanup());

test('Ctrl-C in the middle of a 500-step epoch stops within seconds, and --resume ends like an uninterrupted run', async () => {
  const out = join(tmp.dir, 'long-sigint');
  const child = spawnCli(trainArgs(longData, out, 400));
  const seen = collectOutput(child);
  await waitForOutput(child, 'stdout', /step 3\/400/);
  const sent = Date.now();
  child.kill('SIGINT');
  const exit = await exitOf(child);
  const seconds = (Date.now() - sent) / 1000;
  assert.equal(exit.code, 130, seen.stderr);
  assert.ok(seconds < 15, `exited ${seconds.toFixed(1)} s after Ctrl-C`);
  const step = Number(/interrupted at step (\d+)/.exec(seen.stdout)?.[1]);
  assert.ok(step >= 3 && step < 100, seen.stdout);
  assert.equal(readCheckpointState(out).state.position.step, step);

  const resumed = runCli(trainArgs(longData, out, step + 2, ['--resume']));
  assert.equal(resumed.status, 0, resumed.stderr);
  const reference = join(tmp.dir, 'long-reference');
  const straight = runCli(trainArgs(longData, reference, step + 2));
  assert.equal(straight.status, 0, straight.stderr);
  assert.deepEqual(differingWeights(checkpointWeights(join(out, 'last')), checkpointWeights(join(reference, 'last'))), []);
});

/** Starts a run that pauses inside a checkpoint write, then presses Ctrl-C twice there. */
async function twoCtrlCsDuring(pause: string, out: string): Promise<{ code: number | null; stderr: string }> {
  const child = spawnCli(trainArgs(shortData, out, 6, ['--checkpoint-every', '2']), { [PAUSE_ENV]: pause });
  const seen = collectOutput(child);
  await waitForOutput(child, 'stderr', `paused at ${pause.replace('@', ' (step ')})`);
  child.kill('SIGINT');
  await waitForOutput(child, 'stdout', /Ctrl-C: finishing this step/);
  child.kill('SIGINT');
  const exit = await exitOf(child);
  return { code: exit.code, stderr: seen.stderr };
}

test('Ctrl-C twice while the first checkpoint is swapped in: the write completes, then the process quits with it', async () => {
  const out = join(tmp.dir, 'twice-first');
  const { code, stderr } = await twoCtrlCsDuring('swapping@2', out);
  assert.equal(code, 130, stderr);
  const { dir, state } = readCheckpointState(out);
  assert.equal(state.position.step, 2);
  assert.match(stderr, new RegExp(`second Ctrl-C: quitting; the checkpoint of step 2 in ${dir} is kept`));
  const resumed = runCli(trainArgs(shortData, out, 6, ['--resume']));
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.equal(readCheckpointState(out).state.position.step, 6);
});

test('Ctrl-C twice while a later checkpoint is written: it is abandoned cleanly and the previous one kept', async () => {
  const out = join(tmp.dir, 'twice-later');
  const { code, stderr } = await twoCtrlCsDuring('writing@4', out);
  assert.equal(code, 130, stderr);
  assert.equal(readCheckpointState(out).state.position.step, 2);
  assert.match(stderr, /second Ctrl-C: quitting; the checkpoint of step 2 in .*last is kept/);
  assert.deepEqual(readdirSync(out).filter((n) => n.startsWith('.tmp-')), [], 'no half-written folder left behind');
});

test('a second trainer on the same --out is refused naming the first; a dead trainer\'s lock is taken over', async () => {
  const out = join(tmp.dir, 'locked');
  const first = spawnCli(trainArgs(longData, out, 400));
  await waitForOutput(first, 'stdout', /step 1\/400/);
  const second = runCli(trainArgs(longData, out, 2));
  assert.equal(second.status, 1);
  const errors = stderrErrorLines(second.stderr);
  assert.equal(errors.length, 1, second.stderr);
  assert.match(errors[0], new RegExp(`${out} is being trained by another process \\(pid ${first.pid}, .*${LOCK_FILE}\\)`));
  first.kill('SIGKILL');
  await exitOf(first);
  assert.ok(existsSync(join(out, LOCK_FILE)), 'the killed trainer left its lock');
  const third = runCli(trainArgs(longData, out, 2));
  assert.equal(third.status, 0, third.stderr);
  assert.ok(!existsSync(join(out, LOCK_FILE)), 'released at the end');
});
