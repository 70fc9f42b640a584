// Our training step next to PyTorch's on the same machine, same model, batch and thread
// count, each mode in its own process so that peak resident memory is per mode:
//   node dist/scripts/bench/side-by-side.js densenet-bc-100-k12 --batch 64 [--input 32x32x3] [--threads 1] [--steps 3]
import { spawnSync } from 'child_process';
import * as path from 'path';
import { Command } from 'commander';
import * as tf from '../../src/tf';
import { init } from '../../src/backend';
import { measureMode, zooFactory } from '../../src/measure/memory';
import { trainingHarness } from '../../src/measure/training-step';
import * as zoo from '../../src/zoo';
import { peakRssBytes } from '../../src/process-memory';
import { PACKAGE_ROOT } from '../../src/package-root';

interface Row {
  implementation: string;
  mode: string;
  msPerStep: number;
  trainImagesPerSec: number;
  inferenceImagesPerSec?: number;
  peakTensorBytes?: number;
  maxRssBytes: number;
}

const PYTHON = process.env.PYTHON ?? '/usr/bin/python3';

/** Child process: one mode of ours, printed as JSON. */
async function child(name: string, mode: string, batch: number, inputShape: [number, number, number], steps: number): Promise<void> {
  const b = await init(undefined, { log: null });
  const efficient = mode === 'efficient';
  const m = await measureMode(zooFactory(name, { inputShape }), efficient, { batch, inputShape, steps });
  const model = zoo.create(name, { inputShape, memoryEfficient: efficient });
  const h = trainingHarness(model, batch);
  h.predict();
  const start = Date.now();
  for (let i = 0; i < steps; i++) h.predict();
  const inferMs = (Date.now() - start) / steps;
  const row: Row = {
    implementation: `densenet-zoo (${b.name}, tfjs ${tf.version_core})`, mode, msPerStep: m.msPerStep,
    trainImagesPerSec: (1000 * batch) / m.msPerStep, inferenceImagesPerSec: (1000 * batch) / inferMs,
    peakTensorBytes: m.peakBytes, maxRssBytes: peakRssBytes(),
  };
  process.stdout.write(JSON.stringify(row) + '\n');
}

function run(cmd: string, args: string[]): Row | { error: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: process.env, maxBuffer: 1 << 24 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Row;
  } catch {
    return { error: (r.stderr || r.stdout || `exit ${r.status}`).trim().split('\n').pop()! };
  }
}

function table(rows: Array<Row | { error: string }>, labels: string[]): string {
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
    .option('--child <mode>', 'internal: run one mode of ours and print JSON')
    .parse(process.argv);
  const name = program.args[0];
  const opts = program.opts<{ batch: number; input?: string; threads: number; steps: number; child?: string }>();
  const inputShape = (opts.input ? opts.input.split('x').map(Number) : zoo.info(name).input.shape) as [number, number, number];
  if (opts.child) return child(name, opts.child, opts.batch, inputShape, opts.steps);
  const modes = ['naive', 'efficient'];
  const labels: string[] = [];
  const rows: Array<Row | { error: string }> = [];
  for (const mode of modes) {
    labels.push(`densenet-zoo ${mode}`);
    rows.push(run(process.execPath, [__filename, name, '--batch', String(opts.batch), '--input', inputShape.join('x'), '--steps', String(opts.steps), '--child', mode]));
  }
  for (const mode of modes) {
    labels.push(`pytorch ${mode}`);
    const py = run(PYTHON, [path.join(PACKAGE_ROOT, 'scripts', 'bench', 'pytorch_reference.py'), '--model', name, '--batch', String(opts.batch),
      '--input', inputShape.join('x'), '--mode', mode, '--threads', String(opts.threads), '--steps', String(opts.steps)]);
    if (!('error' in py)) py.implementation = `${py.implementation ?? (py as unknown as { framework: string }).framework}, ${opts.threads} thread(s)`;
    rows.push(py);
  }
  process.stdout.write(`${name}, batch ${opts.batch}, input ${inputShape.join('x')}\n${table(rows, labels)}\n`);
}

main().catch((err) => {
  process.stderr.write(`side-by-side: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
