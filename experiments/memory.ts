// Experiment "memory": the naive-versus-efficient training step, the memory-versus-depth
// sweep and PyTorch on the same machine, each measured peak beside the planner's prediction.
// Writes <out>/memory.{json,md} and <out>/memory-depth.{html,png} (default experiments/results).
//   npm run exp:memory [-- --quick] [-- --out DIR] [-- --no-pytorch]
// Every (model, mode) step runs in a child process of its own, so that the peak resident
// memory is that mode's alone (src/measure/child-process.ts, as bench/side-by-side.ts does).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command } from 'commander';
import { backend as backends, BackendChoice, tf, zoo } from '../src';
import {
  CHILD_FLAG, ChildFailure, DenseNetArch, MODES, Measured, Mode, ModeJob, ModePlan, ModelFactory, PYTHON, densenetBC, depthSweep,
  measureJob, planMemory, printChildResult, pytorchMissing, runInChild, runPyTorchReference, specFactory, zooFactory,
} from '../src/measure';
import { lineChart, lineChartImage, saveHtml, savePng } from '../src/notebook';
import { RESULTS_DIR, writeResultAsync } from './results';

const { init, torchCpuInfo } = backends;

const MB = 1e6;
/** The synthetic batch's seed (trainingHarness). */
const SEED = 1;

/** A model of the experiment: a zoo record and options (DenseNet-BC variants). */
export interface NetSpec {
  label: string;
  /** The zoo record it is built from, with `options` on top. */
  zoo: string;
  options?: zoo.ModelOptions;
  input: [number, number, number];
  batch: number;
  /** Name pytorch_reference.py knows the same architecture by, when it has one. */
  pytorch?: string;
  why: string;
}

export type Outcome = Measured | ChildFailure;

export function isMeasured(o: Outcome | undefined): o is Measured {
  return o !== undefined && 'peakBytes' in o;
}

function factory(spec: NetSpec): ModelFactory {
  return zooFactory(spec.zoo, { ...spec.options, inputShape: spec.input });
}

// ---------------------------------------------------------------------------------------------
// The models of each mode

const MINI_IMAGENET: zoo.ModelOptions = { growthRate: 8, blockLayers: [6, 4, 2, 2], stemChannels: 16, numClasses: 10 };

export function stepModels(quick: boolean): NetSpec[] {
  if (quick) {
    return [
      { label: 'densenet-bc-16-k12', zoo: 'densenet-bc-100-k12', options: { depth: 16 }, input: [32, 32, 3], batch: 4, pytorch: 'densenet-bc-16-k12', why: 'CIFAR DenseNet-BC (quick: L=16)' },
      { label: 'densenet-mini-imagenet', zoo: 'densenet121', options: MINI_IMAGENET, input: [64, 64, 3], batch: 2, why: 'ImageNet-style DenseNet (quick: k=8, blocks 6-4-2-2)' },
      { label: 'fc-densenet56', zoo: 'fc-densenet56', input: [32, 32, 3], batch: 2, why: 'FC-DenseNet (quick: 32x32)' },
    ];
  }
  return [
    { label: 'densenet-bc-100-k12', zoo: 'densenet-bc-100-k12', input: [32, 32, 3], batch: 64, pytorch: 'densenet-bc-100-k12', why: 'CIFAR DenseNet-BC, the technical report\'s model and batch' },
    { label: 'densenet121', zoo: 'densenet121', input: [112, 112, 3], batch: 8, pytorch: 'densenet121', why: 'ImageNet DenseNet at reduced size (112x112)' },
    { label: 'fc-densenet103', zoo: 'fc-densenet103', input: [224, 224, 3], batch: 2, why: 'FC-DenseNet, the Tiramisu crop size' },
  ];
}

export interface SweepSettings {
  depths: number[];
  growthRate: number;
  batch: number;
  input: [number, number, number];
}

export function sweepSettings(quick: boolean): SweepSettings {
  return quick
    ? { depths: [10, 16, 22], growthRate: 12, batch: 2, input: [32, 32, 3] }
    : { depths: [40, 64, 100, 148, 190, 250], growthRate: 12, batch: 16, input: [32, 32, 3] };
}

// ---------------------------------------------------------------------------------------------
// Child process: one mode of one model

interface ChildJob extends ModeJob {
  backend: string;
}

async function runChild(job: ChildJob): Promise<void> {
  await init(job.backend, { log: null });
  printChildResult(await measureJob(job));
}

function measureInChild(spec: NetSpec, mode: Mode, steps: number, backend: string): Outcome {
  const job: ChildJob = { zoo: spec.zoo, options: spec.options, input: spec.input, batch: spec.batch, mode, steps, backend };
  return runInChild<Measured>(__filename, job);
}

// ---------------------------------------------------------------------------------------------
// Planner

export interface PlannedMode {
  peakBytes: number;
  peakBufferBytes: number;
  bytesPerImage: number;
  fixedBytes: number;
}

function planned(p: ModePlan): PlannedMode {
  return { peakBytes: p.peakBytes, peakBufferBytes: p.peakBufferBytes, bytesPerImage: p.bytesPerImage, fixedBytes: p.fixedBytes };
}

async function plan(label: string, make: ModelFactory, batch: number, input: [number, number, number]): Promise<Record<Mode, PlannedMode> | { error: string }> {
  try {
    // Budget 0: no largest-batch search, only the prediction at `batch` (and the slope).
    const p = await planMemory(label, { batch, budgetBytes: 0, inputShape: input }, make);
    return { naive: planned(p.naive), efficient: planned(p.efficient) };
  } catch (err) {
    return { error: (err as Error).message.split('\n')[0] };
  }
}

/** (predicted - measured) / measured, in percent. */
export function errorPct(predicted: number, measured: number): number {
  return (100 * (predicted - measured)) / measured;
}

// ---------------------------------------------------------------------------------------------
// Fits: naive memory should grow quadratically with the number of dense layers, efficient linearly

export interface Fit {
  /** Coefficients, constant term first. */
  coefficients: number[];
  r2: number;
}

/** Least-squares polynomial of `degree` through (x, y); needs more than `degree` points. */
export function polyfit(x: number[], y: number[], degree: number): Fit {
  const n = degree + 1;
  if (x.length !== y.length) throw new Error(`polyfit: ${x.length} x values and ${y.length} y values`);
  if (x.length < n) throw new Error(`polyfit: degree ${degree} needs at least ${n} points, got ${x.length}`);
  // Normal equations A c = b with A[i][j] = sum x^(i+j), b[i] = sum y x^i; x is scaled for conditioning.
  const scale = Math.max(...x.map(Math.abs)) || 1;
  const xs = x.map((v) => v / scale);
  const a = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => xs.reduce((s, v) => s + v ** (i + j), 0)));
  const b = Array.from({ length: n }, (_, i) => xs.reduce((s, v, k) => s + y[k] * v ** i, 0));
  const c = solve(a, b).map((v, i) => v / scale ** i);
  const predict = (v: number) => c.reduce((s, ci, i) => s + ci * v ** i, 0);
  const mean = y.reduce((s, v) => s + v, 0) / y.length;
  const ssTot = y.reduce((s, v) => s + (v - mean) ** 2, 0);
  const ssRes = y.reduce((s, v, k) => s + (v - predict(x[k])) ** 2, 0);
  return { coefficients: c, r2: ssTot === 0 ? 1 : 1 - ssRes / ssTot };
}

/** Gaussian elimination with partial pivoting. */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]]);
  for (let col = 0; col < n; col++) {
    const pivot = m.slice(col).reduce((best, row, i) => (Math.abs(row[col]) > Math.abs(m[best][col]) ? col + i : best), col);
    [m[col], m[pivot]] = [m[pivot], m[col]];
    if (Math.abs(m[col][col]) < 1e-300) throw new Error('polyfit: singular system (repeated x values?)');
    for (let r = col + 1; r < n; r++) {
      const f = m[r][col] / m[col][col];
      for (let k = col; k <= n; k++) m[r][k] -= f * m[col][k];
    }
  }
  const out = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) out[r] = (m[r][n] - m[r].slice(r + 1, n).reduce((s, v, k) => s + v * out[r + 1 + k], 0)) / m[r][r];
  return out;
}

export function evalPoly(c: number[], x: number): number {
  return c.reduce((s, ci, i) => s + ci * x ** i, 0);
}

export interface GrowthFit {
  linear: Fit;
  quadratic?: Fit;
  /** Share of the quadratic term in the quadratic fit's value at the deepest model. */
  quadraticShareAtDeepest?: number;
  /** MB per added dense layer between consecutive depths. */
  mbPerAddedLayer: number[];
}

export function growthFit(layers: number[], peakMB: number[]): GrowthFit {
  const linear = polyfit(layers, peakMB, 1);
  const mbPerAddedLayer = layers.slice(1).map((n, i) => (peakMB[i + 1] - peakMB[i]) / (n - layers[i]));
  if (layers.length < 3) return { linear, mbPerAddedLayer };
  const quadratic = polyfit(layers, peakMB, 2);
  const deepest = Math.max(...layers);
  const share = (quadratic.coefficients[2] * deepest ** 2) / evalPoly(quadratic.coefficients, deepest);
  return { linear, quadratic, quadraticShareAtDeepest: share, mbPerAddedLayer };
}

// ---------------------------------------------------------------------------------------------
// PyTorch

/** Threads our backend computes with, which PyTorch is given too. */
function backendThreads(b: BackendChoice): { threads: number; how: string } {
  if (b.name === 'torch-cpu') {
    const t = torchCpuInfo().threads ?? 1;
    return { threads: t, how: `torch-cpu's libtorch threads (${t}; DENSENET_THREADS sets them)` };
  }
  if (b.name === 'wasm' || b.name === 'cpu') return { threads: 1, how: `${b.name} is single-threaded` };
  return { threads: os.cpus().length, how: `${b.name}: libtensorflow uses every core` };
}

// ---------------------------------------------------------------------------------------------
// Tables

const mb = (b: number | undefined, digits = 1) => (b === undefined || !Number.isFinite(b) ? '' : (b / MB).toFixed(digits));
const pct = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '' : `${v >= 0 ? '+' : ''}${v.toFixed(1)}%`);

export interface StepRecord {
  spec: NetSpec;
  naive: Outcome;
  efficient: Outcome;
  plan: Record<Mode, PlannedMode> | { error: string };
  planErrorPct: Partial<Record<Mode, number>>;
  peakRatio?: number;
  timeRatio?: number;
}

function stepTable(records: StepRecord[]): string {
  const lines = [
    '| model | input | batch | mode | peak tensor MB | MB/image | planner MB | planner error | allocated MB | allocated MB/image | planner allocated MB | ms/step | peak RSS MB | efficient/naive memory | efficient/naive time |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of records) {
    for (const mode of MODES) {
      const m = r[mode];
      const p = 'error' in r.plan ? undefined : r.plan[mode];
      const head = `| ${r.spec.label} | ${r.spec.input.join('x')} | ${r.spec.batch} | ${mode}`;
      const ratios = mode === 'efficient' ? `${r.peakRatio?.toFixed(3) ?? ''} | ${r.timeRatio?.toFixed(3) ?? ''}` : ' | ';
      lines.push(isMeasured(m)
        ? `${head} | ${mb(m.peakBytes)} | ${mb(m.bytesPerImage, 2)} | ${mb(p?.peakBytes)} | ${pct(r.planErrorPct[mode])} | ` +
          `${mb(m.peakBufferBytes)} | ${mb(m.bufferBytesPerImage, 2)} | ${mb(p?.peakBufferBytes)} | ${m.msPerStep.toFixed(0)} | ${mb(m.maxRssBytes, 0)} | ${ratios} |`
        : `${head} | failed: ${m.error} | | ${mb(p?.peakBytes)} | | | | ${mb(p?.peakBufferBytes)} | | | | |`);
    }
  }
  for (const ref of REFERENCE) {
    lines.push(`| ${ref.label} | 32x32x3 | 64 | ${ref.mode} | ${ref.memoryMB} (whole process) | ${(ref.memoryMB / 64).toFixed(1)} | | | | | | ${ref.msPerStep} | | ` +
      `${ref.mode === 'efficient' ? `${ref.peakRatio.toFixed(3)} | ${ref.timeRatio.toFixed(3)}` : ' | '} |`);
  }
  return lines.join('\n');
}

/** The technical report's figures (arXiv 1707.06990, numbers.md): GPU, whole-process memory, DenseNet-BC-100 batch 64. */
const REFERENCE = (() => {
  const rows = [
    { label: 'reference: technical report, PyTorch on a GPU', naive: { mb: 2863, ms: 165 }, efficient: { mb: 1605, ms: 207 } },
    { label: 'reference: original LuaTorch, shared buffers, GPU', naive: { mb: 5453, ms: 153 }, efficient: { mb: 1655, ms: 175 } },
  ];
  return rows.flatMap((r) => MODES.map((mode) => ({
    label: r.label, mode, memoryMB: r[mode].mb, msPerStep: r[mode].ms,
    peakRatio: r.efficient.mb / r.naive.mb, timeRatio: r.efficient.ms / r.naive.ms,
  })));
})();

export interface SweepRow {
  depth: number;
  denseLayers: number;
  naive?: number;
  efficient?: number;
  errors: Partial<Record<Mode, string>>;
  plan: Partial<Record<Mode, number>>;
}

function sweepTable(rows: SweepRow[], fits: Partial<Record<Mode, GrowthFit>>): string {
  const lines = [
    '| depth L | dense layers | naive peak MB | efficient peak MB | efficient/naive | planner naive MB (error) | planner efficient MB (error) | naive MB per added layer | efficient MB per added layer |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  rows.forEach((r, i) => {
    const cell = (mode: Mode) => r[mode] !== undefined ? mb(r[mode]) : `failed: ${r.errors[mode] ?? ''}`;
    const planCell = (mode: Mode) => r.plan[mode] === undefined ? '' : `${mb(r.plan[mode])} (${r[mode] === undefined ? '' : pct(errorPct(r.plan[mode]!, r[mode]!))})`;
    const perLayer = (mode: Mode) => (i === 0 ? '' : fits[mode]?.mbPerAddedLayer[i - 1]?.toFixed(2) ?? '');
    const ratio = r.naive !== undefined && r.efficient !== undefined ? (r.efficient / r.naive).toFixed(3) : '';
    lines.push(`| ${r.depth} | ${r.denseLayers} | ${cell('naive')} | ${cell('efficient')} | ${ratio} | ${planCell('naive')} | ${planCell('efficient')} | ${perLayer('naive')} | ${perLayer('efficient')} |`);
  });
  return lines.join('\n');
}

function fitLines(fits: Partial<Record<Mode, GrowthFit>>): string {
  const out: string[] = [];
  for (const mode of MODES) {
    const f = fits[mode];
    if (!f) continue;
    const [a, b] = f.linear.coefficients;
    let line = `- ${mode}: linear fit ${a.toFixed(1)} + ${b.toFixed(3)}·n MB (R² ${f.linear.r2.toFixed(4)})`;
    if (f.quadratic) {
      const [qa, qb, qc] = f.quadratic.coefficients;
      line += `; quadratic fit ${qa.toFixed(1)} + ${qb.toFixed(3)}·n + ${qc.toFixed(5)}·n² MB (R² ${f.quadratic.r2.toFixed(4)}), ` +
        `the n² term is ${(100 * f.quadraticShareAtDeepest!).toFixed(1)}% of the deepest model's peak`;
    }
    out.push(line);
  }
  return out.join('\n');
}

interface PyTorchRecord {
  model: string;
  input: string;
  batch: number;
  threads: number;
  mode: Mode;
  implementation: string;
  result: { msPerStep: number; trainImagesPerSec: number; peakTensorBytes?: number; maxRssBytes: number } | { error: string };
}

function pytorchTable(rows: PyTorchRecord[]): string {
  const lines = [
    '| implementation | model | input | batch | threads | mode | ms/step | train img/s | peak tensor MB | peak RSS MB |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const head = `| ${r.implementation} | ${r.model} | ${r.input} | ${r.batch} | ${r.threads} | ${r.mode}`;
    lines.push('error' in r.result ? `${head} | ${r.result.error} | | | |`
      : `${head} | ${r.result.msPerStep.toFixed(0)} | ${r.result.trainImagesPerSec.toFixed(2)} | ${mb(r.result.peakTensorBytes)} | ${mb(r.result.maxRssBytes, 0)} |`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// The three parts

async function stepPart(specs: NetSpec[], backend: string, steps: number): Promise<StepRecord[]> {
  const records: StepRecord[] = [];
  for (const spec of specs) {
    const [naive, efficient] = MODES.map((mode) => {
      progress(`${spec.label} batch ${spec.batch} ${spec.input.join('x')}: ${mode} step`);
      return measureInChild(spec, mode, steps, backend);
    });
    progress(`${spec.label}: planner`);
    const p = await plan(spec.label, factory(spec), spec.batch, spec.input);
    const planErrorPct: Partial<Record<Mode, number>> = {};
    for (const mode of MODES) {
      const m = mode === 'naive' ? naive : efficient;
      if (isMeasured(m) && !('error' in p)) planErrorPct[mode] = errorPct(p[mode].peakBytes, m.peakBytes);
    }
    const both = isMeasured(naive) && isMeasured(efficient);
    records.push({
      spec, naive, efficient, plan: p, planErrorPct,
      ...(both ? { peakRatio: efficient.peakBytes / naive.peakBytes, timeRatio: efficient.msPerStep / naive.msPerStep } : {}),
    });
  }
  return records;
}

async function sweepPart(s: SweepSettings): Promise<{ rows: SweepRow[]; fits: Partial<Record<Mode, GrowthFit>> }> {
  progress(`depth sweep: DenseNet-BC k=${s.growthRate}, L = ${s.depths.join(', ')}, batch ${s.batch}`);
  // Memory is the point here: one timed step after the profiled one is enough.
  const results = await depthSweep({ depths: s.depths, growthRate: s.growthRate, batch: s.batch, inputShape: s.input, steps: 1 },
    (r) => progress(`  ${r.model}: naive ${'peakBytes' in r.naive ? mb(r.naive.peakBytes, 0) : 'failed'} MB, efficient ${'peakBytes' in r.efficient ? mb(r.efficient.peakBytes, 0) : 'failed'} MB`));
  const rows: SweepRow[] = [];
  for (const [i, depth] of s.depths.entries()) {
    const r = results[i];
    const bc = densenetBC(depth, s.growthRate, s.input);
    const p = await plan(r.model, specFactory(bc.spec), s.batch, s.input);
    const row: SweepRow = { depth, denseLayers: (bc.arch as DenseNetArch).blockLayers.reduce((a, b) => a + b, 0), errors: {}, plan: {} };
    for (const mode of MODES) {
      const m = r[mode];
      if ('peakBytes' in m) row[mode] = m.peakBytes;
      else row.errors[mode] = m.error;
      if (!('error' in p)) row.plan[mode] = p[mode].peakBytes;
    }
    rows.push(row);
  }
  const fits: Partial<Record<Mode, GrowthFit>> = {};
  for (const mode of MODES) {
    const ok = rows.filter((r) => r[mode] !== undefined);
    if (ok.length >= 2) fits[mode] = growthFit(ok.map((r) => r.denseLayers), ok.map((r) => r[mode]! / MB));
  }
  return { rows, fits };
}

function sweepPlots(rows: SweepRow[], fits: Partial<Record<Mode, GrowthFit>>, s: SweepSettings, out: string): string[] {
  const measured = MODES.map((mode) => {
    const ok = rows.filter((r) => r[mode] !== undefined);
    return { name: `${mode} (measured)`, x: ok.map((r) => r.depth), y: ok.map((r) => r[mode]! / MB) };
  }).filter((m) => m.x.length > 0);
  // Fitted curves on a fine grid of depths; n = (L - 4) / 2 dense layers for DenseNet-BC.
  const lo = Math.min(...rows.map((r) => r.depth));
  const hi = Math.max(...rows.map((r) => r.depth));
  const grid = Array.from({ length: 25 }, (_, i) => lo + ((hi - lo) * i) / 24);
  const fitted = MODES.flatMap((mode) => {
    const f = fits[mode];
    if (!f) return [];
    const best = mode === 'naive' && f.quadratic ? { fit: f.quadratic, kind: 'quadratic' } : { fit: f.linear, kind: 'linear' };
    return [{ name: `${mode}: ${best.kind} fit in layers`, x: grid, y: grid.map((L) => evalPoly(best.fit.coefficients, (L - 4) / 2)) }];
  });
  const title = `DenseNet-BC k=${s.growthRate}, batch ${s.batch}, ${s.input.join('x')}: peak training memory against depth`;
  const axes = { title, xTitle: 'depth L', yTitle: 'peak tensor memory (MB)' };
  const html = saveHtml(lineChart([...measured, ...fitted], axes), path.join(out, 'memory-depth.html'));
  const png = savePng(lineChartImage([...measured, ...fitted.map((f) => ({ ...f, dash: true }))], { ...axes, markers: false }), path.join(out, 'memory-depth.png'));
  return [path.basename(html), path.basename(png)];
}

/** One PyTorch row: measured, or the reason it was not (no counterpart, no torch, a failure). */
function pytorchRow(spec: NetSpec, mode: Mode, threads: number, steps: number, missing: string | null): Pick<PyTorchRecord, 'implementation' | 'result'> {
  const implementation = `PyTorch${mode === 'efficient' ? ' memory_efficient=True' : ''}`;
  if (!spec.pytorch) {
    const why = spec.zoo.startsWith('fc-') ? 'torchvision has no FC-DenseNet' : 'scripts/bench/pytorch_reference.py builds CIFAR DenseNet-BC and torchvision DenseNets only';
    return { implementation, result: { error: `no PyTorch counterpart (${why})` } };
  }
  if (missing) return { implementation, result: { error: `PyTorch not run: ${missing}` } };
  progress(`${spec.label}: PyTorch ${mode}`);
  const py = runPyTorchReference({ model: spec.pytorch, batch: spec.batch, input: spec.input, mode, threads, steps });
  if ('error' in py) return { implementation, result: py };
  return {
    implementation: `${py.framework}${mode === 'efficient' ? ' memory_efficient=True' : ''}`,
    result: { msPerStep: py.msPerStep, trainImagesPerSec: py.trainImagesPerSec, maxRssBytes: py.maxRssBytes },
  };
}

function pytorchPart(records: StepRecord[], backend: BackendChoice, steps: number, enabled: boolean): { threads: number; how: string; python: string; rows: PyTorchRecord[] } {
  const { threads, how } = backendThreads(backend);
  const rows: PyTorchRecord[] = [];
  const missing = enabled ? pytorchMissing() : 'skipped (--no-pytorch)';
  for (const r of records) {
    const common = { model: r.spec.label, input: r.spec.input.join('x'), batch: r.spec.batch, threads };
    for (const mode of MODES) {
      const m = r[mode];
      rows.push({ ...common, mode, implementation: `densenet-zoo (${backend.name}, tfjs ${tf.version_core})`,
        result: isMeasured(m) ? { msPerStep: m.msPerStep, trainImagesPerSec: (1000 * r.spec.batch) / m.msPerStep, peakTensorBytes: m.peakBytes, maxRssBytes: m.maxRssBytes } : m });
    }
    for (const mode of MODES) rows.push({ ...common, mode, ...pytorchRow(r.spec, mode, threads, steps, missing) });
  }
  return { threads, how, python: PYTHON, rows };
}

// ---------------------------------------------------------------------------------------------

function progress(line: string): void {
  process.stderr.write(`[memory] ${line}\n`);
}

/** How this run was started, for the results file. */
export function commandLine(script: string): string {
  const args = process.argv.slice(2);
  return `npm run ${script}${args.length ? ` -- ${args.join(' ')}` : ''}`;
}

interface Options {
  quick?: boolean;
  out: string;
  pytorch: boolean;
  steps?: number;
  backend?: string;
  child?: string;
}

async function main(): Promise<void> {
  const opts = new Command()
    .option('--quick', 'tiny models and batches (seconds; what the tests run)')
    .option('--out <dir>', 'results folder', RESULTS_DIR)
    .option('--no-pytorch', 'leave out the PyTorch rows')
    .option('--steps <n>', 'timed steps after the profiled one (default 5, quick 1)', Number)
    .option('--backend <name>', 'tfjs backend (default: the one src/backend picks)')
    .option(`${CHILD_FLAG} <job>`, 'internal: measure one mode in this process and print JSON')
    .parse(process.argv)
    .opts<Options>();
  if (opts.child) return runChild(JSON.parse(opts.child) as ChildJob);

  const start = Date.now();
  const quick = !!opts.quick;
  const steps = opts.steps ?? (quick ? 1 : 5);
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps ${opts.steps}: expected a positive integer`);
  const backend = await init(opts.backend, { log: null });
  progress(`backend ${backend.name} (${backend.description})${quick ? ', quick mode' : ''}`);

  const records = await stepPart(stepModels(quick), backend.name, steps);
  const sweep = sweepSettings(quick);
  const { rows, fits } = await sweepPart(sweep);
  fs.mkdirSync(opts.out, { recursive: true });
  const plots = sweepPlots(rows, fits, sweep, opts.out);
  const torch = pytorchPart(records, backend, quick ? 1 : 3, opts.pytorch);

  const planErrors = [
    ...records.flatMap((r) => Object.values(r.planErrorPct)),
    ...rows.flatMap((r) => MODES.filter((m) => r[m] !== undefined && r.plan[m] !== undefined).map((m) => errorPct(r.plan[m]!, r[m]!))),
  ];
  const maxAbsPlanErrorPct = planErrors.length ? Math.max(...planErrors.map(Math.abs)) : undefined;
  const table = [
    `## One training step, naive and memory-efficient (${backend.name})`, '',
    stepTable(records), '',
    `## Peak memory against depth: DenseNet-BC k=${sweep.growthRate}, batch ${sweep.batch}, ${sweep.input.join('x')}`, '',
    sweepTable(rows, fits), '',
    'Fits of peak MB in n = the number of dense layers:', '', fitLines(fits), '',
    `Plots: ${plots.join(', ')}.`, '',
    `## Beside PyTorch on this machine (same model, batch and threads: ${torch.how})`, '',
    pytorchTable(torch.rows),
  ].join('\n');
  const notes = [
    quick ? '**Quick mode**: tiny models and batches that test the script; the figures say nothing about the full-size models.' : '',
    'Peak tensor MB: tf.profile\'s peakBytes during one training step (forward, backward, SGD-Nesterov update), weights and optimizer slots included; 1 MB = 10^6 bytes. ' +
      'Allocated MB: the most bytes of distinct buffers alive during the step (tfjs\'s count adds again every tensor that shares another\'s buffer, such as the clones the gradient tape keeps of saved inputs); ' +
      'allocated MB/image: what each image adds above the weights, optimizer slots and batch there before the step. ' +
      'Peak RSS: the whole process\'s maximum resident memory, each (model, mode) in a process of its own (model building included). ' +
      'Planner: planMemory\'s prediction from a dry run on data-less tensors (npx densenet plan).',
    `The reference rows are the memory-efficient DenseNet technical report's (arXiv 1707.06990): measured on a GPU, whole-process memory (their GB and ms per batch of 64), so they compare in ratio, not in size.`,
    maxAbsPlanErrorPct === undefined ? '' : `Planner against measurement: largest error ${maxAbsPlanErrorPct.toFixed(1)}% over ${planErrors.length} measured peaks (target: within 10%).`,
  ].filter(Boolean).join('\n\n');

  await writeResultAsync('memory', {
    command: commandLine('exp:memory'), backend: backend.name, seed: SEED, wallSeconds: (Date.now() - start) / 1000,
    data: {
      quick, backend, steps, threads: { ours: torch.threads, how: torch.how },
      step: records, reference: REFERENCE,
      sweep: { ...sweep, rows, fits, plots },
      pytorch: { python: torch.python, rows: torch.rows },
      planner: { maxAbsErrorPct: maxAbsPlanErrorPct, within10Pct: maxAbsPlanErrorPct !== undefined && maxAbsPlanErrorPct <= 10, peaksCompared: planErrors.length },
    },
    table, notes,
  }, opts.out);
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`exp:memory: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  });
}
