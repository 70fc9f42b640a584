// The zoo's command line: list, summary, convert, doctor, and clear errors for bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import * as zoo from '../src/zoo';
import { saveTorchvisionSafetensors } from '../src/weights/torchvision';
import { loadLayersModelFromFile } from '../src/weights/file-io';
import { sameValues } from './helpers';

const CLI = path.join(__dirname, '../src/cli/main.js');

function densenet(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, DENSENET_BACKEND: 'wasm' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function failsClearly(r: { status: number | null; stderr: string }, message: RegExp): void {
  assert.equal(r.status, 1);
  assert.match(r.stderr, message);
  assert.ok(!/\n\s+at /.test(r.stderr), `no stack trace:\n${r.stderr}`);
}

test('zoo list --json lists the 14 models with their parameter counts', () => {
  const r = densenet('zoo', 'list', '--json');
  assert.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<{ name: string; params: number; task: string }>;
  assert.equal(rows.length, 14);
  assert.deepEqual(rows.find((x) => x.name === 'fc-densenet103'), { ...rows.find((x) => x.name === 'fc-densenet103'), params: 9322091, task: 'segmentation' });
});

test('summary --json gives the block channel table; --input changes the resolution', () => {
  const r = densenet('summary', 'fc-densenet103', '--json');
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { stages: Array<{ stage: string; layers: number; channelsOut: number; resolution: number[] }>; totalParams: number };
  assert.deepEqual(s.stages.filter((x) => x.layers > 0).map((x) => x.channelsOut), [112, 192, 304, 464, 656, 896, 1088, 816, 576, 384, 256]);
  assert.equal(s.totalParams, 9322091);
  const small = JSON.parse(densenet('summary', 'densenet121', '--input', '64x64x1', '--classes', '7', '--json').stdout);
  assert.deepEqual(small.stages.find((x: { stage: string }) => x.stage === 'block4').resolution, [2, 2]);
  assert.equal(small.inputShape[2], 1);
});

test('convert writes a tfjs model that predicts like the source weights', async () => {
  await init('wasm', { log: null });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'densenet-convert-'));
  const source = zoo.create('densenet-40-k12');
  const file = path.join(dir, 'w.safetensors');
  await saveTorchvisionSafetensors(source, file);
  const r = densenet('convert', file, '--arch', 'densenet-40-k12', '--out', path.join(dir, 'tfjs'));
  assert.equal(r.status, 0, r.stderr);
  const converted = await loadLayersModelFromFile(path.join(dir, 'tfjs'));
  const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 5);
  assert.ok(sameValues(converted.predict(x) as tf.Tensor, source.predict(x) as tf.Tensor));
});

test('bad input is one clear error line and exit code 1', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'densenet-bad-'));
  failsClearly(densenet('summary', 'densenet122'), /unknown model 'densenet122'; the zoo has: densenet121,/);
  failsClearly(densenet('summary', 'fc-densenet56', '--input', '20x100x3'), /fc-densenet56 cannot take input 20x100x3: .*at least 32/);
  failsClearly(densenet('summary', 'densenet121', '--input', '224by224'), /--input '224by224': expected HxWxC or HxW/);
  const missing = path.join(dir, 'missing.png');
  failsClearly(densenet('predict', 'densenet-bc-100-k12', missing), new RegExp(`${missing}: cannot read the image: ENOENT`));
  const garbage = path.join(dir, 'garbage.png');
  fs.writeFileSync(garbage, 'this is not an image');
  failsClearly(densenet('predict', 'densenet-bc-100-k12', garbage), /garbage\.png: not a PNG or JPEG image/);
  const truncated = path.join(dir, 'truncated.png');
  fs.writeFileSync(truncated, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]));
  failsClearly(densenet('predict', 'densenet-bc-100-k12', truncated), /truncated\.png: not a readable PNG image/);
  const corrupt = path.join(dir, 'corrupt.safetensors');
  fs.writeFileSync(corrupt, Buffer.from([200, 0, 0, 0, 0, 0, 0, 0, 123]));
  failsClearly(densenet('convert', corrupt, '--arch', 'densenet121', '--out', path.join(dir, 'o')), /corrupt\.safetensors/);
});

test('doctor names the chosen backend and every candidate', () => {
  const r = densenet('doctor', '--json');
  assert.equal(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout) as { chosen: string; backends: Array<{ name: string; available: boolean }> };
  assert.equal(info.chosen, 'wasm');
  assert.deepEqual(info.backends.filter((b) => b.name === 'cpu' || b.name === 'wasm').map((b) => b.available), [true, true]);
  assert.equal(info.backends.find((b) => b.name === 'tensorflow')?.available, false);
});

test('bench memory --timeline: what is alive at each mode\'s peak, as a table and as JSON in the file named', () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'timeline-')), 'timeline.json');
  const r = densenet('bench', 'memory', 'densenet-40-k12', '--batch', '2', '--input', '8x8x3', '--timeline', file, '--top', '3');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /### naive: peak [\d.]+ MB/);
  assert.match(r.stdout, /### efficient: peak [\d.]+ MB/);
  type Saved = { peakBytes: number; baselineBytes: number; atPeak: Array<{ phase: string }> };
  const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as { backend: string; naive: Saved; efficient: Saved };
  assert.equal(saved.backend, 'wasm');
  for (const mode of [saved.naive, saved.efficient]) {
    assert.ok(mode.peakBytes > mode.baselineBytes);
    assert.ok(mode.atPeak.length > 3 && mode.atPeak.some((g) => g.phase === 'forward'));
  }
});

test('bench kernels: efficient mode runs BN-ReLU twice per unit (forward and recompute) and concatenates nothing per layer', () => {
  const r = densenet('bench', 'kernels', 'densenet-40-k12', '--batch', '2', '--input', '8x8x3', '--steps', '1', '--json');
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { backend: string; kernels: Array<{ kernel: string; naiveCalls: number; efficientCalls: number; naiveMs: number }> };
  assert.equal(out.backend, 'wasm');
  const calls = (name: string) => out.kernels.find((k) => k.kernel === name) ?? { naiveCalls: 0, efficientCalls: 0 };
  // densenet-40-k12: 3 blocks of 12 single-unit layers, and 2 transitions (also recomputed); the head's
  // BN-ReLU before its pool once (it is not recomputed: its input is kept).
  assert.equal(calls('DenseNetBnRelu').naiveCalls, 36 + 2 + 1);
  assert.equal(calls('DenseNetBnRelu').efficientCalls, 2 * (36 + 2) + 1);
  // Efficient mode adds a layer's input gradient to the running gradients one feature map at a time:
  // layer l of a block reads l maps (the block input and l - 1 new ones).
  assert.equal(calls('DenseNetBnReluGrad').naiveCalls, 36 + 2 + 1);
  assert.equal(calls('DenseNetBnReluGrad').efficientCalls, 3 * ((12 * 13) / 2) + 2 + 1);
  // Naive builds (and keeps) the concatenated input of every layer after the first of each
  // block (3 x 11); efficient builds none. Both join per-map moments and each block's output.
  // Efficient mode's only extra joins are of per-channel vectors: the piecewise dGamma and dBeta of those 33 layers.
  assert.equal(calls('Concat').naiveCalls - (calls('Concat').efficientCalls - 2 * 33), 33);
  assert.ok(out.kernels.every((k) => k.naiveMs >= 0));
  const table = densenet('bench', 'kernels', 'densenet-40-k12', '--batch', '2', '--input', '8x8x3', '--steps', '1', '--top', '3');
  assert.match(table.stdout, /\| kernel \| naive ms \|/);
  assert.match(table.stdout, /\| all kernels \|/);
});
