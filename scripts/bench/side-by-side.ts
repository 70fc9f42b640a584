// Our training step next to PyTorch's on the same machine, same model, batch and thread
// count, each mode in its own process so that peak resident memory is per mode:
//   node dist/scripts/bench/side-by-side.js densenet-bc-100-k12 --batch 64 [--input 32x32x3] [--threads 1] [--steps 3]
import { Command } from 'commander';
import * as tf from '../../src/tf';
import { init } from '../../src/backend';
import {
  CHILD_FLAG, ChildFailure, MODES, ModeJob, measureJob, printChildResult, runInChild, runPyTorchReference,
} from '../../src/measure/child-process';
import { trainingHarness } from '../../src/measure/training-step';
import * as zoo from '../../src/zoo';
import { peakRssBytes } from '../../src/process-memory';

interface Row {
  implementation: string;
  mode: string;
  msPerStep: number;
  trainImagesPerSec: number;
  inferenceImagesPerSec?: number;
  peakTensorBytes?: number;
  maxRssBytes: number;
}

/** Child process: one mode of ours, its training step and then its inference. */
async function child(job: ModeJob): Promise<void> {
  const b = await init(undefined, { log: null });
  const m = await measureJob(job);
  const model = zoo.create(job.zoo, { inputShape: job.input, memoryEfficient: job.mode === 'efficient' });
  const h = trainingHarness(model, job.batch);
  await h.predict();
  const start = Date.now();
  for (let i = 0; i < job.steps; i++) await h.predict();
  const inferMs = (Date.now() - start) / job.steps;
  const row: Row = {
    implementation: `densenet-zoo (${b.name}, tfjs ${tf.version_core})`, mode: job.mode, msPerStep: m.msPerStep,
    trainImagesPerSec: (1000 * job.batch) / m.msPerStep, inferenceImagesPerSec: (1000 * job.batch) / inferMs,
    peakTensorBytes: m.peakBytes, maxRssBytes: peakRssBytes(),
  };
  printChildResult(row);
}

function table(rows: Array<Row | ChildFailure>, labels: string[]): string {
  const mb = (b?: number) => (b === undefined ? '' : (b / 1e6).toFixed(0));
  const lines = [
    '| implementation | mode | ms/step | train img/s | inference img/s | peak tensor MB | peak RSS MB |',
    '|---|---|---|---|---|---|---|',
  ];
  rows.forEach((r, i) => lines.push('error' in r ? `| ${labels[i]} | failed: ${r.error} | | | | | |`
    : `| ${r.implementation} | ${r.mode} | ${r.msPerStep.toFixed(0)} | ${r.trainImagesPerSec.toFixed(2)} | ` +
      `${r.inferenceImagesPerSec?.toFixed(2) ?? ''} | ${mb(r.peakTensorBytes)} | ${mb(r.maxRssBytes)} |`));
  return lines.join('\n');
}

async function main(): Promise<void> {
  const program = new Command()
    .argument('<name>')
    .requiredOption('--batch <n>', 'batch size', Number)
    .option('--input <HxWxC>', 'input size (default: the model\'s)')
    .option('--threads <n>', 'PyTorch threads (ours: the backend\'s own)', Number, 1)
    .option('--steps <n>', 'timed steps', Number, 3)
    .option(`${CHILD_FLAG} <job>`, 'internal: run one mode of ours and print JSON')
    .parse(process.argv);
  const name = program.args[0];
  const opts = program.opts<{ batch: number; input?: string; threads: number; steps: number; child?: string }>();
  const inputShape = (opts.input ? opts.input.split('x').map(Number) : zoo.info(name).input.shape) as [number, number, number];
  if (opts.child) return child(JSON.parse(opts.child) as ModeJob);
  const labels: string[] = [];
  const rows: Array<Row | ChildFailure> = [];
  for (const mode of MODES) {
    labels.push(`densenet-zoo ${mode}`);
    const job: ModeJob = { zoo: name, input: inputShape, batch: opts.batch, mode, steps: opts.steps };
    // The name and batch only satisfy the argument parser; the job says what to measure.
    rows.push(runInChild<Row>(__filename, job, [name, '--batch', String(opts.batch)]));
  }
  for (const mode of MODES) {
    labels.push(`pytorch ${mode}`);
    const py = runPyTorchReference({ model: name, batch: opts.batch, input: inputShape, mode, threads: opts.threads, steps: opts.steps });
    rows.push('error' in py ? py : { ...py, implementation: `${py.framework}, ${opts.threads} thread(s)`, mode });
  }
  process.stdout.write(`${name}, batch ${opts.batch}, input ${inputShape.join('x')}\n${table(rows, labels)}\n`);
}

main().catch((err) => {
  process.stderr.write(`side-by-side: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
