// Copying named tensors from a weights file into a model's variables, with every tensor checked
// first (missing, unexpected, wrong shape: all reported at once, naming the tensor and both
// shapes), and the two kinds of surgery a zoo needs: leaving a classifier of another class count
// at its fresh init, and adapting the first conv to another number of input channels.
// The torchvision and tfjs loaders both describe the model's weights as `TargetWeight`s.
import * as tf from '../tf';
import { FloatTensor, formatShape, numElements } from './safetensors';

/** The part of a weights file the loaders need; a `SafetensorsFile` is one. */
export interface StateDictSource {
  /** File name or URL, for error messages. */
  readonly source: string;
  names(): string[];
  shape(name: string): number[];
  read(name: string): Float32Array;
}

/** How a tensor is laid out in the file: conv OIHW (torch) or HWIO (tfjs), linear [out,in], or as is. */
export type SourceLayout = 'oihw' | 'hwio' | 'out-in' | 'plain';

/** One model weight and where its value is in the file. */
export interface TargetWeight {
  variable: tf.LayerVariable;
  /** The tfjs weight name without tfjs's uniqueness suffix. */
  tfName: string;
  /** The tfjs layer that owns it. */
  layerName: string;
  /** Its name in the file. */
  key: string;
  layout: SourceLayout;
  /** The shape it must have in the file. */
  shape: number[];
}

export interface WeightLoadOptions {
  /**
   * Leave the classifier as it is (fresh init) and load everything else, for a class count that
   * differs from the weights'. `'auto'`: skip it only when its shape differs from the file's.
   */
  skipClassifier?: boolean | 'auto';
  /**
   * When the first conv's input channels differ from the weights', adapt the filters instead of
   * failing (1 channel: sum over the input channels; C channels: cycle them and rescale by I/C,
   * which for RGB weights is timm's repeat-and-scale-by-3/C). Default true.
   */
  adaptInputChannels?: boolean;
  /** The first conv: a tfjs layer name or a prefix of its keys in the file. */
  firstConv?: string;
  /** The classifier: a tfjs layer name or a prefix of its keys in the file. */
  classifier?: string;
}

export interface WeightLoadReport {
  /** Keys copied as they are. */
  loaded: string[];
  /** Keys whose first-conv filters were adapted to another channel count. */
  adapted: Array<{ key: string; from: number[]; to: number[] }>;
  /** Model weights left untouched (the classifier, when skipped). */
  skipped: string[];
  /** Keys in the file that carry no weight (torch's num_batches_tracked, a skipped classifier). */
  ignored: string[];
}

export type MismatchProblem =
  | { kind: 'missing'; key: string; tfName: string; expected: number[] }
  | { kind: 'unexpected'; key: string; actual: number[] }
  | { kind: 'shape'; key: string; tfName: string; expected: number[]; actual: number[] };

export class WeightsMismatchError extends Error {
  constructor(readonly source: string, readonly problems: MismatchProblem[]) {
    super(describeProblems(source, problems));
    this.name = 'WeightsMismatchError';
  }
}

const MAX_LISTED = 25;

function describeProblem(p: MismatchProblem): string {
  switch (p.kind) {
    case 'missing':
      return `missing tensor '${p.key}' (model weight '${p.tfName}', expected shape ${formatShape(p.expected)}) is not in the file`;
    case 'unexpected':
      return `unexpected tensor '${p.key}' ${formatShape(p.actual)} matches no weight of the model`;
    case 'shape':
      return `wrong shape for tensor '${p.key}': the model (weight '${p.tfName}') needs ${formatShape(p.expected)} but the file has ${formatShape(p.actual)}`;
  }
}

function describeProblems(source: string, problems: MismatchProblem[]): string {
  const labels: Record<MismatchProblem['kind'], string> = { missing: 'missing', unexpected: 'unexpected', shape: 'wrong shape' };
  const counts = (['missing', 'unexpected', 'shape'] as const)
    .map((k) => [labels[k], problems.filter((p) => p.kind === k).length] as const)
    .filter(([, n]) => n > 0).map(([label, n]) => `${n} ${label}`).join(', ');
  // Up to MAX_LISTED of each kind, so both sides of a renaming show (the model's keys and the file's).
  const lines = (['missing', 'unexpected', 'shape'] as const).flatMap((kind) => {
    const ofKind = problems.filter((p) => p.kind === kind);
    const listed = ofKind.slice(0, MAX_LISTED).map((p) => '  ' + describeProblem(p));
    return ofKind.length > MAX_LISTED ? [...listed, `  ... and ${ofKind.length - MAX_LISTED} more ${labels[kind]}`] : listed;
  });
  return `${source}: the weights do not fit the model (${counts}):\n${lines.join('\n')}`;
}

/** A state dict held in memory (tests, conversions). */
export function stateDictFromTensors(
  tensors: Record<string, FloatTensor> | Map<string, FloatTensor>, source = '<state dict>',
): StateDictSource {
  const map = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
  const get = (name: string) => {
    const t = map.get(name);
    if (!t) throw new Error(`${source}: no tensor named '${name}'`);
    if (t.data.length !== numElements(t.shape)) {
      throw new Error(`${source}: tensor '${name}' has ${t.data.length} values for shape ${formatShape(t.shape)}`);
    }
    return t;
  };
  return { source, names: () => [...map.keys()], shape: (n) => [...get(n).shape], read: (n) => get(n).data };
}

/** Every weight of the model with the name of the layer that owns it (shared weights once). */
export function weightsWithLayers(model: tf.LayersModel): Array<{ variable: tf.LayerVariable; layerName: string }> {
  const out: Array<{ variable: tf.LayerVariable; layerName: string }> = [];
  const seen = new Set<number>();
  for (const layer of model.layers) {
    for (const variable of layer.weights) {
      if (seen.has(variable.id)) continue;
      seen.add(variable.id);
      out.push({ variable, layerName: layer.name });
    }
  }
  return out;
}

/** tfjs appends `_1`, `_2`, ... to variable names it has seen before; `originalName` has none. */
export function baseName(v: tf.LayerVariable): string {
  return v.originalName ?? v.name.replace(/_\d+$/, '');
}

// ---------------------------------------------------------------------------------------------
// Layouts (row-major Float32Arrays)

export function oihwToHwio(data: Float32Array, [o, i, h, w]: number[]): Float32Array {
  const out = new Float32Array(data.length);
  for (let a = 0; a < o; a++)
    for (let b = 0; b < i; b++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) out[((y * w + x) * i + b) * o + a] = data[((a * i + b) * h + y) * w + x];
  return out;
}

export function hwioToOihw(data: Float32Array, [h, w, i, o]: number[]): Float32Array {
  const out = new Float32Array(data.length);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let b = 0; b < i; b++)
        for (let a = 0; a < o; a++) out[((a * i + b) * h + y) * w + x] = data[((y * w + x) * i + b) * o + a];
  return out;
}

export function transpose2d(data: Float32Array, [rows, cols]: number[]): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/**
 * Adapts OIHW filters with I input channels to C channels. C = 1: the sum over the input channels
 * (a grey image seen as R = G = B gives the same response). Otherwise channel c takes input
 * channel c mod I, scaled by I/C so the response to a constant image keeps its size.
 */
export function adaptInputChannels(data: Float32Array, [o, i, h, w]: number[], channels: number): Float32Array {
  const hw = h * w;
  const out = new Float32Array(o * channels * hw);
  for (let a = 0; a < o; a++) {
    for (let c = 0; c < channels; c++) {
      const dst = (a * channels + c) * hw;
      const sources = channels === 1 ? [...Array(i).keys()] : [c % i];
      const scale = channels === 1 ? 1 : i / channels;
      for (const b of sources) {
        const src = (a * i + b) * hw;
        for (let k = 0; k < hw; k++) out[dst + k] += data[src + k] * scale;
      }
    }
  }
  return out;
}

/** The input-channel axis of a conv kernel in the file's layout. */
function channelAxis(layout: SourceLayout): number | undefined {
  return layout === 'oihw' ? 1 : layout === 'hwio' ? 2 : undefined;
}

/** The file's value in the model's layout, adapted to the model's input channels when asked. */
function toModelValue(t: TargetWeight, data: Float32Array, fileShape: number[], adapt: boolean): Float32Array {
  if (t.layout === 'oihw') {
    const oihw = adapt ? adaptInputChannels(data, fileShape, t.shape[1]) : data;
    return oihwToHwio(oihw, adapt ? t.shape : fileShape);
  }
  if (t.layout === 'hwio') {
    if (!adapt) return data;
    const [h, w, i, o] = fileShape;
    return oihwToHwio(adaptInputChannels(hwioToOihw(data, fileShape), [o, i, h, w], t.shape[2]), [o, t.shape[2], h, w]);
  }
  if (t.layout === 'out-in') return transpose2d(data, fileShape);
  return data;
}

// ---------------------------------------------------------------------------------------------
// Planning and loading

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Only the input-channel dimension of a conv kernel differs. */
function differsInChannelsOnly(t: TargetWeight, actual: number[]): boolean {
  const axis = channelAxis(t.layout);
  if (axis === undefined || actual.length !== 4 || t.shape.length !== 4 || actual[axis] < 1) return false;
  return t.shape.every((d, k) => (k === axis ? d !== actual[k] : d === actual[k]));
}

/** Whether a weight belongs to the part named by a tfjs layer name or a key prefix. */
export function belongsTo(t: TargetWeight, part: string): boolean {
  return t.layerName === part || t.key.startsWith(part + '.') || t.key.startsWith(part + '/');
}

export interface KeyRules {
  /** Rewrites file keys to the names targets use (e.g. legacy torchvision keys). */
  normalise?: (key: string) => string;
  /** File keys that carry no weight and are skipped silently. */
  ignorable?: (key: string) => boolean;
}

interface Plan {
  target: TargetWeight;
  fileKey: string;
  fileShape: number[];
  adapt: boolean;
}

/** Maps normalised keys to the keys as they are in the file. */
function indexFileKeys(state: StateDictSource, normalise: (key: string) => string): Map<string, string> {
  const index = new Map<string, string>();
  for (const key of state.names()) {
    const norm = normalise(key);
    const other = index.get(norm);
    if (other !== undefined) throw new Error(`${state.source}: tensors '${other}' and '${key}' name the same weight`);
    index.set(norm, key);
  }
  return index;
}

function classifierSkipped(
  targets: TargetWeight[], files: Map<string, string>, state: StateDictSource, opts: WeightLoadOptions, part: string,
): boolean {
  if (opts.skipClassifier === true) return true;
  if (opts.skipClassifier !== 'auto') return false;
  // Skip the classifier as a whole when any of its tensors does not fit.
  return targets.filter((t) => belongsTo(t, part)).some((t) => {
    const key = files.get(t.key);
    return key === undefined || !sameShape(t.shape, state.shape(key));
  });
}

/** The parent of a key (`classifier.weight` -> `classifier.`), to recognise a skipped head's keys. */
function keyParent(key: string): string {
  return key.replace(/[^./]+$/, '');
}

/** Checks every tensor; returns what to copy, or throws a WeightsMismatchError listing every problem. */
function plan(
  targets: TargetWeight[], state: StateDictSource, opts: WeightLoadOptions, rules: KeyRules, defaults: { firstConv: string; classifier: string },
): { plans: Plan[]; report: WeightLoadReport } {
  const firstConv = opts.firstConv ?? defaults.firstConv;
  const classifier = opts.classifier ?? defaults.classifier;
  const files = indexFileKeys(state, rules.normalise ?? ((k) => k));
  const skipHead = classifierSkipped(targets, files, state, opts, classifier);
  const head = targets.filter((t) => belongsTo(t, classifier));
  const headPrefixes = [classifier + '.', classifier + '/', ...head.map((t) => keyParent(t.key))];
  const report: WeightLoadReport = { loaded: [], adapted: [], skipped: [], ignored: [] };
  const problems: MismatchProblem[] = [];
  const plans: Plan[] = [];
  const used = new Set<string>();
  for (const t of targets) {
    if (skipHead && head.includes(t)) {
      report.skipped.push(t.tfName);
      continue;
    }
    const fileKey = files.get(t.key);
    if (fileKey === undefined) {
      problems.push({ kind: 'missing', key: t.key, tfName: t.tfName, expected: t.shape });
      continue;
    }
    used.add(t.key);
    const fileShape = state.shape(fileKey);
    const fits = sameShape(t.shape, fileShape);
    const adapt = !fits && opts.adaptInputChannels !== false && belongsTo(t, firstConv) && differsInChannelsOnly(t, fileShape);
    if (!fits && !adapt) {
      problems.push({ kind: 'shape', key: fileKey, tfName: t.tfName, expected: t.shape, actual: fileShape });
      continue;
    }
    plans.push({ target: t, fileKey, fileShape, adapt });
  }
  for (const [norm, key] of files) {
    if (used.has(norm)) continue;
    if (rules.ignorable?.(norm) || (skipHead && headPrefixes.some((prefix) => norm.startsWith(prefix)))) {
      report.ignored.push(key);
    } else {
      problems.push({ kind: 'unexpected', key, actual: state.shape(key) });
    }
  }
  if (problems.length > 0) throw new WeightsMismatchError(state.source, problems);
  for (const p of plans) {
    if (p.adapt) report.adapted.push({ key: p.fileKey, from: p.fileShape, to: p.target.shape });
    else report.loaded.push(p.fileKey);
  }
  return { plans, report };
}

/**
 * Loads `state` into the targets' variables. Nothing is written unless every tensor fits and
 * decodes, so a failed load leaves the model as it was.
 */
/** Damaged or diverged weights are refused before any is written: NaN, infinities, negative BatchNorm variances. */
function checkValues(source: string, key: string, tfName: string, values: Float32Array): void {
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`${source}: tensor '${key}' holds ${values[bad]} at index ${bad}; weights must be finite numbers`);
  if (!tfName.endsWith('moving_variance')) return;
  const negative = values.findIndex((v) => v < 0);
  if (negative >= 0) {
    throw new Error(`${source}: tensor '${key}' is a BatchNorm running variance and holds ${values[negative]} at index ${negative}; variances cannot be negative`);
  }
}

export function loadIntoTargets(
  targets: TargetWeight[], state: StateDictSource, opts: WeightLoadOptions, rules: KeyRules,
  defaults: { firstConv: string; classifier: string },
): WeightLoadReport {
  const { plans, report } = plan(targets, state, opts, rules, defaults);
  const values = plans.map((p) => toModelValue(p.target, state.read(p.fileKey), p.fileShape, p.adapt));
  plans.forEach((p, i) => checkValues(state.source, p.fileKey, p.target.tfName, values[i]));
  plans.forEach((p, i) => {
    const t = tf.tensor(values[i], p.target.variable.shape as number[], 'float32');
    p.target.variable.write(t);
    t.dispose();
  });
  return report;
}
