// `train`, `eval` and `report`: the papers' recipes on the datasets, from the command line.
import { existsSync } from 'fs';
import * as path from 'path';
import { Command, CommanderError, Option } from 'commander';
import * as zoo from '../zoo';
import { DATASET_NAMES, FolderOptions, openDataset, readPaletteFile } from '../data';
import type { Dataset, Split } from '../data/dataset';
import type { MosaicOptions } from '../data/mosaics';
import type { ModelOptions, ModelSpec, ZooModel } from '../zoo';
import type { InferenceStats } from '../layers/unit-variables';
import { MODEL_JSON } from '../weights/file-io';
import {
  abandonCheckpointWrites, loadCheckpointModel, readCheckpointState, isCheckpointDir, LoadedCheckpoint, resolveCheckpointDir,
} from '../train/checkpoint';
import { checkDataMatches, dataSpecFor, modelOptionsForDataset, openDatasetFromSpec } from '../train/data-spec';
import { evaluate, EvalResult } from '../train/evaluate';
import { defaultRecipe, recipeDropRate, recipeInferenceStats, applyOverrides, ConfigOverrides, RECIPE_NAMES, resolveConfig, TrainConfig } from '../train/recipes';
import { OPTIMIZER_NAMES, WEIGHT_DECAY_FORMS, WEIGHT_DECAY_SCOPES } from '../train/optimizers';
import { SCHEDULE_NAMES } from '../train/schedules';
import { defaultReporter, formatDuration, formatMetrics, silentReporter } from '../train/progress';
import { writeRunReport } from '../train/report';
import { LAST, StopSignal, train } from '../train/trainer';
import { initBackend } from './zoo-commands';
import { addParallelFlags, joinIfWorker, launchIfAsked, ParallelFlags, receiveRun, shareRun, stopWhenLauncherGoes } from './data-parallel';
import {
  addArchitectureFlags, architectureOptions, ArchitectureFlags, bnStatsOption, parseFraction, parseInputShape, parseInteger, parseNonNegative, parsePositive, parsePositiveInt,
} from './model-flags';

/** Exit status of a run stopped by Ctrl-C (128 + SIGINT), as shells report it. */
export const INTERRUPTED_EXIT_CODE = 130;

interface TrainFlags extends ArchitectureFlags, ParallelFlags {
  dataset: string;
  data?: string;
  recipe?: string;
  epochs?: number;
  maxSteps?: number;
  batch?: number;
  lr?: number;
  optimizer?: string;
  schedule?: string;
  weightDecay?: number;
  weightDecayScope?: string;
  weightDecayForm?: string;
  momentum?: number;
  nesterov?: boolean;
  augment?: boolean;
  crop?: number;
  efficient?: boolean;
  weights?: string;
  classes?: number;
  freezeBackbone?: boolean;
  backboneLrMult?: number;
  freshHead?: boolean;
  seed?: number;
  logEvery?: number;
  evalLimit?: number;
  evalEvery?: number;
  evalSplit?: Split;
  checkpointEvery?: number;
  mosaicSize?: number;
  mosaicTrain?: number;
  mosaicTest?: number;
  out?: string;
  resume?: boolean;
  input?: [number, number, number] | [number, number];
  valFraction?: number;
  palette?: string;
  ignoreIndex?: number;
  decoder?: 'auto' | 'js' | 'sharp';
  mean?: number[];
  std?: number[];
}

const FOLDER_DATASETS = ['image-folder', 'segmentation-folder'];

/** Where datasets report what they found (segmentation-folder's class frequencies). */
const noteLine = (line: string) => process.stdout.write(`${line}\n`);

function parseIntegerInRange(flag: string, lo: number, hi: number) {
  return (text: string): number => {
    const n = Number(text);
    if (text.trim() === '' || !Number.isInteger(n) || n < lo || n > hi) throw new Error(`${flag} '${text}': expected an integer ${lo}..${hi}`);
    return n;
  };
}

function parseNumberList(flag: string) {
  return (text: string): number[] => {
    const values = text.split(',').map((v) => Number(v.trim()));
    if (values.some((v) => text.trim() === '' || !Number.isFinite(v))) throw new Error(`${flag} '${text}': expected comma-separated numbers, e.g. 0.485,0.456,0.406`);
    return values;
  };
}

/** --mean and --std: both or neither, one value per channel, std positive. */
function flagNormalization(f: Partial<TrainFlags>, channels: number): { mean: number[]; std: number[] } | undefined {
  if (!f.mean && !f.std) return undefined;
  if (!f.mean || !f.std) throw new Error('--mean and --std go together: give both (one value per channel, pixels scaled to 0..1)');
  if (f.mean.length !== channels || f.std.length !== channels) {
    throw new Error(`--mean and --std need ${channels} values each (one per channel of the ${channels}-channel images), got ${f.mean.length} and ${f.std.length}`);
  }
  if (f.std.some((v) => !(v > 0))) throw new Error(`--std ${f.std.join(',')}: every value must be > 0`);
  return { mean: f.mean, std: f.std };
}

/** The folder datasets' options from the flags; a folder flag with another dataset is an error. */
function folderFlags(name: string, all: TrainFlags, recipe: string): FolderOptions | undefined {
  const given = (['input', 'valFraction', 'palette', 'ignoreIndex', 'decoder'] as const).filter((k) => all[k] !== undefined);
  if (!FOLDER_DATASETS.includes(all.dataset)) {
    if (given.length) throw new Error(`--input, --val-fraction, --palette, --ignore-index and --decoder apply to --dataset ${FOLDER_DATASETS.join(' and ')}`);
    return undefined;
  }
  if (all.dataset === 'segmentation-folder') {
    if (all.input || all.decoder) throw new Error('--input and --decoder apply to --dataset image-folder; segmentation-folder trains on its images\' own size (see --crop)');
    return { valFraction: all.valFraction, ignoreIndex: all.ignoreIndex, palette: all.palette ? readPaletteFile(all.palette) : undefined };
  }
  if (all.palette || all.ignoreIndex !== undefined) throw new Error('--palette and --ignore-index apply to --dataset segmentation-folder');
  return {
    inputShape: all.input ?? zoo.info(name).input.shape, valFraction: all.valFraction, decoder: all.decoder,
    augmentation: recipe === 'densenet-imagenet' ? 'imagenet' : 'cifar',
  };
}

/** The flags the user actually typed (commander defaults never count as overrides). */
function given<T extends object>(cmd: Command, flags: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(flags)) {
    if (cmd.getOptionValueSource(k) === 'cli') (out as Record<string, unknown>)[k] = v;
  }
  return out;
}

function configOverrides(f: Partial<TrainFlags>): ConfigOverrides {
  return {
    epochs: f.epochs, maxSteps: f.maxSteps, batchSize: f.batch, lr: f.lr, optimizer: f.optimizer as TrainConfig['optimizer'],
    schedule: f.schedule as TrainConfig['schedule'], weightDecay: f.weightDecay,
    weightDecayScope: f.weightDecayScope as TrainConfig['weightDecayScope'], weightDecayForm: f.weightDecayForm as TrainConfig['weightDecayForm'], momentum: f.momentum, nesterov: f.nesterov,
    augment: f.augment, crop: f.crop, freezeBackbone: f.freezeBackbone, backboneLrMult: f.backboneLrMult, seed: f.seed, logEvery: f.logEvery,
    evalLimit: f.evalLimit, evalEvery: f.evalEvery, checkpointEvery: f.checkpointEvery,
  };
}

function mosaicOptions(f: Partial<TrainFlags>): Omit<MosaicOptions, 'dir' | 'normalization'> {
  const m: Omit<MosaicOptions, 'dir' | 'normalization'> = {};
  if (f.mosaicSize !== undefined) m.size = f.mosaicSize;
  if (f.mosaicTrain !== undefined) m.trainCount = f.mosaicTrain;
  if (f.mosaicTest !== undefined) m.testCount = f.mosaicTest;
  return m;
}

/** Flags that would make a resumed run a different run, with the value the checkpoint has for each. */
function fixedOnResume(state: LoadedCheckpoint['state']): Array<[keyof TrainFlags, string, unknown]> {
  const mosaic = (state.data.mosaic ?? {}) as Record<string, unknown>;
  return [
    ['recipe', '--recipe', state.config.recipe], ['batch', '--batch', state.config.batchSize], ['seed', '--seed', state.config.seed],
    ['depth', '--depth', state.model.depth], ['growth', '--growth', state.model.growthRate], ['dropRate', '--drop-rate', state.model.dropRate],
    ['dropoutPlacement', '--dropout-placement', state.model.dropoutPlacement],
    ['blockLayers', '--block-layers', state.model.blockLayers], ['stemChannels', '--stem-channels', state.model.stemChannels], ['stemNorm', '--stem-norm', state.model.stemNorm],
    ['weights', '--weights', state.initialWeights?.source], ['freezeBackbone', '--freeze-backbone', state.config.freezeBackbone],
    ['freshHead', '--fresh-head', state.initialWeights && !state.initialWeights.headLoaded],
    ['crop', '--crop', state.config.crop], ['optimizer', '--optimizer', state.config.optimizer], ['evalSplit', '--eval-split', state.data.evalSplit],
    ['mosaicSize', '--mosaic-size', mosaic.size], ['mosaicTrain', '--mosaic-train', mosaic.trainCount], ['mosaicTest', '--mosaic-test', mosaic.testCount],
    ['valFraction', '--val-fraction', state.data.folder?.valFraction], ['ignoreIndex', '--ignore-index', state.data.ignoreLabel],
    ['mean', '--mean', state.data.normalization.mean], ['std', '--std', state.data.normalization.std],
  ];
}

interface PreparedRun {
  model: ModelSpec | ZooModel;
  dataset: Dataset;
  config: TrainConfig;
  data: ReturnType<typeof dataSpecFor>;
  resume?: LoadedCheckpoint;
}

function prepareResume(name: string, out: string, f: Partial<TrainFlags>, all: TrainFlags): PreparedRun {
  const resume = readCheckpointState(out);
  const { state } = resume;
  if (state.model.name !== name) throw new Error(`${resume.dir} holds a ${state.model.name} run; cannot resume it as ${name}`);
  if (state.data.dataset !== all.dataset) throw new Error(`${resume.dir} was trained on ${state.data.dataset}; cannot resume it on ${all.dataset}`);
  const changed = fixedOnResume(state).filter(([k, , saved]) => f[k] !== undefined && JSON.stringify(f[k]) !== JSON.stringify(saved));
  if (changed.length) {
    throw new Error(`--resume continues the run in ${resume.dir} as it was set up; ` +
      changed.map(([k, flag, saved]) => `${flag} ${f[k]} differs from the run's ${saved ?? '(default)'}`).join(', ') +
      ' (start a new run with another --out instead)');
  }
  const config = applyOverrides(state.config, configOverrides(f));
  const dataset = openDatasetFromSpec(state.data, all.data, { note: noteLine, decoder: all.decoder });
  checkDataMatches(state.data, dataset);
  const memoryEfficient = f.efficient ?? state.model.memoryEfficient;
  return { model: { ...state.model, memoryEfficient }, dataset, config, data: state.data, resume };
}

/** The --weights argument as something zoo.loadWeights reads: a checkpoint folder becomes its model.json. */
function initialWeightsPath(weights: string): string {
  return isCheckpointDir(weights) ? path.join(resolveCheckpointDir(weights), MODEL_JSON) : weights;
}

/** Fine-tuning feeds the data normalised as the starting weights expect, where their channels match. */
function weightsNormalization(name: string, weights: string | undefined, channels: number): { mean: number[]; std: number[] } | undefined {
  if (!weights || isCheckpointDir(weights)) {
    return weights ? readCheckpointState(weights).state.data.normalization : undefined;
  }
  const source = zoo.resolveWeights(name, weights);
  const e = zoo.info(name);
  const norm = source.normalization ?? (Number.isNaN(source.numClasses) ? undefined : e.input);
  return norm && norm.mean.length === channels ? { mean: [...norm.mean], std: [...norm.std] } : undefined;
}

async function prepareFresh(name: string, out: string, f: Partial<TrainFlags>, all: TrainFlags): Promise<PreparedRun> {
  if (isCheckpointDir(path.join(out, LAST))) {
    throw new Error(`${out} already holds a run (${path.join(out, LAST)}); pass --resume to continue it, or choose another --out`);
  }
  const e = zoo.info(name);
  if ((all.freezeBackbone || all.backboneLrMult !== undefined || all.freshHead) && !all.weights) {
    throw new Error('--freeze-backbone, --backbone-lr-mult and --fresh-head fine-tune trained weights: give --weights too');
  }
  const recipeName = all.recipe ?? defaultRecipe(e.arch.family, e.arch.family === 'densenet' ? e.arch.stem : undefined);
  const config = resolveConfig(recipeName, configOverrides(f));
  const mosaic = mosaicOptions(all);
  if (Object.keys(mosaic).length && all.dataset !== 'fashion-mosaics') throw new Error('--mosaic-* options apply to --dataset fashion-mosaics');
  const folder = folderFlags(name, all, config.recipe);
  let dataset = openDataset(all.dataset, { dir: all.data, mosaic, folder, note: noteLine });
  // --mean/--std (weights from elsewhere) win over what the weights record, which wins over the dataset's own.
  const normalization = flagNormalization(all, dataset.imageShape[2]) ?? weightsNormalization(name, all.weights, dataset.imageShape[2]);
  if (normalization) dataset = openDataset(all.dataset, { dir: all.data, mosaic, folder, normalization });
  const fitted = modelOptionsForDataset(name, dataset, config.augment ? config.crop : undefined);
  if (all.classes !== undefined && all.classes !== fitted.numClasses) {
    throw new Error(`--classes ${all.classes}: dataset ${dataset.name} has ${fitted.numClasses} classes; the new head takes the dataset's`);
  }
  const paperDropRate = all.dropRate === undefined && !all.weights ? recipeDropRate(config) : undefined;
  if (paperDropRate !== undefined) noteLine(`no augmentation: dropout ${paperDropRate} after every conv but the stem's, as the DenseNet paper (--drop-rate 0 for none)`);
  const options: ModelOptions = {
    ...architectureOptions(all), ...fitted, memoryEfficient: all.efficient ?? false,
    ...(paperDropRate !== undefined ? { dropRate: paperDropRate } : {}),
    batchNorm: all.bnStats ?? recipeInferenceStats(config, e.arch.family),
  };
  // A folder without a test split is evaluated on its held-out (or own) val split.
  const evalSplit = all.evalSplit ?? (!dataset.splits.includes('test') && dataset.splits.includes('val') ? 'val' : undefined);
  const data = dataSpecFor(dataset, { dir: all.data, mosaic: mosaic as Record<string, unknown>, folder, evalSplit });
  if (!all.weights) return { model: zoo.resolve(name, options).spec, dataset, config, data };
  const model = zoo.create(name, { ...options, seed: config.seed });
  try {
    await zoo.loadWeights(model, initialWeightsPath(all.weights), { freshHead: all.freshHead });
  } catch (err) {
    model.dispose();
    throw err;
  }
  model.card.weights!.source = all.weights;
  return { model, dataset, config, data };
}

/** What a process quitting now leaves in the run folder, in words. */
function keptCheckpoint(out: string): string {
  if (!isCheckpointDir(out)) return 'no checkpoint had been written yet';
  const { dir, state } = readCheckpointState(out);
  return `the checkpoint of step ${state.position.step} in ${dir} is kept`;
}

/**
 * Ctrl-C once: finish the step, write a checkpoint, exit 130. Twice: quit without the new checkpoint,
 * but never in the middle of a checkpoint write: one being written is abandoned first (the previous stays).
 */
function installStopHandler(stop: StopSignal, out: string, note: (text: string) => void): () => void {
  let quitting = false;
  const onSigint = () => {
    if (quitting) return;
    if (stop.requested) {
      quitting = true;
      abandonCheckpointWrites(() => {
        process.stderr.write(`\nsecond Ctrl-C: quitting; ${keptCheckpoint(out)}\n`);
        process.exit(INTERRUPTED_EXIT_CODE);
      });
      return;
    }
    stop.requested = true;
    note('Ctrl-C: finishing this step and writing a checkpoint (press Ctrl-C again to quit without it)');
  };
  process.on('SIGINT', onSigint);
  return () => process.off('SIGINT', onSigint);
}

function registerTrain(program: Command): void {
  addParallelFlags(addArchitectureFlags(program
    .command('train <name>')
    .description('train a zoo model on a dataset with one of the papers\' recipes (every flag overrides the recipe)')
    .addOption(new Option('--dataset <name>', 'dataset').choices(DATASET_NAMES as unknown as string[]).makeOptionMandatory())
    .option('--data <dir>', 'dataset folder (fashion-mnist default: /usr/share/datasets/fashion-mnist)')
    .addOption(new Option('--recipe <name>', 'training recipe (default: densenet-cifar, densenet-imagenet or tiramisu by model)').choices(RECIPE_NAMES as unknown as string[]))
    .option('--epochs <n>', 'planned epochs; the schedule spans them (fractions allowed, e.g. 0.25)', parsePositive('--epochs'))
    .option('--max-steps <n>', 'stop when the global step reaches n (the schedule still spans --epochs)', parsePositiveInt('--max-steps'))
    .option('--batch <n>', 'batch size', parsePositiveInt('--batch'))
    .option('--lr <x>', 'initial learning rate', parsePositive('--lr'))
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(OPTIMIZER_NAMES as unknown as string[]))
    .addOption(new Option('--schedule <name>', 'learning-rate schedule').choices(SCHEDULE_NAMES as unknown as string[]))
    .option('--weight-decay <x>', 'L2 weight decay added to the gradients', parseNonNegative('--weight-decay'))
    .addOption(new Option('--weight-decay-scope <scope>', 'weights the decay applies to (tiramisu: kernels-and-scales, as the authors\' Lasagne code)').choices(WEIGHT_DECAY_SCOPES as unknown as string[]))
    .addOption(new Option('--weight-decay-form <form>', 'gradient: wd * w added to the gradient (torch); loss: wd * sum(w^2) added to the loss (Lasagne)').choices(WEIGHT_DECAY_FORMS as unknown as string[]))
    .option('--momentum <x>', 'SGD momentum', parseFraction('--momentum'))
    .option('--no-nesterov', 'plain momentum instead of Nesterov')
    .option('--no-augment', 'no random crop/flip')
    .option('--crop <n>', 'segmentation: random training crop side (tiramisu: 224)', parsePositiveInt('--crop'))
    .option('--efficient', 'memory-efficient dense blocks (recompute in the backward pass)')
    .option('--weights <w>', 'fine-tune: start from these weights (a tag such as imagenet, a .safetensors file, a tfjs model.json or a checkpoint folder); a head for other classes starts fresh')
    .option('--classes <n>', 'fine-tune: classes of the new head (must be the dataset\'s; checked)', parsePositiveInt('--classes'))
    .option('--freeze-backbone', 'fine-tune: train the classifier only; the backbone runs in inference mode')
    .option('--fresh-head', 'fine-tune: start the classifier fresh even where the weights have one that fits')
    .option('--backbone-lr-mult <x>', 'fine-tune: the backbone\'s learning rate as a multiple of the head\'s (e.g. 0.1)', parseNonNegative('--backbone-lr-mult'))
    .option('--seed <n>', 'seed of data order, augmentation and dropout', parseInteger('--seed'))
    .option('--log-every <n>', 'progress line and metrics.jsonl entry every n steps', parsePositiveInt('--log-every'))
    .option('--eval-limit <n>', 'evaluate on the first n images only (quick runs)', parsePositiveInt('--eval-limit'))
    .option('--eval-every <n>', 'also evaluate every n steps (besides every epoch and the end)', parsePositiveInt('--eval-every'))
    .addOption(new Option('--eval-split <split>', 'split evaluated after each epoch').choices(['test', 'val']))
    .option('--checkpoint-every <n>', 'also write the last checkpoint every n steps', parsePositiveInt('--checkpoint-every'))
    .option('--mosaic-size <n>', 'fashion-mosaics canvas side (multiple of 32, default 64)', parsePositiveInt('--mosaic-size'))
    .option('--mosaic-train <n>', 'fashion-mosaics training images (default 10000)', parsePositiveInt('--mosaic-train'))
    .option('--mosaic-test <n>', 'fashion-mosaics test images (default 2000)', parsePositiveInt('--mosaic-test'))
    .option('--input <HxW>', 'image-folder: size the images are resized and cropped to, HxW or HxWxC with C 1 or 3 (default: the model\'s input)', parseInputShape)
    .option('--val-fraction <x>', 'image-folder, segmentation-folder without val/: fraction of each class held out as the val split (default 0.1)', parseFraction('--val-fraction'))
    .option('--palette <file>', 'segmentation-folder: JSON list of { "color": [r, g, b], "id": n, "name": "..." } for colour masks')
    .option('--ignore-index <n>', 'segmentation-folder: mask label left out of loss and metrics (CamVid\'s void: 11)', parseIntegerInRange('--ignore-index', 0, 255))
    .addOption(new Option('--decoder <name>', 'image-folder: image decoder (default auto: sharp where installed, else pure JS)').choices(['auto', 'js', 'sharp']))
    .option('--mean <list>', 'normalisation mean per channel (pixels in 0..1), e.g. 0.485,0.456,0.406: overrides the weights\' and the dataset\'s', parseNumberList('--mean'))
    .option('--std <list>', 'normalisation std per channel, with --mean', parseNumberList('--std'))
    .option('--out <dir>', 'run folder for last/, best/ and metrics.jsonl (default runs/<name>-<dataset>)')
    .option('--resume', 'continue the run in --out from its last checkpoint')))
    .action(async (name: string, flags: TrainFlags, cmd: Command) => {
      zoo.info(name);
      const launched = await launchIfAsked(flags, noteLine);
      if (launched !== undefined) {
        if (launched !== 0) throw new CommanderError(launched, 'commander.densenet.workers', 'a worker failed');
        return;
      }
      const out = flags.out ?? path.join('runs', `${name}-${flags.dataset}`);
      const typed = given(cmd, flags);
      const chosen = await initBackend(program);
      const parallel = joinIfWorker(flags);
      const follower = parallel !== undefined && !parallel.isLeader;
      const run = follower ? receiveRun(parallel, flags.data, noteLine)
        : flags.resume ? prepareResume(name, out, typed, flags) : await prepareFresh(name, out, typed, flags);
      if (parallel?.isLeader) shareRun(parallel, run);
      const reporter = follower ? silentReporter : defaultReporter();
      const stop: StopSignal = { requested: false };
      const removeHandler = installStopHandler(stop, out, (t) => reporter.note(t));
      stopWhenLauncherGoes(stop);
      let result;
      try {
        result = await train({ ...run, out, reporter, stop, backend: chosen.name, parallel });
      } finally {
        removeHandler();
        if ('card' in run.model) run.model.dispose();
        parallel?.comm.close();
      }
      if (follower) {
        if (result.status === 'interrupted') throw new CommanderError(INTERRUPTED_EXIT_CODE, 'commander.densenet.interrupted', 'interrupted');
        return;
      }
      const lines = [
        result.lastEval ? `final ${result.lastEval.split}: ${formatMetrics(result.lastEval.metrics)} loss ${result.lastEval.loss.toFixed(4)}` : '',
        result.best ? `best ${result.best.metric}: ${(result.best.metrics[result.best.metric] * 100).toFixed(2)}% at step ${result.best.step} (${path.join(out, 'best')})` : '',
        `time ${formatDuration(result.trainSeconds)}, peak memory ${(result.peakRssBytes / 2 ** 20).toFixed(0)} MiB, backend ${chosen.name}; ` +
          `checkpoint ${result.checkpoint}, metrics ${path.join(out, 'metrics.jsonl')}`,
      ].filter(Boolean);
      process.stdout.write(lines.join('\n') + '\n');
      if (result.status === 'interrupted') {
        process.stdout.write(`interrupted at step ${result.position.step}; continue with the same command and --resume\n`);
        // main() exits with a commander error's code without printing it: the message is above.
        throw new CommanderError(INTERRUPTED_EXIT_CODE, 'commander.densenet.interrupted', 'interrupted');
      }
    });
}

interface EvalFlags {
  weights: string;
  dataset: string;
  data?: string;
  split?: Split;
  limit?: number;
  batch?: number;
  json?: boolean;
  bnStats?: InferenceStats;
}

interface EvalOutput extends EvalResult {
  model: string;
  weights: string;
  dataset: string;
  seconds: number;
  backend: string;
}

async function evalCheckpoint(name: string, flags: EvalFlags): Promise<{ result: EvalResult; spec: ModelSpec }> {
  const { model, state } = await loadCheckpointModel(flags.weights, undefined, { batchNorm: flags.bnStats });
  const spec = state.model;
  try {
    if (spec.name !== name) throw new Error(`${flags.weights} holds a ${spec.name} model, not ${name}`);
    const dataset = flags.dataset === state.data.dataset
      ? openDatasetFromSpec(state.data, flags.data)
      : openDataset(flags.dataset, { dir: flags.data, normalization: state.data.normalization });
    checkDataMatches(state.data, dataset);
    const result = await evaluate(model, dataset, {
      split: flags.split ?? state.data.evalSplit, limit: flags.limit,
      // Segmentation: one full image at a time (evaluate's default), so batch statistics are each image's own.
      batchSize: flags.batch ?? (spec.task === 'classification' ? 128 : undefined),
    });
    return { result, spec };
  } finally {
    model.dispose();
  }
}

async function evalZooWeights(name: string, flags: EvalFlags): Promise<{ result: EvalResult; spec: ModelSpec }> {
  // The project's own weights say how their data was normalised and, for generated sets, made.
  const source = zoo.resolveWeights(name, flags.weights);
  const sameData = source.training?.dataset === flags.dataset;
  const dataset = openDataset(flags.dataset, {
    dir: flags.data, normalization: source.normalization,
    mosaic: sameData ? (source.training?.datasetOptions as MosaicOptions | undefined) : undefined,
  });
  const model = await zoo.load(name, { weights: flags.weights, ...modelOptionsForDataset(name, dataset), batchNorm: flags.bnStats });
  try {
    const result = await evaluate(model, dataset, {
      split: flags.split ?? 'test', limit: flags.limit, batchSize: flags.batch ?? (model.card.task === 'classification' ? 64 : undefined),
    });
    return { result, spec: model.card.spec };
  } finally {
    model.dispose();
  }
}

function registerEval(program: Command): void {
  program
    .command('eval <name>')
    .description('evaluate trained weights on a dataset split: loss, top-1/top-5 or global accuracy and IoU')
    .requiredOption('--weights <w>', 'a checkpoint folder (run/last, run/best or the run folder), a tfjs model.json or a weight tag')
    .addOption(new Option('--dataset <name>', 'dataset').choices(DATASET_NAMES as unknown as string[]).makeOptionMandatory())
    .option('--data <dir>', 'dataset folder (default: the checkpoint\'s, or the dataset\'s default)')
    .addOption(new Option('--split <split>', 'split to evaluate (default test)').choices(['train', 'val', 'test']))
    .option('--limit <n>', 'evaluate the first n images only', parsePositiveInt('--limit'))
    .option('--batch <n>', 'evaluation batch size', parsePositiveInt('--batch'))
    .addOption(bnStatsOption())
    .option('--json', 'machine-readable output')
    .action(async (name: string, flags: EvalFlags) => {
      zoo.info(name);
      const chosen = await initBackend(program);
      const t0 = Date.now();
      const isCheckpoint = isCheckpointDir(flags.weights);
      const looksLikePath = flags.weights.includes('/') || flags.weights.includes(path.sep) || /\.(json|safetensors)$/i.test(flags.weights);
      if (!isCheckpoint && looksLikePath && !/^https?:/i.test(flags.weights) && !existsSync(flags.weights)) {
        throw new Error(`${flags.weights}: no such file or folder; expected a checkpoint folder of densenet train, a tfjs model.json or a weight tag`);
      }
      if (!isCheckpoint && existsSync(flags.weights) && !/\.(json|safetensors)$/i.test(flags.weights) && !existsSync(path.join(flags.weights, 'model.json'))) {
        throw new Error(`${flags.weights}: neither a checkpoint folder (no checkpoint.json) nor a tfjs model (no model.json)`);
      }
      const { result, spec } = isCheckpoint ? await evalCheckpoint(name, flags) : await evalZooWeights(name, flags);
      const output: EvalOutput = { model: name, weights: flags.weights, dataset: flags.dataset, ...result, seconds: (Date.now() - t0) / 1000, backend: chosen.name };
      if (flags.json) {
        process.stdout.write(JSON.stringify(output, null, 2) + '\n');
        return;
      }
      const lines = [
        `${zoo.describeSpec(spec)} on ${flags.dataset} ${result.split} (${result.count} images): ${formatMetrics(result.metrics)} loss ${result.loss.toFixed(4)}`,
        `${formatDuration(output.seconds)} on ${chosen.name}`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}

function registerReport(program: Command): void {
  program
    .command('report <run>')
    .description('write report.md, learning-curve.html and confusion-matrix.png for a training run folder')
    .option('--eval <file>', 'the JSON of `densenet eval --json` for the run, to include')
    .option('--title <text>', 'report title')
    .option('--command <line...>', 'command lines to list under "How it was made"')
    .action(async (run: string, flags: { eval?: string; title?: string; command?: string[] }) => {
      let evaluation;
      if (flags.eval) {
        const fs = await import('fs');
        try {
          evaluation = JSON.parse(fs.readFileSync(flags.eval, 'utf8'));
        } catch (err) {
          throw new Error(`${flags.eval}: not the JSON of densenet eval --json (${(err as Error).message})`);
        }
      }
      const files = writeRunReport(run, { evaluation, title: flags.title, commands: flags.command });
      process.stdout.write(`wrote ${files.report}, ${files.learningCurve}${files.confusionMatrix ? `, ${files.confusionMatrix}` : ''}\n`);
    });
}

export function registerTrainCommands(program: Command): void {
  registerTrain(program);
  registerEval(program);
  registerReport(program);
}
