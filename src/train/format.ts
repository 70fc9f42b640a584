// What the trainer reports after a step and an evaluation, and how each reads as one line:
// shared by the terminal reporters (progress.ts) and the notebook's (notebook-progress.ts).

export interface StepReport {
  /** 1-based epoch of the step just done. */
  epoch: number;
  epochs: number;
  step: number;
  /** Step at which the run stops. */
  stopStep: number;
  /** Mean training loss over the steps since the previous report. */
  loss: number;
  /** Mean training accuracy (pixel accuracy for segmentation) over the same steps. */
  accuracy: number;
  lr: number;
  imagesPerSecond: number;
  etaSeconds: number;
}

export interface EvalReport {
  split: string;
  step: number;
  epoch: number;
  loss: number;
  metrics: Record<string, number>;
  count: number;
  seconds: number;
}

export interface Reporter {
  start(firstStep: number, stopStep: number): void;
  /** `log`: this step is a logging step (plain lines are only printed then). */
  step(r: StepReport, log: boolean): void;
  evalProgress(done: number, total: number): void;
  eval(r: EvalReport): void;
  note(text: string): void;
  stop(): void;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(r).padStart(2, '0')}s` : `${r}s`;
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

export function formatMetrics(metrics: Record<string, number>): string {
  return Object.entries(metrics).map(([k, v]) => `${k} ${pct(v)}`).join(' ');
}

export function formatEval(r: EvalReport): string {
  return `eval ${r.split} at step ${r.step} (epoch ${r.epoch}): loss ${r.loss.toFixed(4)} ${formatMetrics(r.metrics)} ` +
    `(${r.count} images, ${formatDuration(r.seconds)})`;
}

/** Epochs as the bar and the lines show them: whole, or to two decimals for a fractional run. */
export function formatEpochs(e: number): string {
  return Number.isInteger(e) ? String(e) : e.toFixed(2);
}

export function formatStep(r: StepReport): string {
  return `epoch ${r.epoch}/${formatEpochs(r.epochs)} step ${r.step}/${r.stopStep} loss ${r.loss.toFixed(4)} ` +
    `acc ${pct(r.accuracy)} lr ${r.lr.toPrecision(3)} ${r.imagesPerSecond.toFixed(1)} img/s ETA ${formatDuration(r.etaSeconds)}`;
}
