// Per-kernel timings of the torch-cpu backend against wasm and PyTorch.
//
//   npx tsc -p tsconfig.json && node dist/scripts/bench/torch-cpu.js [--reps 20] [--no-python] [--no-kernels] [--fused] [--profile] [--step] [--infer]
//
// Kernels: the two convolutions of a DenseNet-BC layer at CIFAR size (batch 16, 32x32:
// 3x3 48->12 and 1x1 192->48) and their input and filter gradients; median ms over
// --reps runs, on wasm (single-threaded), torch-cpu with 1 and 2 threads and, when a
// python3 with torch is found, PyTorch (channels-last, the same ATen calls) with 1
// and 2 threads.
// --profile: the tfjs kernels of one DenseNet-BC-100 (k=12) training step (batch 64,
// 32x32) on torch-cpu, by total time.
// --fused: the training core's BN-ReLU arithmetic as tfjs ops against torch-cpu's fused
// kernels, on DenseNet-BC-100 block-1 widths (batch 64, 32x32), 1 thread.
// --infer: DenseNet-121 inference, batch 8, 224x224, torch-cpu and PyTorch, 1 and 2 threads.
// --step: ms per training step of that model on torch-cpu and PyTorch (torchvision's DenseNet
// class with the CIFAR stem), 1 and 2 threads, interleaved; --step-wasm adds wasm (slow).
import { spawnSync } from 'child_process';
import * as tf from '../../src/tf';
import { init } from '../../src/backend';
import { registerTorchCpuBackend, setTorchCpuThreads, torchCpuInfo } from '../../src/backend/torch-cpu';
import { BATCH_MOMENTS, BN_RELU, BN_RELU_GRAD } from '../../src/core/fused-kernels';
import * as zoo from '../../src/zoo';

interface ConvCase {
  label: string;
  k: number;
  cin: number;
  cout: number;
}

const BATCH = 16;
const SIZE = 32;
const CASES: ConvCase[] = [
  { label: '3x3 48->12', k: 3, cin: 48, cout: 12 },
  { label: '1x1 192->48', k: 1, cin: 192, cout: 48 },
];
const KINDS = ['forward', 'input grad', 'filter grad'] as const;
type Kind = (typeof KINDS)[number];

function argValue(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const flag = (name: string) => process.argv.includes(name);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Median and minimum wall ms over `reps` runs after two warm-up runs, and the median
 * CPU ms of the process (on a busy machine the minimum and the CPU time are the
 * robust ones; CPU time sums all threads).
 */
function timeMs(fn: () => void, reps: number): Timing {
  for (let i = 0; i < 2; i++) fn();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    fn();
    wall.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e3);
  }
  return { median: median(wall), min: Math.min(...wall), cpu: median(cpu) };
}

interface Timing { median: number; min: number; cpu: number }

/** The op of `kind` for `c` as a closure over tensors made on the current backend. */
function convOp(c: ConvCase, kind: Kind): { run: () => void; dispose: () => void } {
  const x = tf.randomNormal([BATCH, SIZE, SIZE, c.cin]) as tf.Tensor4D;
  const w = tf.randomNormal([c.k, c.k, c.cin, c.cout]) as tf.Tensor4D;
  const dy = tf.randomNormal([BATCH, SIZE, SIZE, c.cout]) as tf.Tensor4D;
  const ops: Record<Kind, () => tf.Tensor> = {
    forward: () => tf.conv2d(x, w, 1, 'same'),
    'input grad': () => tf.conv2dTranspose(dy, w, x.shape, 1, 'same'),
    'filter grad': () => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, {
      strides: [1, 1], pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: w.shape,
    } as unknown as tf.NamedAttrMap) as tf.Tensor,
  };
  return {
    // wasm and torch-cpu run kernels synchronously; not reading the result back lets
    // torch-cpu reuse the output buffer, as it does for a model's intermediates.
    run: () => tf.tidy(() => { ops[kind](); }),
    dispose: () => tf.dispose([x, w, dy]),
  };
}

type Column = Record<string, Timing | string>;

async function tfjsColumn(backend: string, threads: number | null, reps: number): Promise<Column> {
  await init(backend, { log: null });
  if (threads !== null) setTorchCpuThreads(threads);
  const col: Column = {};
  for (const c of CASES) {
    for (const kind of KINDS) {
      const op = convOp(c, kind);
      try {
        col[`${c.label} ${kind}`] = timeMs(op.run, reps);
      } catch (err) {
        col[`${c.label} ${kind}`] = `n/a (${(err as Error).message.split('\n')[0].slice(0, 40)})`;
      } finally {
        op.dispose();
      }
    }
  }
  return col;
}

const PYTORCH_SCRIPT = `
import json, sys, time, torch
reps = int(sys.argv[1])
cases = json.loads(sys.argv[2])
torch.manual_seed(0)
def med(f):
    for _ in range(2): f()
    ts, cs = [], []
    for _ in range(reps):
        c = time.process_time(); t = time.perf_counter(); f()
        ts.append((time.perf_counter() - t) * 1e3); cs.append((time.process_time() - c) * 1e3)
    ts.sort(); cs.sort()
    return {"median": ts[len(ts) // 2], "min": ts[0], "cpu": cs[len(cs) // 2]}
out = {"version": torch.__version__}
with torch.inference_mode():
    for threads in (1, 2):
        torch.set_num_threads(threads)
        col = {}
        for c in cases:
            k, p = c["k"], c["k"] // 2
            x = torch.randn(${BATCH}, c["cin"], ${SIZE}, ${SIZE}).to(memory_format=torch.channels_last)
            w = torch.randn(c["cout"], c["cin"], k, k)
            dy = torch.randn(${BATCH}, c["cout"], ${SIZE}, ${SIZE}).to(memory_format=torch.channels_last)
            grad = lambda mask: torch.ops.aten.convolution_backward(dy, x, w, None, [1, 1], [p, p], [1, 1], False, [0, 0], 1, mask)
            col[c["label"] + " forward"] = med(lambda: torch.nn.functional.conv2d(x, w, padding=p))
            col[c["label"] + " input grad"] = med(lambda: grad([True, False, False]))
            col[c["label"] + " filter grad"] = med(lambda: grad([False, True, False]))
        out[str(threads)] = col
print(json.dumps(out))
`;

/** The first python3 that can import torch, or null. */
function findPython(): string | null {
  for (const exe of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(exe, ['-c', 'import torch'], { encoding: 'utf8' });
    if (r.status === 0) return exe;
  }
  return null;
}

function pytorchColumns(reps: number): { version: string; cols: Record<string, Column> } | string {
  const python = findPython();
  if (!python) return 'PyTorch: no python3 with torch found (apt-get install python3-torch)';
  const r = spawnSync(python, ['-c', PYTORCH_SCRIPT, String(reps), JSON.stringify(CASES)], { encoding: 'utf8' });
  if (r.status !== 0) return `PyTorch: the benchmark failed: ${r.stderr.trim().split('\n').pop()}`;
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  return { version: out.version, cols: { 'PyTorch 1t': out['1'], 'PyTorch 2t': out['2'] } };
}

function printTable(columns: Record<string, Column>): void {
  const names = Object.keys(columns);
  const rows = CASES.flatMap((c) => KINDS.map((k) => `${c.label} ${k}`));
  const fmt = (v: Timing | string | undefined) =>
    (v === undefined ? '-' : typeof v === 'string' ? v : `${v.median.toFixed(2)} (${v.min.toFixed(2)}) ${v.cpu.toFixed(2)}`);
  const widths = [Math.max(16, ...rows.map((r) => r.length)), ...names.map((n) => Math.max(n.length, 19))];
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(line(['ms: wall median (min) cpu', ...names]));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line([r, ...names.map((n) => fmt(columns[n][r]))]));
}

// ---------------------------------------------------------------------------------------------
// A DenseNet-BC-100 training step

function trainingStep(model: tf.LayersModel, batch: number): () => void {
  const [h, w, c] = (model.inputs[0].shape as number[]).slice(1);
  const x = tf.randomNormal([batch, h, w, c]);
  const labels = tf.oneHot(tf.randomUniform([batch], 0, 10, 'int32') as tf.Tensor1D, 10);
  const optimizer = tf.train.momentum(0.1, 0.9, true);
  return () => {
    tf.tidy(() => {
      const cost = optimizer.minimize(() => {
        const logits = model.apply(x, { training: true }) as tf.Tensor;
        return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
      }, true);
      cost?.dataSync();
    });
  };
}

/**
 * Wraps every torch-cpu kernel with a timer. (tf.profile reads every output back,
 * which defeats the backend's buffer reuse and adds its own cost.)
 */
function instrumentKernels(): { table: Map<string, { ms: number; calls: number }>; restore: () => void } {
  const table = new Map<string, { ms: number; calls: number }>();
  const originals = tf.getKernelsForBackend('torch-cpu');
  for (const k of originals) {
    tf.unregisterKernel(k.kernelName, 'torch-cpu');
    tf.registerKernel({
      ...k,
      kernelFunc: (args) => {
        const t0 = process.hrtime.bigint();
        const out = k.kernelFunc(args);
        const e = table.get(k.kernelName) ?? { ms: 0, calls: 0 };
        e.ms += Number(process.hrtime.bigint() - t0) / 1e6;
        e.calls++;
        table.set(k.kernelName, e);
        return out;
      },
    });
  }
  const restore = () => {
    for (const k of originals) {
      tf.unregisterKernel(k.kernelName, 'torch-cpu');
      tf.registerKernel(k);
    }
  };
  return { table, restore };
}

async function profileStep(batch: number): Promise<void> {
  await init('torch-cpu', { log: null });
  const model = zoo.create('densenet-bc-100-k12');
  const step = trainingStep(model, batch);
  step();
  const { table, restore } = instrumentKernels();
  const t0 = process.hrtime.bigint();
  step();
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  restore();
  const total = [...table.values()].reduce((s, e) => s + e.ms, 0);
  console.log(`\nDenseNet-BC-100 (k=12) training step, batch ${batch}, torch-cpu ${torchCpuInfo().threads} threads: ` +
    `${wall.toFixed(0)} ms, of which ${total.toFixed(0)} ms in kernels`);
  console.log('| kernel | ms | % of step | calls |\n|---|---|---|---|');
  for (const [name, e] of [...table.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 20)) {
    console.log(`| ${name} | ${e.ms.toFixed(1)} | ${((100 * e.ms) / wall).toFixed(1)} | ${e.calls} |`);
  }
  console.log(`buffer pool: ${JSON.stringify(torchCpuInfo().pool)}`);
}

const PYTORCH_STEP_SCRIPT = `
import json, sys, time, torch, torchvision
import torch.nn as nn
threads, batch, reps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
# DenseNet-BC-100 (k=12) for CIFAR: torchvision's DenseNet with the paper's 3x3 stem (769,162 parameters).
m = torchvision.models.DenseNet(growth_rate=12, block_config=(16, 16, 16), num_init_features=24, bn_size=4, drop_rate=0, num_classes=10)
m.features.conv0 = nn.Conv2d(3, 24, 3, padding=1, bias=False)
m.features.norm0 = nn.Identity(); m.features.relu0 = nn.Identity(); m.features.pool0 = nn.Identity()
m = m.to(memory_format=torch.channels_last)
x = torch.randn(batch, 3, 32, 32).to(memory_format=torch.channels_last)
y = torch.randint(0, 10, (batch,))
opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True)
def step():
    opt.zero_grad(); nn.functional.cross_entropy(m(x), y).backward(); opt.step()
step()
ts, cs = [], []
for _ in range(reps):
    c = time.process_time(); t = time.perf_counter(); step()
    ts.append((time.perf_counter() - t) * 1e3); cs.append((time.process_time() - c) * 1e3)
ts.sort(); cs.sort()
print(json.dumps({"median": ts[len(ts) // 2], "min": ts[0], "cpu": cs[len(cs) // 2], "params": sum(p.numel() for p in m.parameters())}))
`;

function pytorchStep(threads: number, batch: number, reps: number): Timing | string {
  const python = findPython();
  if (!python) return 'no python3 with torch';
  const r = spawnSync(python, ['-c', PYTORCH_STEP_SCRIPT, String(threads), String(batch), String(reps)], { encoding: 'utf8' });
  if (r.status !== 0) return `failed: ${r.stderr.trim().split('\n').pop()}`;
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Timing;
}

/** Training step times, torch-cpu and PyTorch interleaved so that both see the same machine load. */
async function stepTimes(batch: number, reps: number): Promise<void> {
  console.log(`\nDenseNet-BC-100 (k=12) training step, batch ${batch}, 32x32, ms per step over ${reps} steps`);
  const show = (label: string, t: Timing | string) => console.log(typeof t === 'string' ? `  ${label}: ${t}` :
    `  ${label}: wall ${t.median.toFixed(0)} (min ${t.min.toFixed(0)}) ms, cpu ${t.cpu.toFixed(0)} ms; ` +
    `${((1000 * batch) / t.min).toFixed(1)} images/s at the fastest step`);
  if (flag('--step-wasm')) {
    await init('wasm', { log: null });
    show('wasm', timeMs(trainingStep(zoo.create('densenet-bc-100-k12'), batch), reps));
  }
  for (const threads of [1, 2]) {
    await init('torch-cpu', { log: null });
    setTorchCpuThreads(threads);
    const model = zoo.create('densenet-bc-100-k12');
    show(`torch-cpu ${threads}t`, timeMs(trainingStep(model, batch), reps));
    model.dispose();
    if (!flag('--no-python')) show(`PyTorch ${threads}t (channels-last)`, pytorchStep(threads, batch, reps));
  }
}

async function fusedComparison(reps: number): Promise<void> {
  await init('torch-cpu', { log: null });
  setTorchCpuThreads(1);
  console.log('\nBN-ReLU of the training core, [64,32,32,C], 1 thread, ms: tfjs ops -> fused (wall median, cpu)');
  for (const c of [48, 120, 216]) {
    const x = tf.randomNormal([64, 32, 32, c]);
    const dr = tf.randomNormal([64, 32, 32, c]);
    const gamma = tf.randomUniform([c], 0.5, 1.5) as tf.Tensor1D;
    const beta = tf.randomNormal([c]) as tf.Tensor1D;
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    const invStd = tf.rsqrt(tf.add(variance, 1e-5)) as tf.Tensor1D;
    const scale = tf.mul(gamma, invStd) as tf.Tensor1D;
    const shift = tf.sub(beta, tf.mul(mean, scale)) as tf.Tensor1D;
    const r = tf.relu(tf.add(tf.mul(x, scale), shift));
    const count = 64 * 32 * 32;
    const cases: Array<[string, () => unknown, () => unknown]> = [
      ['moments', () => tf.mean(tf.squaredDifference(x, tf.mean(x, [0, 1, 2])), [0, 1, 2]), () => tf.engine().runKernel(BATCH_MOMENTS, { x })],
      ['bnRelu', () => tf.relu(tf.add(tf.mul(x, scale), shift)), () => tf.engine().runKernel(BN_RELU, { x, scale, shift })],
      ['backward', () => {
        const dy = tf.mul(dr, tf.step(r));
        const sumDy = tf.sum(dy, [0, 1, 2]);
        const sumDyX = tf.sum(tf.mul(dy, x), [0, 1, 2]);
        const dGamma = tf.mul(invStd, tf.sub(sumDyX, tf.mul(mean, sumDy)));
        const gOverM = tf.div(tf.mul(dGamma, invStd), count);
        const a = tf.neg(tf.mul(scale, gOverM));
        const b = tf.mul(scale, tf.sub(tf.mul(mean, gOverM), tf.div(sumDy, count)));
        return tf.add(tf.add(tf.mul(dy, scale), tf.mul(x, a)), b);
      }, () => tf.engine().runKernel(BN_RELU_GRAD, { x, dr, gamma, beta, mean, invStd })],
    ];
    const parts = cases.map(([name, ops, one]) => {
      const a = timeMs(() => tf.tidy(ops as () => void), reps);
      const b = timeMs(() => tf.tidy(one as () => void), reps);
      return `${name} ${a.median.toFixed(1)}/${a.cpu.toFixed(1)} -> ${b.median.toFixed(1)}/${b.cpu.toFixed(1)}`;
    });
    console.log(`  C=${c}: ${parts.join('; ')}`);
    tf.dispose([x, dr, gamma, beta, mean, variance, invStd, scale, shift, r]);
  }
}

const PYTORCH_INFER_SCRIPT = `
import json, sys, time, torch, torchvision
threads, batch, reps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
m = torchvision.models.densenet121().eval().to(memory_format=torch.channels_last)
x = torch.randn(batch, 3, 224, 224).to(memory_format=torch.channels_last)
with torch.inference_mode():
    m(x)
    ts, cs = [], []
    for _ in range(reps):
        c = time.process_time(); t = time.perf_counter(); m(x)
        ts.append((time.perf_counter() - t) * 1e3); cs.append((time.process_time() - c) * 1e3)
ts.sort(); cs.sort()
print(json.dumps({"median": ts[len(ts) // 2], "min": ts[0], "cpu": cs[len(cs) // 2]}))
`;

/** DenseNet-121 inference (batch 8, 224x224) on torch-cpu and PyTorch, interleaved. */
async function inferenceTimes(batch: number, reps: number): Promise<void> {
  console.log(`\nDenseNet-121 inference, batch ${batch}, 224x224, ms per batch over ${reps} runs`);
  const show = (label: string, t: Timing | string) => console.log(typeof t === 'string' ? `  ${label}: ${t}` :
    `  ${label}: wall ${t.median.toFixed(0)} (min ${t.min.toFixed(0)}) ms, cpu ${t.cpu.toFixed(0)} ms`);
  const python = findPython();
  for (const threads of [1, 2]) {
    await init('torch-cpu', { log: null });
    setTorchCpuThreads(threads);
    const model = zoo.create('densenet121');
    const x = tf.randomNormal([batch, 224, 224, 3]);
    show(`torch-cpu ${threads}t`, timeMs(() => tf.tidy(() => { (model.predict(x) as tf.Tensor).dataSync(); }), reps));
    tf.dispose(x);
    model.dispose();
    if (flag('--no-python') || !python) continue;
    const r = spawnSync(python, ['-c', PYTORCH_INFER_SCRIPT, String(threads), String(batch), String(reps)], { encoding: 'utf8' });
    show(`PyTorch ${threads}t (channels-last)`, r.status === 0 ? JSON.parse(r.stdout.trim().split('\n').pop()!) : `failed: ${r.stderr.trim().split('\n').pop()}`);
  }
}

async function main(): Promise<void> {
  registerTorchCpuBackend();
  const info = torchCpuInfo();
  if (!info.available) {
    console.log(`torch-cpu is not available: ${info.reason}`);
    return;
  }
  const reps = argValue('--reps', 20);
  console.log(`batch ${BATCH}, ${SIZE}x${SIZE}, NHWC, 'same' padding; libtorch ${info.torchVersion}; node ${process.version}`);
  if (!flag('--no-kernels')) {
    const columns: Record<string, Column> = {};
    columns['wasm'] = await tfjsColumn('wasm', null, reps);
    columns['torch-cpu 1t'] = await tfjsColumn('torch-cpu', 1, reps);
    columns['torch-cpu 2t'] = await tfjsColumn('torch-cpu', 2, reps);
    const py = flag('--no-python') ? 'PyTorch: skipped (--no-python)' : pytorchColumns(reps);
    if (typeof py === 'string') console.log(py);
    else Object.assign(columns, py.cols);
    printTable(columns);
    if (typeof py !== 'string') console.log(`PyTorch ${py.version}`);
  }
  if (flag('--fused')) await fusedComparison(reps);
  if (flag('--profile')) await profileStep(64);
  if (flag('--step')) await stepTimes(64, argValue('--step-reps', 3));
  if (flag('--infer')) await inferenceTimes(8, argValue('--step-reps', 3));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
