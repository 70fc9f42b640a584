// Experiment "data-parallel": what splitting training over processes costs and gives on this
// machine. DenseNet-BC-100 training images/s on Fashion-MNIST (28x28, batch 64) in 1 process x
// 2 threads against 2 processes x 1 thread (with and without --sync-bn), through the real CLI;
// then the allreduce of DenseNet-BC-100's and DenseNet-121's gradients over loopback with the
// project's communicator, beside PyTorch's torch.distributed (Gloo) on the same sizes.
//   npm run exp:data-parallel [-- --quick] [-- --out DIR]
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command } from 'commander';
import { backend as backends, zoo } from '../src';
import { BUCKET_FLOATS, Communicator, freePort, worldFromEnv } from '../src/train';
import { PYTHON, pytorchMissing } from '../src/measure';
import { RESULTS_DIR, writeResultAsync } from './results';

const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const TORCH_ALLREDUCE = path.join(__dirname, '..', '..', 'scripts', 'bench', 'torch-allreduce.py');
const FASHION_MNIST = '/usr/share/datasets/fashion-mnist';
const WARMUP = 2;

interface Throughput {
  setup: string;
  processes: number;
  threads: number;
  imagesPerSecond: number;
  steps: number;
}

interface AllreduceFigure {
  model: string;
  floats: number;
  buckets: number;
  seconds: number;
  torchSeconds?: number;
}

/** Train images/s of the logged steps after the first record (warm-up), from the run's metrics.jsonl. */
function trainedImagesPerSecond(out: string): { imagesPerSecond: number; steps: number } {
  const records = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    .filter((r) => r.type === 'train').slice(1);
  const steps = records.reduce((n, r) => n + r.steps, 0);
  const seconds = records.reduce((s, r) => s + r.steps / r.imagesPerSecond, 0);
  return { imagesPerSecond: steps / seconds, steps };
}

function trainOnce(setup: string, processes: number, threads: number, steps: number, batch: number, extra: string[]): Throughput {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'densenet-dp-'));
  try {
    const args = [
      CLI, '--backend', 'torch-cpu', 'train', 'densenet-bc-100-k12', '--dataset', 'fashion-mnist', '--data', FASHION_MNIST,
      '--batch', String(batch), '--max-steps', String(steps), '--log-every', String(WARMUP), '--drop-rate', '0', '--no-augment',
      '--eval-limit', '64', '--out', out, ...(processes > 1 ? ['--nproc', String(processes)] : []), ...extra,
    ];
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, DENSENET_THREADS: String(threads) } });
    if (r.status !== 0) throw new Error(`${setup}: training failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
    return { setup, processes, threads, ...trainedImagesPerSecond(out) };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

/** Gradient floats of a zoo model: what one step's allreduce carries. */
function gradientFloats(name: string, options: zoo.ModelOptions = {}): number {
  const model = zoo.create(name, options);
  try {
    return zoo.countTrainableParams(model);
  } finally {
    model.dispose();
  }
}

function bucketsOf(floats: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let i = 0; i < floats; i += BUCKET_FLOATS) out.push(new Float32Array(Math.min(BUCKET_FLOATS, floats - i)).fill(1));
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** One rank of the allreduce timing (this script started with torchrun's variables). */
function allreduceWorker(sizes: number[], reps: number): void {
  const comm = Communicator.join(worldFromEnv()!, { timeoutMs: 120_000 });
  const seconds = sizes.map((floats) => {
    const buckets = bucketsOf(floats);
    const times: number[] = [];
    for (let rep = 0; rep < WARMUP + reps; rep++) {
      comm.barrier();
      const t0 = performance.now();
      comm.allreduce(buckets, 'sum');
      if (rep >= WARMUP) times.push((performance.now() - t0) / 1000);
    }
    return median(times);
  });
  if (comm.rank === 0) process.stdout.write(JSON.stringify(seconds) + '\n');
  comm.close();
}

async function timeAllreduce(sizes: number[], reps: number, world: number): Promise<number[]> {
  const port = await freePort();
  const outputs = await Promise.all(Array.from({ length: world }, (_, rank) => new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [__filename, '--worker', '--sizes', sizes.join(','), '--reps', String(reps)], {
      env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`allreduce rank ${rank} exited with ${code}`))));
  })));
  return JSON.parse(outputs[0]) as number[];
}

function torchAllreduce(sizes: number[], reps: number, world: number): number[] | string {
  const missing = pytorchMissing();
  if (missing) return missing;
  const r = spawnSync(PYTHON, [TORCH_ALLREDUCE, '--sizes', sizes.join(','), '--reps', String(reps), '--world', String(world)], { encoding: 'utf8' });
  if (r.status !== 0) return `torch-allreduce.py failed: ${r.stderr.split('\n').slice(-3).join(' ')}`;
  const seconds = JSON.parse(r.stdout).seconds as Record<string, number>;
  return sizes.map((n) => seconds[String(n)]);
}

const GB = 1e9;

function table(throughput: Throughput[], allreduce: AllreduceFigure[], world: number, batch: number): string {
  const base = throughput[0].imagesPerSecond;
  const rows = throughput.map((t) => `| ${t.setup} | ${t.processes} x ${t.threads} | ${t.imagesPerSecond.toFixed(1)} | ${(t.imagesPerSecond / base).toFixed(2)}x | ${t.steps} |`);
  // Bus bandwidth: what each link carries in a ring allreduce, 2 (n - 1) / n of the data.
  const bus = (floats: number, s: number) => ((4 * floats * 2 * (world - 1)) / world / s / GB).toFixed(2);
  const ar = allreduce.map((a) => `| ${a.model} | ${(4 * a.floats / 1e6).toFixed(1)} MB in ${a.buckets} | ${(a.seconds * 1000).toFixed(1)} ms | ${bus(a.floats, a.seconds)} GB/s | ` +
    `${a.torchSeconds === undefined ? 'n/a' : `${(a.torchSeconds * 1000).toFixed(1)} ms (${bus(a.floats, a.torchSeconds)} GB/s)`} |`);
  return [
    `| DenseNet-BC-100 training, Fashion-MNIST 28x28, global batch ${batch} | processes x threads | images/s | vs 1 x 2 | timed steps |`,
    '| --- | --- | --- | --- | --- |', ...rows, '',
    `| gradients allreduced over loopback (${world} ranks, Gloo) | size (buckets) | median time | bus bandwidth | PyTorch torch.distributed, same sizes |`,
    '| --- | --- | --- | --- | --- |', ...ar,
  ].join('\n');
}

async function main(): Promise<void> {
  const program = new Command()
    .option('--quick', 'a few steps of a small batch: checks that the experiment runs')
    .option('--out <dir>', 'results folder', RESULTS_DIR)
    .option('--worker', 'internal: one rank of the allreduce timing')
    .option('--sizes <list>', 'internal: float counts to allreduce')
    .option('--reps <n>', 'internal: timed repetitions', '10')
    .parse();
  const opts = program.opts<{ quick?: boolean; out: string; worker?: boolean; sizes?: string; reps: string }>();
  if (opts.worker) return allreduceWorker(opts.sizes!.split(',').map(Number), Number(opts.reps));

  const started = Date.now();
  const [steps, batch, reps] = opts.quick ? [4, 8, 3] : [14, 64, 10];
  const throughput = [
    trainOnce('one process', 1, 2, steps, batch, []),
    trainOnce('data-parallel', 2, 1, steps, batch, []),
    trainOnce('data-parallel, --sync-bn', 2, 1, steps, batch, ['--sync-bn']),
  ];
  await backends.init('cpu', { log: null }); // counting parameters only
  const models = [
    { model: 'densenet-bc-100-k12', floats: gradientFloats('densenet-bc-100-k12') },
    { model: 'densenet121', floats: gradientFloats('densenet121') },
  ];
  const world = 2;
  const sizes = models.map((m) => m.floats);
  const ours = await timeAllreduce(sizes, reps, world);
  const torch = torchAllreduce(sizes, reps, world);
  const allreduce: AllreduceFigure[] = models.map((m, i) => ({
    ...m, buckets: bucketsOf(m.floats).length, seconds: ours[i], ...(Array.isArray(torch) ? { torchSeconds: torch[i] } : {}),
  }));
  await writeResultAsync('data-parallel', {
    command: `npm run exp:data-parallel${opts.quick ? ' -- --quick' : ''}`,
    backend: 'torch-cpu',
    seed: null,
    wallSeconds: (Date.now() - started) / 1000,
    data: { throughput, allreduce, world, warmupRecordsDropped: 1, pytorch: Array.isArray(torch) ? 'measured' : torch, quick: !!opts.quick },
    table: table(throughput, allreduce, world, batch),
    notes: `Training: ${steps} steps per setup, images/s over the steps after the first ${WARMUP} (the step time includes reading the batch); ` +
      `the allreduce: median of ${reps} after ${WARMUP} warm-ups, buckets of at most ${BUCKET_FLOATS} floats as the trainer sends them.` +
      (Array.isArray(torch) ? '' : ` PyTorch not measured: ${torch}.`),
  }, opts.out);
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
