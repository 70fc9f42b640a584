// The GPU check, one command on a machine with a GPU (a software adapter works too, slowly):
//   node dist/scripts/bench/gpu-check.js [--quick]
// Prints the WebGPU adapter, then checks a small training step on webgpu against the cpu backend
// (naive and memory-efficient; exits 1 on a mismatch), then for DenseNet-BC-100 (batch 64, 32x32),
// DenseNet-121 (batch 32, 224x224) and FC-DenseNet103 (batch 3, 224x224), naive and efficient:
// training and inference images/s, the peak tensor bytes of a step (tf.profile) beside the
// planner's prediction, and the GPU memory tfjs's buffer pool holds after it. --quick: small
// sizes and one timed step, for the software driver.
import { Command } from 'commander';
import * as tf from '../../src/tf';
import { init, webgpuProbe } from '../../src/backend';
import * as zoo from '../../src/zoo';
import { benchSpeed, measurePeak, zooFactory } from '../../src/measure/memory';
import { planMemory } from '../../src/measure/planner';
import { trainingHarness } from '../../src/measure/training-step';

interface Case { name: string; batch: number; input: [number, number, number] }

const FULL: Case[] = [
  { name: 'densenet-bc-100-k12', batch: 64, input: [32, 32, 3] },
  { name: 'densenet121', batch: 32, input: [224, 224, 3] },
  { name: 'fc-densenet103', batch: 3, input: [224, 224, 3] },
];
const QUICK: Case[] = [
  { name: 'densenet-bc-100-k12', batch: 4, input: [16, 16, 3] },
  { name: 'densenet121', batch: 2, input: [64, 64, 3] },
  { name: 'fc-densenet103', batch: 1, input: [64, 64, 3] },
];
/** A weight update may differ from cpu's by float32 summation order, not by a wrong kernel (which gives O(1)). */
const TOLERANCE = 5e-3;
const MB = 1e6;

/** The largest relative difference between a training step's weight updates on webgpu and on cpu. */
async function stepMismatch(memoryEfficient: boolean): Promise<number> {
  const updates = async (backend: string, initial: tf.Tensor[]): Promise<Float32Array[]> => {
    await init(backend, { log: null });
    const model = zoo.create('densenet-bc-100-k12', { depth: 16, inputShape: [8, 8, 3], memoryEfficient });
    const start = await Promise.all(initial.map(async (w) => tf.tensor(await w.data(), w.shape)));
    model.setWeights(start);
    const harness = trainingHarness(model, 4);
    await harness.step();
    const after = await Promise.all(model.getWeights().map(async (w, i) => {
      const [a, b] = [await w.data(), await start[i].data()];
      return Float32Array.from(a as Float32Array, (v, j) => v - (b as Float32Array)[j]);
    }));
    tf.dispose(start);
    harness.dispose();
    model.dispose();
    return after;
  };
  await init('cpu', { log: null });
  const model = zoo.create('densenet-bc-100-k12', { depth: 16, inputShape: [8, 8, 3], seed: 1 });
  const initial = model.getWeights().map((w) => w.clone());
  model.dispose();
  const want = await updates('cpu', initial);
  await init('cpu', { log: null });
  const got = await updates('webgpu', initial);
  tf.dispose(initial);
  return Math.max(...got.map((g, i) => {
    let diff = 0;
    let scale = 0;
    g.forEach((v, j) => { diff = Math.max(diff, Math.abs(v - want[i][j])); scale = Math.max(scale, Math.abs(want[i][j])); });
    return scale === 0 ? diff : diff / scale;
  }));
}

/** Percent, with no '-0.0' for a difference of a few bytes. */
function plannerError(planned: number, measured: number): string {
  const pct = (100 * (planned - measured)) / measured;
  return (Math.abs(pct) < 0.05 ? 0 : pct).toFixed(1);
}

async function measureCase(c: Case, memoryEfficient: boolean, steps: number): Promise<string[]> {
  const mode = memoryEfficient ? 'efficient' : 'naive';
  const options = { inputShape: c.input };
  const plan = await planMemory(c.name, { batch: c.batch, budgetBytes: 80e9, inputShape: c.input });
  await init('webgpu', { log: null });
  const peak = await measurePeak(zooFactory(c.name, options), memoryEfficient, c.batch);
  const gpuHeld = (tf.memory() as { numBytesAllocatedInGPU?: number }).numBytesAllocatedInGPU ?? NaN;
  const speed = await benchSpeed(c.name, { ...options, batch: c.batch, steps, memoryEfficient });
  const planned = plan[mode].peakBytes;
  return [c.name, `${c.input.join('x')}`, String(c.batch), mode, (speed.trainImagesPerSec ?? NaN).toFixed(1), speed.inferenceImagesPerSec.toFixed(1),
    (peak.peakBytes / MB).toFixed(1), (planned / MB).toFixed(1), `${plannerError(planned, peak.peakBytes)}%`, (gpuHeld / MB).toFixed(1)];
}

async function main(): Promise<void> {
  const opts = new Command().option('--quick', 'small sizes (a software adapter)').parse().opts<{ quick?: boolean }>();
  const probe = await webgpuProbe();
  console.log(`adapter: ${probe.adapter ? `${probe.adapter.vendor} ${probe.adapter.architecture} (${probe.adapter.description}), ` +
    `${probe.adapter.software ? 'software' : 'hardware'}, maxStorageBufferBindingSize ${probe.adapter.limits.maxStorageBufferBindingSize}, ` +
    `maxBufferSize ${probe.adapter.limits.maxBufferSize}` : 'none'}: ${probe.reason}`);
  if (!probe.adapter) process.exit(1);
  let failed = false;
  for (const memoryEfficient of [false, true]) {
    const err = await stepMismatch(memoryEfficient);
    const ok = err < TOLERANCE;
    failed ||= !ok;
    console.log(`${ok ? 'ok ' : 'BAD'} training step on webgpu against cpu, ${memoryEfficient ? 'efficient' : 'naive'}: largest relative difference of a weight update ${err.toExponential(2)} (limit ${TOLERANCE})`);
  }
  console.log('\n| model | input | batch | mode | train img/s | inference img/s | peak tensor MB (tf.profile) | planned MB | planner error | GPU MB held by tfjs |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const c of opts.quick ? QUICK : FULL) {
    for (const memoryEfficient of [false, true]) {
      try {
        console.log(`| ${(await measureCase(c, memoryEfficient, opts.quick ? 1 : 3)).join(' | ')} |`);
      } catch (err) {
        console.log(`| ${c.name} | ${c.input.join('x')} | ${c.batch} | ${memoryEfficient ? 'efficient' : 'naive'} | failed: ${(err as Error).message.split('\n')[0]} |`);
      }
    }
  }
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  console.error(`gpu-check: ${(err as Error).message}`);
  process.exit(1);
});
