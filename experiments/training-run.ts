// A training experiment: train a zoo model with the CLI (continuing the run when its folder
// holds one), evaluate the last or the best checkpoint on the test split (for FC-DenseNet in the
// BatchNorm mode that does best on the validation split), ship the weights as a zoo tag with
// their metadata and sha256, check that the tag gives the same score, plot the learning curve
// and write experiments/results/<name>.{json,md}.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Command } from 'commander';
import { zoo } from '../src';
import { CheckpointState, formatDuration, MetricsRecord, readCheckpointState } from '../src/train';
import { lineChartImage, savePng } from '../src/notebook';
import { PACKAGE_ROOT, writeFileAtomic } from '../src/weights';
import { RESULTS_DIR, writeResultAsync } from './results';

const CLI = path.join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'main.js');

/** FC-DenseNet's BatchNorm statistics at inference: 'running' averages or each image's own ('batch'). */
type InferenceStats = NonNullable<zoo.ModelOptions['batchNorm']>;

/** Metrics of `densenet eval --json`. */
export interface EvalOutput {
  split: string;
  count: number;
  loss: number;
  metrics: Record<string, number>;
  /** Segmentation: IoU of each class, and the confusion matrix (rows: truth). */
  perClassIoU?: Array<number | null>;
  confusion?: number[][];
  seconds: number;
  backend: string;
}

export interface TrainingExperiment {
  /** Results file name and npm script suffix (exp:<name>). */
  name: string;
  model: string;
  dataset: string;
  /** Weight tag the trained weights ship as. */
  tag: string;
  description: string;
  /** The metric the tag check compares and the anchor is in (top1, meanIoU). */
  metric: string;
  /** Further held-out metrics for the table and the learning curve (e.g. globalAccuracy). */
  moreMetrics?: string[];
  /** `densenet train` flags of the full run and of the --quick one (model, dataset and --out are added). */
  trainFlags: string[];
  quickFlags: string[];
  /** The published result this run is compared with. */
  anchor: { label: string; value: number; source: string };
  /** Extra figures, written into the results folder; returns their file names. */
  figures?: (ctx: ExperimentContext) => Promise<string[]>;
  /** The checkpoint that ships: the run's last (default) or its best by the held-out metric during training. */
  checkpoint?: 'last' | 'best';
  /** Dataset folder when --data is not given, as the command shows it (relative to the package root). */
  defaultData?: string;
  /** FC-DenseNet: the BatchNorm modes to evaluate; the one best on the val split ships. */
  batchNormModes?: InferenceStats[];
  /** Images each evaluation of --quick uses (default 64). */
  quickEvalImages?: number;
  /** More of the results: a table and notes after the generic ones, and data kept in the JSON. */
  report?: (ctx: ExperimentContext) => { table?: string; notes?: string; data?: Record<string, unknown> };
}

export interface ExperimentContext {
  quick: boolean;
  runDir: string;
  resultsDir: string;
  /** The shipped model.json. */
  modelJson: string;
  state: CheckpointState;
  evaluation: EvalOutput;
  /** The shipped BatchNorm mode and each mode's scores (when the experiment compares them). */
  batchNorm?: BatchNormChoice;
  /** The dataset folder given with --data or the experiment's default, resolved. */
  dataDir?: string;
}

export interface BatchNormChoice {
  shipped: InferenceStats;
  val: Partial<Record<InferenceStats, EvalOutput>>;
  test: Partial<Record<InferenceStats, EvalOutput>>;
}

interface Options {
  quick: boolean;
  /** Results and weights go here instead of the repository (tests). */
  out?: string;
  run?: string;
  train: boolean;
  data?: string;
}

function parseOptions(name: string, argv: string[]): Options {
  const program = new Command()
    .name(`npm run exp:${name} --`)
    .option('--quick', 'a few steps on a few images, to check the pipeline (the tests use it)')
    .option('--out <dir>', 'write results and weights here instead of experiments/results and weights/')
    .option('--run <dir>', 'training run folder (default runs/exp-<name>, or <out>/run with --quick)')
    .option('--data <dir>', 'dataset folder')
    .option('--no-train', 'evaluate and ship the run folder as it stands (a run trained, or stopped with Ctrl-C, by the printed command)')
    .exitOverride();
  program.parse(argv);
  const o = program.opts<{ quick?: boolean; out?: string; run?: string; train: boolean; data?: string }>();
  if (o.quick && !o.out) throw new Error('--quick writes into --out <dir> so that it never replaces the shipped weights and results');
  return { quick: !!o.quick, out: o.out, run: o.run, train: o.train, data: o.data };
}

function cli(args: string[], capture: boolean): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { stdio: ['ignore', capture ? 'pipe' : 'inherit', 'inherit'], encoding: 'utf8' });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`densenet ${args.join(' ')} exited with status ${r.status}`);
  return r.stdout ?? '';
}

/** Images the --quick mode evaluates on, unless the experiment says. */
const QUICK_EVAL_IMAGES = 64;

interface EvalRequest {
  weights: string;
  split: 'val' | 'test';
  /** Inference BatchNorm statistics; default what the weights record. */
  batchNorm?: InferenceStats;
}

function evaluate(exp: TrainingExperiment, opts: Options, req: EvalRequest): EvalOutput {
  const limit = opts.quick ? ['--limit', String(exp.quickEvalImages ?? QUICK_EVAL_IMAGES)] : [];
  const data = opts.data ? ['--data', opts.data] : [];
  const bn = req.batchNorm ? ['--bn-stats', req.batchNorm] : [];
  const text = cli(['eval', exp.model, '--weights', req.weights, '--dataset', exp.dataset, ...data, '--split', req.split, ...bn, '--json', ...limit], true);
  return JSON.parse(text) as EvalOutput;
}

/** Scores the checkpoint in each BatchNorm mode on val (which picks the shipped one) and on test. */
function chooseBatchNorm(exp: TrainingExperiment, opts: Options, weights: string, modes: InferenceStats[]): BatchNormChoice {
  const val: BatchNormChoice['val'] = {};
  const test: BatchNormChoice['test'] = {};
  for (const mode of modes) val[mode] = evaluate(exp, opts, { weights, split: 'val', batchNorm: mode });
  const shipped = modes.reduce((best, m) => (val[m]!.metrics[exp.metric] > val[best]!.metrics[exp.metric] ? m : best));
  for (const mode of modes) test[mode] = evaluate(exp, opts, { weights, split: 'test', batchNorm: mode });
  return { shipped, val, test };
}

/** Copies the checkpoint's model.json and weight files into `dir`, replacing what was there in one rename. */
function copyModel(checkpointDir: string, dir: string): string {
  const staging = `${dir}.tmp-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  const modelJson = path.join(checkpointDir, 'model.json');
  for (const f of [modelJson, ...zoo.weightDataFiles(modelJson)]) fs.copyFileSync(f, path.join(staging, path.basename(f)));
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(staging, dir);
  return path.join(dir, 'model.json');
}

/** The manifest record of the weights: the model's data, training and scores, and the weights' hash. */
function manifestRecord(
  exp: TrainingExperiment, modelJson: string, sha256: string, state: CheckpointState, evaluation: EvalOutput, command: string, batchNorm?: InferenceStats,
): zoo.ShippedWeights {
  const { config, data } = state;
  const inPackage = path.relative(PACKAGE_ROOT, modelJson);
  return {
    model: exp.model,
    tag: exp.tag,
    description: exp.description,
    url: inPackage.startsWith('..') ? modelJson : inPackage,
    format: 'tfjs',
    numClasses: state.model.numClasses,
    inChannels: state.model.inputShape[2],
    inputShape: state.model.inputShape,
    sha256,
    normalization: data.normalization,
    classNames: data.classNames,
    ...(data.palette ? { palette: data.palette } : {}),
    ...(data.ignoreLabel !== undefined ? { ignoreLabel: data.ignoreLabel } : {}),
    ...(batchNorm ? { batchNorm } : {}),
    training: {
      dataset: state.data.dataset,
      ...(state.data.mosaic ? { datasetOptions: state.data.mosaic } : {}),
      recipe: config.recipe,
      config: {
        epochs: config.epochs, batchSize: config.batchSize, optimizer: config.optimizer, lr: config.lr, schedule: config.schedule,
        weightDecay: config.weightDecay, augment: config.augment, memoryEfficient: state.model.memoryEfficient, seed: config.seed,
      },
      steps: state.position.step,
      epochs: state.position.step / state.stepsPerEpoch,
      backend: evaluation.backend,
      trainSeconds: state.trainSeconds,
      evaluation: { split: evaluation.split, count: evaluation.count },
      experiment: `npm run exp:${exp.name}`,
    },
    metrics: { ...evaluation.metrics, loss: evaluation.loss },
    command,
  };
}

async function updateManifest(file: string, record: zoo.ShippedWeights): Promise<void> {
  const others = zoo.readManifest(file).filter((r) => !(r.model === record.model && r.tag === record.tag));
  await writeFileAtomic(file, JSON.stringify([...others, record], null, 2) + '\n');
}

function readMetrics(runDir: string): MetricsRecord[] {
  return fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as MetricsRecord);
}

/** How many held-out images the curve's evaluations used (runs evaluate a subset while training). */
function evalImages(evals: MetricsRecord[]): string {
  const counts = [...new Set(evals.map((r) => r.count as number))];
  return counts.length === 1 ? `${counts[0].toLocaleString('en-US')} images` : `${Math.min(...counts)}-${Math.max(...counts)} images`;
}

/** Held-out metric against epochs, and the training batches' running accuracy. */
function learningCurve(exp: TrainingExperiment, runDir: string, file: string): string {
  const records = readMetrics(runDir);
  const evals = records.filter((r) => r.type === 'eval');
  const trains = records.filter((r) => r.type === 'train');
  const percent = (r: MetricsRecord, metric: string) => ((r.metrics as Record<string, number>)[metric] ?? NaN) * 100;
  const series = [
    ...[exp.metric, ...(exp.moreMetrics ?? [])].map((m) => ({
      name: `held-out ${m} (%, ${evalImages(evals)})`, x: evals.map((r) => r.epoch), y: evals.map((r) => percent(r, m)),
    })),
    { name: 'training batches, accuracy (%)', x: trains.map((r) => r.epoch), y: trains.map((r) => percent(r, 'accuracy')) },
  ].filter((s) => s.x.length > 0 && s.y.every(Number.isFinite));
  return savePng(lineChartImage(series, {
    title: `${exp.model} on ${exp.dataset}: learning curve`, xTitle: 'epoch', yTitle: 'percent', markers: true,
  }), file);
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

function resultTable(exp: TrainingExperiment, evaluation: EvalOutput, record: zoo.ShippedWeights, tagEval: EvalOutput, quick: boolean): string {
  const t = record.training!;
  const ours = evaluation.metrics[exp.metric];
  const more = exp.moreMetrics ?? [];
  return [
    `| model | data | training | ${exp.metric} (held-out) | ${more.map((m) => `${m} | `).join('')}reference |`,
    `|---|---|---|---|${more.map(() => '---|').join('')}---|`,
    `| ${exp.model} (${record.numClasses} classes, input ${record.inputShape!.join('x')}) | ${exp.dataset}, ${t.evaluation.split} split, ` +
      `${t.evaluation.count.toLocaleString('en-US')} images | ${t.recipe} recipe shortened${quick ? ' (--quick)' : ''}: ${t.epochs.toFixed(2)} epochs ` +
      `(${t.steps} steps of ${t.config.batchSize}), ${t.config.schedule} lr from ${t.config.lr}, augment ${t.config.augment ? 'on' : 'off'}; ` +
      `${formatDuration(t.trainSeconds)} on ${t.backend} | **${pct(ours)}** (weight tag '${exp.tag}': ${pct(tagEval.metrics[exp.metric])}) | ` +
      more.map((m) => `${pct(evaluation.metrics[m])} | `).join('') +
      `${exp.anchor.label}: ${pct(exp.anchor.value)} (${exp.anchor.source}) |`,
  ].join('\n');
}

/** Runs the experiment end to end; throws (exit 1) when the shipped tag does not reproduce the score. */
export async function runTrainingExperiment(exp: TrainingExperiment, argv = process.argv): Promise<void> {
  const start = Date.now();
  const opts = parseOptions(exp.name, argv);
  const resultsDir = opts.out ? path.resolve(opts.out) : RESULTS_DIR;
  const weightsRoot = opts.out ? path.join(resultsDir, 'weights') : path.join(PACKAGE_ROOT, 'weights');
  const runDir = opts.run ?? (opts.quick ? path.join(resultsDir, 'run') : path.join('runs', `exp-${exp.name}`));
  fs.mkdirSync(resultsDir, { recursive: true });

  const shownData = opts.data ?? exp.defaultData;
  if (shownData && !opts.data) opts.data = path.resolve(PACKAGE_ROOT, shownData);
  const trainFlags = [exp.model, '--dataset', exp.dataset, ...(opts.quick ? exp.quickFlags : exp.trainFlags)];
  const command = `densenet train ${[...trainFlags.slice(0, 3), ...(shownData ? ['--data', shownData] : []), ...trainFlags.slice(3), '--out', runDir].join(' ')}`;
  const resuming = fs.existsSync(path.join(runDir, 'last', 'checkpoint.json'));
  if (opts.train) {
    const flags = ['train', ...trainFlags, ...(opts.data ? ['--data', opts.data] : []), '--out', runDir];
    cli(resuming ? [...flags, '--resume'] : flags, false);
  } else if (!resuming) {
    throw new Error(`--no-train: ${runDir} holds no run; train one with \`${command}\` (Ctrl-C keeps its checkpoint)`);
  }

  const { dir: checkpointDir, state } = readCheckpointState(exp.checkpoint === 'best' ? path.join(runDir, 'best') : runDir);
  const batchNorm = exp.batchNormModes ? chooseBatchNorm(exp, opts, checkpointDir, exp.batchNormModes) : undefined;
  const evaluation = batchNorm ? batchNorm.test[batchNorm.shipped]! : evaluate(exp, opts, { weights: checkpointDir, split: 'test' });
  const modelJson = copyModel(checkpointDir, path.join(weightsRoot, exp.model, exp.tag));
  const record = manifestRecord(exp, modelJson, await zoo.weightsDigest(modelJson, 'tfjs'), state, evaluation, command, batchNorm?.shipped ?? state.model.batchNorm);
  await updateManifest(path.join(weightsRoot, 'manifest.json'), record);

  // The shipped files, loaded the way users load them, must give the same score. By tag the record
  // brings its BatchNorm mode; a copy outside the package (--out) is a plain file, given the mode.
  const tagEval = evaluate(exp, opts, opts.out ? { weights: modelJson, split: 'test', batchNorm: record.batchNorm } : { weights: exp.tag, split: 'test' });
  const gap = Math.abs(tagEval.metrics[exp.metric] - evaluation.metrics[exp.metric]);
  if (!(gap <= 0.001)) {
    throw new Error(`${exp.model} '${exp.tag}': the shipped weights give ${exp.metric} ${tagEval.metrics[exp.metric]}, the checkpoint ${evaluation.metrics[exp.metric]}`);
  }

  const ctx: ExperimentContext = { quick: opts.quick, runDir, resultsDir, modelJson, state, evaluation, batchNorm, dataDir: opts.data };
  const figures = [path.basename(learningCurve(exp, runDir, path.join(resultsDir, `${exp.name}-curve.png`)))];
  figures.push(...((await exp.figures?.(ctx)) ?? []));
  const more = exp.report?.(ctx) ?? {};
  const dataFlag = shownData ? ` --data ${shownData}` : '';
  await writeResultAsync(exp.name, {
    command: `npm run exp:${exp.name}${opts.quick ? ' -- --quick' : ''}`,
    backend: evaluation.backend,
    seed: state.config.seed,
    wallSeconds: (Date.now() - start) / 1000,
    data: { weights: record, checkpoint: checkpointDir, evaluation, tagEvaluation: tagEval, batchNorm, anchor: exp.anchor, figures, ...more.data },
    table: [resultTable(exp, evaluation, record, tagEval, opts.quick), more.table].filter(Boolean).join('\n\n'),
    notes: [
      `Training: \`${command}\` (${formatDuration(state.trainSeconds)}). Weights: \`${record.url}\`, sha256 ${record.sha256}` +
        `${record.batchNorm ? `, BatchNorm statistics '${record.batchNorm}' at inference` : ''}.`,
      `Check: \`densenet eval ${exp.model} --weights ${exp.tag} --dataset ${exp.dataset}${dataFlag} --split test --json\`.`,
      ...(more.notes ? [more.notes] : []),
      ...figures.map((f) => `![${f}](${f})`),
    ].join('\n\n'),
  }, resultsDir);
}

/** Entry point of an experiment script: one clear error line and exit status 1 on failure. */
export function main(exp: TrainingExperiment): void {
  runTrainingExperiment(exp).catch((err) => {
    process.stderr.write(`exp:${exp.name}: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
}
