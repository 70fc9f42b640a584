// Training progress in a tslab notebook: one output entry, redrawn in place, with the last step's
// numbers, a progress bar, a small loss curve (inline SVG), the evaluation under way and the last
// evaluation's result, instead of one printed line per logging step.
import { SERIES_COLORS } from '../viz/chart-frame';
import { rgbToCss } from '../viz/color';
import { DisplaySink, newTslabDisplay } from '../viz/display';
import { EvalReport, Reporter, StepReport, formatEval, formatStep } from './format';

/** Where a run draws: each html() call replaces the entry's previous output. */
export type InPlaceDisplay = Pick<DisplaySink, 'html'>;

export interface NotebookReporterOptions {
  /** Creates the output entry of a run; tslab's newDisplay() by default. */
  newDisplay?: () => InPlaceDisplay;
  /** Fewest milliseconds between two redraws caused by steps and evaluation batches. */
  minRedrawMs?: number;
  /** Clock of the throttle, in milliseconds. */
  now?: () => number;
}

interface LossPoint {
  step: number;
  loss: number;
}

/** Everything one run's display shows. */
interface RunView {
  display: InPlaceDisplay;
  started?: { firstStep: number; stopStep: number };
  last?: StepReport;
  /** Losses of the logged steps: each the mean since the previous logged step, as in metrics.jsonl. */
  loggedLoss: LossPoint[];
  /** The mean so far of the steps after the last logged one, so the curve moves between logs. */
  liveLoss?: LossPoint;
  evalLoss: LossPoint[];
  evaluating?: { done: number; total: number };
  lastEval?: EvalReport;
  notes: string[];
  finished: boolean;
}

const DEFAULT_MIN_REDRAW_MS = 250;
const NOTES_SHOWN = 3;
const CURVE_MAX_POINTS = 200;
const CURVE = { width: 360, height: 110, left: 52, right: 8, top: 16, bottom: 16 };
const TRAIN_COLOR = rgbToCss(SERIES_COLORS[0]);
const EVAL_COLOR = rgbToCss(SERIES_COLORS[1]);

/**
 * A Reporter for notebooks. A run's display is made at its first event (the trainer's first note
 * comes before start()) and let go at stop(), so a reused reporter gives each run its own entry.
 * Steps and evaluation batches redraw at most every minRedrawMs; start, results, notes and stop
 * redraw at once, so the entry always ends on the run's final state.
 */
export class NotebookReporter implements Reporter {
  private readonly newDisplay: () => InPlaceDisplay;
  private readonly minRedrawMs: number;
  private readonly now: () => number;
  private view?: RunView;
  private lastDrawAt = -Infinity;

  constructor(opts: NotebookReporterOptions = {}) {
    this.newDisplay = opts.newDisplay ?? newTslabDisplay;
    this.minRedrawMs = opts.minRedrawMs ?? DEFAULT_MIN_REDRAW_MS;
    this.now = opts.now ?? (() => performance.now());
  }

  start(firstStep: number, stopStep: number): void {
    this.currentView().started = { firstStep, stopStep };
    this.redraw(true);
  }

  step(r: StepReport, log: boolean): void {
    const view = this.currentView();
    view.last = r;
    const point = { step: r.step, loss: r.loss };
    if (log) {
      view.loggedLoss.push(point);
      view.liveLoss = undefined;
    } else {
      view.liveLoss = point;
    }
    this.redraw(false);
  }

  evalProgress(done: number, total: number): void {
    this.currentView().evaluating = { done, total };
    this.redraw(false);
  }

  eval(r: EvalReport): void {
    const view = this.currentView();
    view.evaluating = undefined;
    view.lastEval = r;
    view.evalLoss.push({ step: r.step, loss: r.loss });
    this.redraw(true);
  }

  note(text: string): void {
    const view = this.currentView();
    view.notes = [...view.notes, text].slice(-NOTES_SHOWN);
    this.redraw(true);
  }

  stop(): void {
    if (!this.view) return;
    this.view.finished = true;
    this.view.evaluating = undefined;
    this.redraw(true);
    this.view = undefined;
  }

  private currentView(): RunView {
    this.view ??= { display: this.newDisplay(), loggedLoss: [], evalLoss: [], notes: [], finished: false };
    return this.view;
  }

  private redraw(force: boolean): void {
    const at = this.now();
    if (!this.view || (!force && at - this.lastDrawAt < this.minRedrawMs)) return;
    this.lastDrawAt = at;
    this.view.display.html(renderRun(this.view));
  }
}

/** A reporter that draws one in-place display in the tslab notebook running this code. */
export function notebookReporter(opts: NotebookReporterOptions = {}): NotebookReporter {
  return new NotebookReporter(opts);
}

function renderRun(view: RunView): string {
  const parts = [
    statusLine(view), progressBar(view), lossCurveSvg(trainLoss(view), view.evalLoss), evalLines(view), notesBlock(view.notes),
  ];
  return `<div style="font:12px/1.5 monospace">${parts.join('')}</div>`;
}

function statusLine(view: RunView): string {
  const { last, started } = view;
  const numbers = last ? formatStep(last) : started ? `step ${started.firstStep}/${started.stopStep}` : undefined;
  if (numbers === undefined) return '';
  const state = view.finished ? 'finished' : view.evaluating ? 'evaluating' : 'training';
  return `<div><b>${state}</b> ${escapeHtml(numbers)}</div>`;
}

function progressBar(view: RunView): string {
  const stopStep = view.last?.stopStep ?? view.started?.stopStep;
  if (!stopStep) return '';
  const step = view.last?.step ?? view.started?.firstStep ?? 0;
  return bar(step / stopStep, TRAIN_COLOR);
}

function bar(fraction: number, color: string): string {
  const percent = (Math.min(1, Math.max(0, fraction)) * 100).toFixed(1);
  return `<div style="width:${CURVE.width}px;height:6px;background:#e5e5e5;margin:2px 0">` +
    `<div style="width:${percent}%;height:100%;background:${color}"></div></div>`;
}

function evalLines(view: RunView): string {
  const lines: string[] = [];
  const e = view.evaluating;
  if (e) lines.push(`<div><b>evaluating</b> batch ${e.done}/${e.total}</div>${bar(e.total ? e.done / e.total : 0, EVAL_COLOR)}`);
  if (view.lastEval) lines.push(`<div>${escapeHtml(formatEval(view.lastEval))}</div>`);
  return lines.join('');
}

function notesBlock(notes: readonly string[]): string {
  return notes.map((n) => `<div style="color:#6e6e6e">${escapeHtml(n)}</div>`).join('');
}

function trainLoss(view: RunView): LossPoint[] {
  return view.liveLoss ? [...view.loggedLoss, view.liveLoss] : view.loggedLoss;
}

/** Train loss as a line (its last point marked), eval losses as dots; nothing before the first finite loss. */
function lossCurveSvg(train: readonly LossPoint[], evals: readonly LossPoint[]): string {
  const trainShown = thinOut(train.filter(isFinitePoint), CURVE_MAX_POINTS);
  const evalShown = evals.filter(isFinitePoint);
  const all = [...trainShown, ...evalShown];
  if (all.length === 0) return '';
  const { width, height, left, right, top, bottom } = CURVE;
  const [minStep, maxStep] = range(all.map((p) => p.step));
  const [minLoss, maxLoss] = range(all.map((p) => p.loss));
  const x = (step: number) => left + ((step - minStep) / (maxStep - minStep)) * (width - left - right);
  const y = (loss: number) => top + ((maxLoss - loss) / (maxLoss - minLoss)) * (height - top - bottom);
  const xy = (p: LossPoint) => `${x(p.step).toFixed(1)},${y(p.loss).toFixed(1)}`;
  const label = (tx: number, ty: number, anchor: string, text: string, color = '#6e6e6e') =>
    `<text x="${tx}" y="${ty}" text-anchor="${anchor}" fill="${color}">${escapeHtml(text)}</text>`;
  const lastTrain = trainShown[trainShown.length - 1];
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" style="display:block" font-size="10" font-family="monospace">` +
    `<rect x="${left}" y="${top}" width="${width - left - right}" height="${height - top - bottom}" fill="none" stroke="#e5e5e5"/>` +
    (trainShown.length > 0
      ? `<polyline fill="none" stroke="${TRAIN_COLOR}" stroke-width="1.5" points="${trainShown.map(xy).join(' ')}"/>` +
        `<circle cx="${x(lastTrain.step).toFixed(1)}" cy="${y(lastTrain.loss).toFixed(1)}" r="2.5" fill="${TRAIN_COLOR}"/>`
      : '') +
    evalShown.map((p) => `<circle cx="${x(p.step).toFixed(1)}" cy="${y(p.loss).toFixed(1)}" r="3" fill="${EVAL_COLOR}"/>`).join('') +
    label(left - 4, top + 8, 'end', maxLoss.toPrecision(3)) +
    label(left - 4, height - bottom, 'end', minLoss.toPrecision(3)) +
    label(left, height - 4, 'start', `step ${minStep}`) +
    label(width - right, height - 4, 'end', `step ${maxStep}`) +
    label(left, top - 4, 'start', 'train loss', TRAIN_COLOR) +
    (evalShown.length > 0 ? label(left + 80, top - 4, 'start', 'eval loss', EVAL_COLOR) : '') +
    `</svg>`
  );
}

function isFinitePoint(p: LossPoint): boolean {
  return Number.isFinite(p.loss) && Number.isFinite(p.step);
}

/** [min, max], widened when they coincide so that scaling never divides by zero. */
function range(values: readonly number[]): [number, number] {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return lo === hi ? [lo - 1, hi + 1] : [lo, hi];
}

/** At most `max` evenly spread points, always keeping the last, so a long run redraws as cheaply as a short one. */
function thinOut(points: readonly LossPoint[], max: number): LossPoint[] {
  if (points.length <= max) return [...points];
  const stride = (points.length - 1) / (max - 1);
  return Array.from({ length: max }, (_, i) => points[Math.round(i * stride)]);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);
}
