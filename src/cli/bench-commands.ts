// `bench memory`, `bench speed`, `bench kernels` and `bench depth`.
import * as fs from 'fs';
import * as path from 'path';
import { Command } from 'commander';
import * as zoo from '../zoo';
import { BenchOptions, MemoryBenchResult, ModeMeasurement, benchMemory, benchSpeed, stepTimeline, zooFactory } from '../measure/memory';
import { timelineReport } from '../measure/tensor-timeline';
import * as tf from '../tf';
import { depthSweep } from '../measure/depth-sweep';
import { kernelTable, profileKernels } from '../measure/kernel-profile';
import { formatPlan, parseBytes, planMemory } from '../measure/planner';
import { lineChart, saveHtml } from '../viz';
import { initBackend } from './zoo-commands';
import { addArchitectureFlags, architectureOptions, ArchitectureFlags, parseInputShape, parseList, parsePositiveInt } from './model-flags';

const MB = 1e6;

function isMeasured(m: ModeMeasurement | { error: string }): m is ModeMeasurement {
  return 'peakBytes' in m;
}

function modeCells(m: ModeMeasurement | { error: string }): string[] {
  if (!isMeasured(m)) return [`failed: ${m.error}`, '', '', '', '', ''];
  return [
    (m.peakBytes / MB).toFixed(1), (m.bytesPerImage / MB).toFixed(2), (m.peakBufferBytes / MB).toFixed(1), (m.bufferBytesPerImage / MB).toFixed(2),
    m.msPerStep.toFixed(0), `${m.tensorsAfterStep2}/${m.tensorsAfterLastStep}`,
  ];
}

/**
 * Per mode: tfjs's peak count and per image; allocated (distinct buffers) peak and the MB each image
 * adds to what is there before the step; the median step time; tensors alive after steps 2 and last.
 */
export function memoryTable(results: MemoryBenchResult[]): string {
  const header = '| model | batch | input | ' + ['naive', 'efficient'].map((m) =>
    `${m} peak MB (tfjs count) | ${m} MB/image | ${m} allocated MB | ${m} allocated MB/image | ${m} ms/step | ${m} tensors`).join(' | ') + ' | peak ratio | time ratio |';
  const rule = '|' + header.split('|').slice(1, -1).map(() => '---').join('|') + '|';
  const rows = results.map((r) => `| ${[
    r.model, r.batch, r.input.join('x'), ...modeCells(r.naive), ...modeCells(r.efficient),
    r.peakRatio?.toFixed(3) ?? '', r.timeRatio?.toFixed(3) ?? '',
  ].join(' | ')} |`);
  return [header, rule, ...rows].join('\n');
}

interface MemoryFlags {
  batch: number;
  input?: [number, number, number];
  classes?: number;
  steps: number;
  timeline?: string | true;
  top: number;
  json?: boolean;
}

async function timelineCommand(name: string, options: BenchOptions, opts: MemoryFlags): Promise<void> {
  const make = zooFactory(name, options);
  const timelines = { naive: await stepTimeline(make, false, options.batch), efficient: await stepTimeline(make, true, options.batch) };
  const result = { model: name, batch: options.batch, backend: tf.getBackend(), ...timelines };
  if (typeof opts.timeline === 'string') fs.writeFileSync(opts.timeline, JSON.stringify(result) + '\n');
  process.stdout.write((opts.json ? JSON.stringify(result, null, 2) : timelineReport(result, opts.top)) + '\n');
}

export function registerBenchCommands(program: Command): void {
  const bench = program.command('bench').description('memory and speed benchmarks (print numbers; no pass/fail)');

  addArchitectureFlags(bench
    .command('memory <name>')
    .description('training steps naive and memory-efficient: peak tensor bytes, bytes per image, ms per step (median of steps taken in turn)')
    .requiredOption('--batch <n>', 'batch size', parsePositiveInt('--batch'))
    .option('--input <HxWxC>', 'input size', parseInputShape)
    .option('--classes <n>', 'number of classes', parsePositiveInt('--classes'))
    .option('--steps <n>', 'timed steps per mode, after two warm-up steps, naive and efficient in turn', parsePositiveInt('--steps'), 5)
    .option('--timeline [file]', 'instead: every tensor of one step of each mode, and what is alive at the peak (JSON to file)')
    .option('--top <n>', 'with --timeline: groups of live tensors listed', parsePositiveInt('--top'), 12)
    .option('--json', 'machine-readable output'))
    .action(async (name: string, opts: ArchitectureFlags & MemoryFlags) => {
      zoo.info(name);
      await initBackend(program);
      const options = { ...architectureOptions(opts), batch: opts.batch, inputShape: opts.input, numClasses: opts.classes, steps: opts.steps };
      if (opts.timeline !== undefined) return timelineCommand(name, options, opts);
      const r = await benchMemory(name, options);
      process.stdout.write((opts.json ? JSON.stringify(r, null, 2) : memoryTable([r])) + '\n');
    });

  addArchitectureFlags(bench
    .command('speed <name>')
    .description('training and inference images per second')
    .requiredOption('--batch <n>', 'batch size', parsePositiveInt('--batch'))
    .option('--steps <n>', 'timed steps', parsePositiveInt('--steps'), 3)
    .option('--input <HxWxC>', 'input size', parseInputShape)
    .option('--efficient', 'memory-efficient mode')
    .option('--no-train', 'measure inference only')
    .option('--json', 'machine-readable output'))
    .action(async (name: string, opts: ArchitectureFlags & { batch: number; steps: number; input?: [number, number, number]; efficient?: boolean; train: boolean; json?: boolean }) => {
      zoo.info(name);
      await initBackend(program);
      const r = await benchSpeed(name, { ...architectureOptions(opts), batch: opts.batch, steps: opts.steps, inputShape: opts.input, memoryEfficient: !!opts.efficient, train: opts.train });
      const train = r.trainImagesPerSec === undefined ? '' : `train ${r.trainImagesPerSec.toFixed(2)} images/s, `;
      process.stdout.write((opts.json ? JSON.stringify(r, null, 2)
        : `${r.model} batch ${r.batch} ${r.input.join('x')} on ${r.backend}${r.memoryEfficient ? ' (efficient)' : ''}: ` +
          `${train}inference ${r.inferenceImagesPerSec.toFixed(2)} images/s (${r.inferenceMsPerBatch.toFixed(0)} ms per batch)`) + '\n');
    });

  addArchitectureFlags(bench
    .command('kernels <name>')
    .description('per-kernel time of a training step (tf.profile), naive against memory-efficient')
    .requiredOption('--batch <n>', 'batch size', parsePositiveInt('--batch'))
    .option('--input <HxWxC>', 'input size', parseInputShape)
    .option('--steps <n>', 'profiled steps to average', parsePositiveInt('--steps'), 2)
    .option('--top <n>', 'kernels listed (the rest are summed)', parsePositiveInt('--top'), 15)
    .option('--json', 'machine-readable output'))
    .action(async (name: string, opts: ArchitectureFlags & { batch: number; input?: [number, number, number]; steps: number; top: number; json?: boolean }) => {
      zoo.info(name);
      await initBackend(program);
      const r = await profileKernels(name, { ...architectureOptions(opts), batch: opts.batch, inputShape: opts.input, steps: opts.steps });
      process.stdout.write((opts.json ? JSON.stringify(r, null, 2) : kernelTable(r, opts.top)) + '\n');
    });

  bench
    .command('depth')
    .description('memory against depth for DenseNet-BC (table + plot): naive grows quadratically, efficient linearly')
    .option('--depths <list>', 'depths L', parseList('--depths'), [40, 64, 100, 148, 190, 250])
    .option('--growth <k>', 'growth rate', parsePositiveInt('--growth'), 12)
    .option('--batch <n>', 'batch size', parsePositiveInt('--batch'), 8)
    .option('--input <HxWxC>', 'input size', parseInputShape, [32, 32, 3])
    .option('--out <dir>', 'where to write depth-sweep.md, .json and .html', 'bench-results')
    .option('--json', 'print JSON instead of the table')
    .action(async (opts: { depths: number[]; growth: number; batch: number; input: [number, number, number]; out: string; json?: boolean }) => {
      await initBackend(program);
      const results = await depthSweep({ depths: opts.depths, growthRate: opts.growth, batch: opts.batch, inputShape: opts.input },
        (r) => process.stderr.write(`  ${r.model}: naive ${isMeasured(r.naive) ? (r.naive.peakBytes / MB).toFixed(0) : 'failed'} MB, ` +
          `efficient ${isMeasured(r.efficient) ? (r.efficient.peakBytes / MB).toFixed(0) : 'failed'} MB\n`));
      fs.mkdirSync(opts.out, { recursive: true });
      const table = memoryTable(results);
      fs.writeFileSync(path.join(opts.out, 'depth-sweep.md'), table + '\n');
      fs.writeFileSync(path.join(opts.out, 'depth-sweep.json'), JSON.stringify(results, null, 2) + '\n');
      const depths = results.map((r) => Number(/bc-(\d+)-/.exec(r.model)![1]));
      const series = (['naive', 'efficient'] as const).map((mode) => ({
        name: mode,
        x: depths,
        y: results.map((r) => (isMeasured(r[mode]) ? (r[mode] as ModeMeasurement).peakBytes / MB : NaN)),
      }));
      saveHtml(lineChart(series, {
        title: `DenseNet-BC k=${opts.growth}, batch ${opts.batch}: peak training memory against depth`,
        xTitle: 'depth L', yTitle: 'peak tensor memory (MB)',
      }), path.join(opts.out, 'depth-sweep.html'));
      process.stdout.write((opts.json ? JSON.stringify(results, null, 2) : table) + '\n');
    });
}

/** The planner runs the real step on data-less tensors, but the input batch is still one typed array: bound it. */
const MAX_PLANNED_INPUT_VALUES = 2 ** 31;

function checkPlannable(name: string, opts: ArchitectureFlags & { input?: [number, number, number] | [number, number]; classes?: number; batch: number }): void {
  const [h, w, c] = zoo.resolve(name, { ...architectureOptions(opts), inputShape: opts.input, numClasses: opts.classes }).spec.inputShape;
  const values = opts.batch * h * w * c;
  if (values > MAX_PLANNED_INPUT_VALUES) {
    throw new Error(`--batch ${opts.batch} of ${h}x${w}x${c} inputs is ${values.toExponential(2)} values; the planner takes input batches of at most ${MAX_PLANNED_INPUT_VALUES} values (2^31)`);
  }
}

export function registerPlanCommand(program: Command): void {
  addArchitectureFlags(program
    .command('plan <name>')
    .description('predict peak training memory (naive and efficient) from the architecture, and the largest batch that fits')
    .option('--input <HxWxC>', 'input size', parseInputShape)
    .option('--classes <n>', 'number of classes', parsePositiveInt('--classes'))
    .option('--batch <n>', 'batch size to predict the peak for', parsePositiveInt('--batch'), 64)
    .option('--budget <size>', 'memory budget, e.g. 8GB, 512MB, 2GiB', '8GB')
    .option('--json', 'machine-readable output'))
    .action(async (name: string, opts: ArchitectureFlags & { input?: [number, number, number]; classes?: number; batch: number; budget: string; json?: boolean }) => {
      zoo.info(name);
      const budgetBytes = parseBytes(opts.budget);
      if (!Number.isSafeInteger(budgetBytes)) throw new Error(`--budget '${opts.budget}': expected a size below ${Number.MAX_SAFE_INTEGER} bytes`);
      checkPlannable(name, opts);
      await initBackend(program);
      const p = await planMemory(name, { ...architectureOptions(opts), batch: opts.batch, budgetBytes, inputShape: opts.input, numClasses: opts.classes });
      process.stdout.write((opts.json ? JSON.stringify(p, null, 2) : formatPlan(p)) + '\n');
    });
}
