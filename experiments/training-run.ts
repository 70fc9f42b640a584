// A training experiment: train a zoo model with the CLI (continuing the run when its folder
// holds one), evaluate the checkpoint on the held-out split, ship the weights as a zoo tag with
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

/** Metrics of `densenet eval --json`. */
export interface EvalOutput {
  split: string;
  count: number;
  loss: number;
  metrics: Record<string, number>;
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
}

export interface ExperimentContext {
  quick: boolean;
  runDir: string;
  resultsDir: string;
  /** The shipped model.json. */
  modelJson: string;
  state: CheckpointState;
  evaluation: EvalOutput;
}

interface Options {
  quick: boolean;
  /** Results and weights go here instead of the repository (tests). */
  out?: string;
  run?: string;
}

function parseOptions(name: string, argv: string[]): Options {
  const program = new Command()
    .name(`npm run exp:${name} --`)
    .option('--quick', 'a few steps on a few images, to check the pipeline (the tests use it)')
    .option('--out <dir>', 'write results and weights here instead of experiments/results and weights/')
    .option('--run <dir>', 'training run folder (default runs/exp-<name>, or <out>/run with --quick)')
    .exitOverride();
  program.parse(argv);
  const o = program.opts<{ quick?: boolean; out?: string; run?: string }>();
  if (o.quick && !o.out) throw new Error('--quick writes into --out <dir> so that it never replaces the shipped weights and results');
  return { quick: !!o.quick, out: o.out, run: o.run };
}

function cli(args: string[], capture: boolean): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { stdio: ['ignore', capture ? 'pipe' : 'inherit', 'inherit'], encoding: 'utf8' });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`densenet ${args.join(' ')} exited with status ${r.status}`);
  return r.stdout ?? '';
}

/** Images the --quick mode evaluates on. */
const QUICK_EVAL_IMAGES = 64;

function evaluate(model: string, dataset: string, weights: string, quick: boolean): EvalOutput {
  const limit = quick ? ['--limit', String(QUICK_EVAL_IMAGES)] : [];
  const text = cli(['eval', model, '--weights', weights, '--dataset', dataset, '--split', 'test', '--json', ...limit], true);
  return JSON.parse(text) as EvalOutput;
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
function manifestRecord(exp: TrainingExperiment, modelJson: string, sha256: string, state: CheckpointState, evaluation: EvalOutput, command: string): zoo.ShippedWeights {
  const { config } = state;
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
    normalization: state.data.normalization,
    classNames: state.data.classNames,
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

  const flags = ['train', exp.model, '--dataset', exp.dataset, ...(opts.quick ? exp.quickFlags : exp.trainFlags), '--out', runDir];
  const command = `densenet ${flags.join(' ')}`;
  const resuming = fs.existsSync(path.join(runDir, 'last', 'checkpoint.json'));
  cli(resuming ? [...flags, '--resume'] : flags, false);

  const { dir: checkpointDir, state } = readCheckpointState(runDir);
  const evaluation = evaluate(exp.model, exp.dataset, checkpointDir, opts.quick);
  const modelJson = copyModel(checkpointDir, path.join(weightsRoot, exp.model, exp.tag));
  const record = manifestRecord(exp, modelJson, await zoo.weightsDigest(modelJson, 'tfjs'), state, evaluation, command);
  await updateManifest(path.join(weightsRoot, 'manifest.json'), record);

  // The shipped files, loaded the way users load them, must give the same score.
  const tagEval = evaluate(exp.model, exp.dataset, opts.out ? modelJson : exp.tag, opts.quick);
  const gap = Math.abs(tagEval.metrics[exp.metric] - evaluation.metrics[exp.metric]);
  if (!(gap <= 0.001)) {
    throw new Error(`${exp.model} '${exp.tag}': the shipped weights give ${exp.metric} ${tagEval.metrics[exp.metric]}, the checkpoint ${evaluation.metrics[exp.metric]}`);
  }

  const ctx: ExperimentContext = { quick: opts.quick, runDir, resultsDir, modelJson, state, evaluation };
  const figures = [path.basename(learningCurve(exp, runDir, path.join(resultsDir, `${exp.name}-curve.png`)))];
  figures.push(...((await exp.figures?.(ctx)) ?? []));
  await writeResultAsync(exp.name, {
    command: `npm run exp:${exp.name}${opts.quick ? ' -- --quick' : ''}`,
    backend: evaluation.backend,
    seed: state.config.seed,
    wallSeconds: (Date.now() - start) / 1000,
    data: { weights: record, evaluation, tagEvaluation: tagEval, anchor: exp.anchor, figures },
    table: resultTable(exp, evaluation, record, tagEval, opts.quick),
    notes: [
      `Training: \`${command}\` (${formatDuration(state.trainSeconds)}). Weights: \`${record.url}\`, sha256 ${record.sha256}.`,
      `Check: \`densenet eval ${exp.model} --weights ${exp.tag} --dataset ${exp.dataset} --split test --json\`.`,
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
