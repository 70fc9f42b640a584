// A short report of a finished run, from the files the run wrote (metrics.jsonl and the last
// checkpoint): report.md with the figures, a learning-curve chart (offline Plotly HTML) and a
// confusion-matrix image (PNG), both made with the notebook display helpers in src/viz.
import * as os from 'os';
import * as path from 'path';
import { writeFileSync } from 'fs';
import { confusionMatrixImage, lineChart, saveHtml, savePng } from '../viz';
import { readCheckpointState } from './checkpoint';
import { describeSpec } from '../zoo';
import { formatDuration, MetricsLog, MetricsRecord } from './progress';
import { METRICS_FILE } from './trainer';

export interface ReportOptions {
  /** Where report.md and its figures go (default: the run folder). */
  outDir?: string;
  /** An independent evaluation of the checkpoint (`densenet eval --json`), reported beside the run's own. */
  evaluation?: { split: string; count: number; loss: number; metrics: Record<string, number>; seconds?: number; backend?: string };
  /** Extra lines for the "How it was made" section (e.g. the commands). */
  commands?: string[];
  title?: string;
}

export interface ReportFiles {
  report: string;
  learningCurve: string;
  confusionMatrix?: string;
}

// metrics.jsonl holds null where a diverged run measured NaN (JSON has no NaN).
const pct = (x: number | null) => (Number.isFinite(x) ? `${(x! * 100).toFixed(2)}%` : 'NaN');
const fixed4 = (x: unknown) => (Number.isFinite(x) ? (x as number).toFixed(4) : 'NaN');
const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

function metricsTable(records: MetricsRecord[]): string {
  const rows = records.map((r) => {
    const m = r.metrics as Record<string, number>;
    return `| ${r.step} | ${r.epoch} | ${fixed4(r.loss)} | ${Object.values(m).map(pct).join(' | ')} |`;
  });
  const keys = Object.keys((records[0]?.metrics as Record<string, number>) ?? {});
  return [`| step | epoch | loss | ${keys.join(' | ')} |`, `|---|---|---|${keys.map(() => '---').join('|')}|`, ...rows].join('\n');
}

/** Writes report.md, learning-curve.html and confusion-matrix.png for the run in `runDir`. */
export function writeRunReport(runDir: string, opts: ReportOptions = {}): ReportFiles {
  const outDir = opts.outDir ?? runDir;
  const { state } = readCheckpointState(path.join(runDir, 'last'));
  const records = new MetricsLog(path.join(runDir, METRICS_FILE)).read();
  const trainRecs = records.filter((r) => r.type === 'train');
  const evalRecs = records.filter((r) => r.type === 'eval');
  const summary = [...records].reverse().find((r) => r.type === 'summary');
  const finalEval = evalRecs[evalRecs.length - 1];
  const task = state.data.task;
  const accKey = task === 'classification' ? 'top1' : 'meanIoU';

  const learningCurve = saveHtml([
    lineChart([
      { name: 'training loss (mean since previous point)', x: trainRecs.map((r) => r.step), y: trainRecs.map((r) => r.loss as number) },
      { name: `${state.data.evalSplit} loss`, x: evalRecs.map((r) => r.step), y: evalRecs.map((r) => r.loss as number) },
    ], { title: 'Loss', xTitle: 'step', yTitle: 'cross entropy' }),
    lineChart([
      { name: 'training accuracy', x: trainRecs.map((r) => r.step), y: trainRecs.map((r) => (r.metrics as Record<string, number>).accuracy) },
      { name: `${state.data.evalSplit} ${accKey}`, x: evalRecs.map((r) => r.step), y: evalRecs.map((r) => (r.metrics as Record<string, number>)[accKey]) },
    ], { title: task === 'classification' ? 'Accuracy' : 'Accuracy and mean IoU', xTitle: 'step', yTitle: 'fraction' }),
  ], path.join(outDir, 'learning-curve.html'), opts.title ?? 'Learning curve');

  let confusionMatrix: string | undefined;
  if (finalEval?.confusion) {
    confusionMatrix = savePng(confusionMatrixImage(finalEval.confusion as number[][], state.data.classNames, {
      title: `Confusion matrix, ${state.data.evalSplit} split, step ${finalEval.step}`,
    }), path.join(outDir, 'confusion-matrix.png'));
  }

  const cfg = state.config;
  const lines: string[] = [
    `# ${opts.title ?? `Training report: ${state.model.name} on ${state.data.dataset}`}`,
    '',
    `Model: ${describeSpec(state.model)}${summary?.params ? `, ${(summary.params as number).toLocaleString('en-US')} trainable parameters` : ''}.`,
    `Recipe: ${cfg.recipe} (${cfg.optimizer}${cfg.optimizer === 'sgd' ? `, momentum ${cfg.momentum}${cfg.nesterov ? ' Nesterov' : ''}` : ''}, ` +
      `lr ${cfg.lr} with ${cfg.schedule} schedule, weight decay ${cfg.weightDecay}${cfg.weightDecayForm === 'loss' ? ' x sum(w^2) in the loss' : ''} on ${{ all: 'all weights', kernels: 'conv/dense kernels', 'kernels-and-scales': 'conv/dense kernels and BatchNorm scales' }[cfg.weightDecayScope]}, ` +
      `batch ${cfg.batchSize}, ${cfg.augment ? 'augmentation on' : 'no augmentation'}, seed ${cfg.seed}).`,
    `Training: ${state.position.step} steps of ${state.totalSteps} planned (${cfg.epochs} epoch${cfg.epochs === 1 ? '' : 's'} of ${state.stepsPerEpoch} steps` +
      `${cfg.maxSteps ? `, stopped at --max-steps ${cfg.maxSteps}` : ''}), ${(state.position.step * cfg.batchSize).toLocaleString('en-US')} images seen.`,
    '',
    '## Result',
    '',
  ];
  if (opts.evaluation) {
    const e = opts.evaluation;
    lines.push(`- **${e.split} split, ${e.count} images: ` + Object.entries(e.metrics).map(([k, v]) => `${k} ${pct(v)}`).join(', ') +
      `**, loss ${fixed4(e.loss)} (\`densenet eval\` of the saved checkpoint \`last/\`${e.seconds !== undefined ? `, ${formatDuration(e.seconds)}` : ''})`);
  }
  if (finalEval) {
    const m = finalEval.metrics as Record<string, number>;
    const text = Object.entries(m).map(([k, v]) => (opts.evaluation ? `${k} ${pct(v)}` : `**${k} ${pct(v)}**`)).join(', ');
    lines.push(`- ${state.data.evalSplit} split at the end of training (${finalEval.count} images): ${text}, loss ${fixed4(finalEval.loss)}`);
  }
  if (state.best) lines.push(`- best ${state.best.metric} during training: ${pct(state.best.metrics[state.best.metric])} at step ${state.best.step} (checkpoint \`best/\`)`);
  const ips = trainRecs.length ? trainRecs.reduce((s, r) => s + (r.imagesPerSecond as number), 0) / trainRecs.length : NaN;
  lines.push(
    `- time: ${formatDuration(state.trainSeconds)} wall clock for training and its evaluations` +
      `${Number.isFinite(ips) ? ` (${ips.toFixed(1)} training images/s)` : ''}`,
    `- peak memory (resident set of the training process): ${summary?.peakRssBytes ? mib(summary.peakRssBytes as number) : 'not recorded'}`,
    `- backend: ${summary?.backend ?? 'not recorded'}; machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'CPU'}, node ${process.version}`,
    '',
    '## Learning curve',
    '',
    `Interactive chart: [learning-curve.html](${path.relative(outDir, learningCurve)}). Evaluations on the ${state.data.evalSplit} split:`,
    '',
    metricsTable(evalRecs),
    '',
  );
  if (confusionMatrix) lines.push('## Confusion matrix', '', `![confusion matrix](${path.relative(outDir, confusionMatrix)})`, '');
  if (opts.commands?.length) lines.push('## How it was made', '', '```sh', ...opts.commands, '```', '');
  const report = path.join(outDir, 'report.md');
  writeFileSync(report, lines.join('\n'));
  return { report, learningCurve, confusionMatrix };
}
