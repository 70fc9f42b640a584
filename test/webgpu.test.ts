// The webgpu backend (Dawn through the `webgpu` package): chosen automatically only for a hardware
// adapter, used when asked for by name, and a training step, an evaluation and a checkpoint on it.
// On a machine without a GPU this runs on a software Vulkan driver (SwiftShader from Debian's
// chromium, loaded by libvulkan1); without any adapter the tests skip, saying why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '../src/tf';
import { init, listCandidates, webgpuProbe } from '../src/backend';
import * as zoo from '../src/zoo';
import { trainingHarness } from '../src/measure/training-step';
import { maxRelativeErrorOf } from './helpers';

const CLI = path.join(__dirname, '../src/cli/main.js');
const FASHION_MNIST = '/usr/share/datasets/fashion-mnist';

/** The adapter forcing webgpu would use, or why there is none. */
async function adapterOrSkip(t: { skip: (reason: string) => void }): Promise<boolean> {
  const probe = await webgpuProbe();
  if (!probe.adapter) t.skip(`no WebGPU adapter here: ${probe.reason}`);
  return probe.adapter !== null;
}

test('webgpu comes after tensorflow-gpu and before torch-cpu; a software adapter is used only when asked for', async (t) => {
  const names = listCandidates().map((c) => c.name);
  assert.ok(names.indexOf('tensorflow-gpu') < names.indexOf('webgpu') && names.indexOf('webgpu') < names.indexOf('torch-cpu'));
  if (!(await adapterOrSkip(t))) return;
  const probe = await webgpuProbe();
  const automatic = await init(undefined, { log: null, env: {} });
  assert.equal(automatic.name === 'webgpu', !probe.adapter!.software, `${probe.reason}; chosen: ${automatic.name}`);
  if (probe.adapter!.software) assert.match(probe.reason, /software adapter.*DENSENET_BACKEND=webgpu/);
  const forced = await init('webgpu', { log: null });
  assert.equal(forced.name, 'webgpu');
  assert.equal(tf.getBackend(), 'webgpu');
  assert.match(forced.description, new RegExp(probe.adapter!.architecture || 'Dawn'));
  assert.ok(probe.adapter!.limits.maxStorageBufferBindingSize > 0);
});

/** Every weight's change after one training step of a small DenseNet-BC on `backend`. */
async function weightDeltas(backend: string, memoryEfficient: boolean, initial: Array<{ values: Float32Array; shape: number[] }>): Promise<Float32Array[]> {
  assert.ok(await tf.setBackend(backend));
  const model = zoo.create('densenet-bc-100-k12', { depth: 16, inputShape: [8, 8, 3], memoryEfficient });
  const start = initial.map((w) => tf.tensor(w.values, w.shape));
  model.setWeights(start);
  tf.dispose(start);
  const harness = trainingHarness(model, 4);
  await harness.step();
  const after = await Promise.all(model.getWeights().map(async (w) => Float32Array.from((await w.data()) as Float32Array)));
  harness.dispose();
  model.dispose();
  return after.map((a, i) => a.map((v, j) => v - initial[i].values[j]));
}

test('a training step on webgpu changes every weight as on cpu, naive and memory-efficient', async (t) => {
  if (!(await adapterOrSkip(t))) return;
  await init('webgpu', { log: null });
  await init('cpu', { log: null });
  const model = zoo.create('densenet-bc-100-k12', { depth: 16, inputShape: [8, 8, 3], seed: 1 });
  const initial = model.getWeights().map((w) => ({ values: Float32Array.from(w.dataSync() as Float32Array), shape: w.shape }));
  model.dispose();
  for (const memoryEfficient of [false, true]) {
    const want = await weightDeltas('cpu', memoryEfficient, initial);
    const got = await weightDeltas('webgpu', memoryEfficient, initial);
    const errors = got.map((g, i) => maxRelativeErrorOf(g, want[i]));
    errors.forEach((err, i) => {
      assert.ok(err < 5e-3, `${memoryEfficient ? 'efficient' : 'naive'} weight ${i} [${initial[i].shape}]: relative error ${err.toExponential(2)}`);
    });
    t.diagnostic(`${memoryEfficient ? 'efficient' : 'naive'}: largest relative error of a weight's update ${Math.max(...errors).toExponential(2)}`);
  }
});

test('the train CLI on webgpu trains, evaluates and writes its checkpoint', async (t) => {
  if (!(await adapterOrSkip(t))) return;
  if (!fs.existsSync(path.join(FASHION_MNIST, 'train-images-idx3-ubyte.gz'))) return t.skip(`Fashion-MNIST is not in ${FASHION_MNIST}`);
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'webgpu-train-')), 'run');
  const r = spawnSync(process.execPath, [CLI, 'train', 'densenet-bc-100-k12', '--depth', '10', '--dataset', 'fashion-mnist',
    '--max-steps', '2', '--epochs', '0.01', '--batch', '8', '--eval-limit', '16', '--efficient', '--out', out],
  { encoding: 'utf8', env: { ...process.env, DENSENET_BACKEND: 'webgpu' } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr + r.stdout, /using backend 'webgpu'/);
  assert.match(r.stderr + r.stdout, /final test: top1 [\d.]+%/);
  assert.ok(fs.existsSync(path.join(out, 'last', 'model.json')), 'checkpoint written');
  const metrics = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss?: number });
  assert.ok(metrics.some((m) => Number.isFinite(m.loss)));
});

test('a viz helper given a webgpu tensor says how to pass its values; given them, it draws', async (t) => {
  if (!(await adapterOrSkip(t))) return;
  await init('webgpu', { log: null });
  const { featureMapGrid } = await import('../src/viz/images');
  // A kernel's output lives on the GPU only (a tensor made from values still has them on the CPU, and
  // tfjs-webgpu runs ops on small tensors on the CPU).
  const maps = tf.tidy(() => tf.mul(tf.randomNormal([64, 48, 4], 0, 1, 'float32', 4), 2));
  assert.throws(() => featureMapGrid(maps), /featureMapGrid: the webgpu backend cannot read a tensor synchronously .*data: await tensor\.data\(\)/);
  const raster = featureMapGrid({ data: await maps.data(), height: 64, width: 48, channels: 4 });
  assert.ok(raster.width > 0 && raster.height > 0);
  maps.dispose();
});
