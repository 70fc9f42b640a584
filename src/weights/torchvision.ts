// Maps torchvision/timm DenseNet state dicts onto the zoo's LayersModels and back.
//
// The zoo names its weights after where they sit (see the builders in src/models/):
//   stem_conv/kernel                       <-> features.conv0.weight
//   stem_norm/{gamma,beta,moving_*}        <-> features.norm0.{weight,bias,running_*}
//   block{b}_layer{l}/norm1|norm2/...      <-> features.denseblock{b}.denselayer{l}.norm1|norm2....
//   block{b}_layer{l}/conv1|conv2/kernel   <-> features.denseblock{b}.denselayer{l}.conv1|conv2.weight
//   transition{t}_norm/..., _conv/kernel   <-> features.transition{t}.norm...., .conv.weight
//   final_norm/...                         <-> features.norm5....
//   classifier/kernel, classifier/bias     <-> classifier.weight, classifier.bias
// Layouts: conv OIHW <-> HWIO, linear [out,in] <-> [in,out]; BN num_batches_tracked is ignored.
// Every tensor is checked before anything is written, so a failed load leaves the model untouched.
import * as tf from '../tf';
import { FloatTensor, formatShape, numElements, readSafetensors, writeSafetensors } from './safetensors';

/** What a weight is, which decides its layout conversion. */
export type WeightKind = 'conv' | 'linear' | 'vector';

/** The part of a state dict the loader needs; a `SafetensorsFile` is one. */
export interface StateDictSource {
  /** File name or URL, for error messages. */
  readonly source: string;
  names(): string[];
  shape(name: string): number[];
  read(name: string): Float32Array;
}

/** A model weight and its torchvision counterpart. */
export interface WeightBinding {
  variable: tf.LayerVariable;
  /** The tfjs weight name without tfjs's uniqueness suffix, e.g. `block1_layer2/conv1/kernel`. */
  tfName: string;
  /** The tfjs layer that owns it, e.g. `block1_layer2`. */
  layerName: string;
  torchKey: string;
  kind: WeightKind;
  /** Shape of the tensor in the torchvision layout. */
  torchShape: number[];
}

export interface TorchvisionLoadOptions {
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
  /** The first conv, as a torchvision prefix or a tfjs layer name. Default `features.conv0`. */
  firstConv?: string;
  /** The classifier, as a torchvision prefix or a tfjs layer name. Default `classifier`. */
  classifier?: string;
}

export interface TorchvisionLoadReport {
  /** Torchvision keys copied as they are. */
  loaded: string[];
  /** Torchvision keys whose first-conv filters were adapted to another channel count. */
  adapted: Array<{ key: string; from: number[]; to: number[] }>;
  /** Model weights left untouched (the classifier, when skipped). */
  skipped: string[];
  /** Keys in the file that carry no weight (num_batches_tracked, a skipped classifier). */
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

function describeProblem(p: MismatchProblem, source: string): string {
  switch (p.kind) {
    case 'missing':
      return `missing tensor '${p.key}' (model weight '${p.tfName}', expected shape ${formatShape(p.expected)}) is not in the file`;
    case 'unexpected':
      return `unexpected tensor '${p.key}' ${formatShape(p.actual)} matches no weight of the model`;
    case 'shape':
      return `wrong shape for tensor '${p.key}': the model (weight '${p.tfName}') needs ${formatShape(p.expected)} but the file has ${formatShape(p.actual)}`;
  }
  return source;
}

function describeProblems(source: string, problems: MismatchProblem[]): string {
  const counts = ['missing', 'unexpected', 'shape'].map((k) => [k, problems.filter((p) => p.kind === k).length] as const)
    .filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k === 'shape' ? 'wrong shape' : k}`).join(', ');
  const lines = problems.slice(0, MAX_LISTED).map((p) => '  ' + describeProblem(p, source));
  if (problems.length > MAX_LISTED) lines.push(`  ... and ${problems.length - MAX_LISTED} more`);
  return `${source}: the weights do not fit the model (${counts}):\n${lines.join('\n')}`;
}

// ---------------------------------------------------------------------------------------------
// Names

const BN_PARAMS: Record<string, string> = {
  gamma: 'weight', beta: 'bias', moving_mean: 'running_mean', moving_variance: 'running_var',
};
const BN = '(gamma|beta|moving_mean|moving_variance)';

interface Rule {
  re: RegExp;
  map: (m: RegExpMatchArray) => { prefix: string; param: string; kind: WeightKind };
}

/** Each rule matches the end of a tfjs weight name (there may be name scopes before it). */
const RULES: Rule[] = [
  { re: /(?:^|\/)(stem_conv)\/(kernel|bias)$/, map: (m) => conv('features.conv0', m[2]) },
  { re: new RegExp(`(?:^|/)(stem_norm)/${BN}$`), map: (m) => bn('features.norm0', m[2]) },
  {
    re: new RegExp(`(?:^|/)(block(\\d+)_layer(\\d+))/(norm[12])/${BN}$`),
    map: (m) => bn(`features.denseblock${m[2]}.denselayer${m[3]}.${m[4]}`, m[5]),
  },
  {
    re: /(?:^|\/)(block(\d+)_layer(\d+))\/(conv[12])\/(kernel|bias)$/,
    map: (m) => conv(`features.denseblock${m[2]}.denselayer${m[3]}.${m[4]}`, m[5]),
  },
  { re: new RegExp(`(?:^|/)(transition(\\d+)_norm)/${BN}$`), map: (m) => bn(`features.transition${m[2]}.norm`, m[3]) },
  { re: /(?:^|\/)(transition(\d+)_conv)\/(kernel|bias)$/, map: (m) => conv(`features.transition${m[2]}.conv`, m[3]) },
  { re: new RegExp(`(?:^|/)(final_norm)/${BN}$`), map: (m) => bn('features.norm5', m[2]) },
  {
    re: /(?:^|\/)(classifier)\/(kernel|bias)$/,
    map: (m) => ({ prefix: 'classifier', param: m[2] === 'kernel' ? 'weight' : 'bias', kind: m[2] === 'kernel' ? 'linear' : 'vector' }),
  },
];

function conv(prefix: string, param: string) {
  return param === 'kernel'
    ? { prefix, param: 'weight', kind: 'conv' as const }
    : { prefix, param: 'bias', kind: 'vector' as const };
}

function bn(prefix: string, param: string) {
  return { prefix, param: BN_PARAMS[param], kind: 'vector' as const };
}

/** tfjs appends `_1`, `_2`, ... to variable names it has seen before; `originalName` has none. */
function baseName(v: tf.LayerVariable): string {
  return v.originalName ?? v.name.replace(/_\d+$/, '');
}

/** The torchvision key and layout of one tfjs weight name; undefined if it follows no known name. */
export function torchvisionKeyOf(tfName: string): { key: string; layerName: string; kind: WeightKind } | undefined {
  for (const rule of RULES) {
    const m = tfName.match(rule.re);
    if (m) {
      const { prefix, param, kind } = rule.map(m);
      return { key: `${prefix}.${param}`, layerName: m[1], kind };
    }
  }
  return undefined;
}

function torchShapeOf(kind: WeightKind, tfShape: number[]): number[] {
  if (kind === 'conv') {
    const [h, w, i, o] = tfShape;
    return [o, i, h, w];
  }
  if (kind === 'linear') return [tfShape[1], tfShape[0]];
  return [...tfShape];
}

/** Pairs every weight of the model with its torchvision key; fails on weights that have none. */
export function bindWeights(model: tf.LayersModel): WeightBinding[] {
  const bindings: WeightBinding[] = [];
  const unknown: string[] = [];
  const seen = new Map<string, string>();
  for (const variable of model.weights) {
    const tfName = baseName(variable);
    const found = torchvisionKeyOf(tfName);
    if (!found) {
      unknown.push(tfName);
      continue;
    }
    const other = seen.get(found.key);
    if (other) throw new Error(`model weights '${other}' and '${tfName}' both map to torchvision '${found.key}'`);
    seen.set(found.key, tfName);
    const tfShape = variable.shape as number[];
    if ((found.kind === 'conv' && tfShape.length !== 4) || (found.kind === 'linear' && tfShape.length !== 2)) {
      throw new Error(`model weight '${tfName}' has shape ${formatShape(tfShape)}, not a ${found.kind} kernel`);
    }
    bindings.push({ variable, tfName, layerName: found.layerName, torchKey: found.key, kind: found.kind, torchShape: torchShapeOf(found.kind, tfShape) });
  }
  if (unknown.length > 0) {
    throw new Error(
      `model '${model.name}' has weights with no torchvision DenseNet counterpart: ${unknown.slice(0, 10).join(', ')}` +
        `${unknown.length > 10 ? ` (and ${unknown.length - 10} more)` : ''}; is it a DenseNet built by the zoo?`,
    );
  }
  return bindings;
}

/** Whether a binding belongs to the part named by a torchvision prefix or a tfjs layer name. */
function belongsTo(b: WeightBinding, part: string): boolean {
  return b.layerName === part || b.torchKey.startsWith(part + '.');
}

/** Keys as torchvision writes them today: no DataParallel `module.`, no legacy `norm.1`. */
export function normaliseTorchKey(key: string): string {
  return key
    .replace(/^module\./, '')
    .replace(/(denselayer\d+\.(?:norm|relu|conv))\.([12])\./, '$1$2.');
}

function isIgnorableKey(key: string): boolean {
  return key.endsWith('.num_batches_tracked');
}

// ---------------------------------------------------------------------------------------------
// Layout conversions (row-major Float32Arrays)

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

function toTfLayout(b: WeightBinding, torchData: Float32Array, torchShape: number[]): Float32Array {
  if (b.kind === 'conv') return oihwToHwio(torchData, torchShape);
  if (b.kind === 'linear') return transpose2d(torchData, torchShape);
  return torchData;
}

function toTorchLayout(b: WeightBinding, tfData: Float32Array): Float32Array {
  const tfShape = b.variable.shape as number[];
  if (b.kind === 'conv') return hwioToOihw(tfData, tfShape);
  if (b.kind === 'linear') return transpose2d(tfData, tfShape);
  return tfData;
}

// ---------------------------------------------------------------------------------------------
// Loading

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Only the input-channel dimension of a conv kernel differs. */
function differsInInputChannels(expected: number[], actual: number[]): boolean {
  return expected.length === 4 && actual.length === 4 && actual[1] > 0 &&
    expected[0] === actual[0] && expected[2] === actual[2] && expected[3] === actual[3] && expected[1] !== actual[1];
}

interface Plan {
  binding: WeightBinding;
  fileKey: string;
  fileShape: number[];
  adapt: boolean;
}

/** Maps normalised keys to the keys as they are in the file. */
function indexFileKeys(state: StateDictSource): Map<string, string> {
  const index = new Map<string, string>();
  for (const key of state.names()) {
    const norm = normaliseTorchKey(key);
    const other = index.get(norm);
    if (other !== undefined) throw new Error(`${state.source}: tensors '${other}' and '${key}' are the same torchvision weight`);
    index.set(norm, key);
  }
  return index;
}

function classifierSkipped(
  bindings: WeightBinding[], files: Map<string, string>, state: StateDictSource, opts: TorchvisionLoadOptions, part: string,
): boolean {
  if (opts.skipClassifier === true) return true;
  if (opts.skipClassifier !== 'auto') return false;
  // Skip the classifier as a whole when any of its tensors does not fit.
  return bindings.filter((b) => belongsTo(b, part)).some((b) => {
    const key = files.get(b.torchKey);
    return key === undefined || !sameShape(b.torchShape, state.shape(key));
  });
}

/** Checks every tensor; returns what to copy, or throws a WeightsMismatchError listing every problem. */
export function planTorchvisionLoad(
  model: tf.LayersModel, state: StateDictSource, opts: TorchvisionLoadOptions = {},
): { plans: Plan[]; report: TorchvisionLoadReport } {
  const firstConv = opts.firstConv ?? 'features.conv0';
  const classifier = opts.classifier ?? 'classifier';
  const bindings = bindWeights(model);
  const files = indexFileKeys(state);
  const skipHead = classifierSkipped(bindings, files, state, opts, classifier);
  const report: TorchvisionLoadReport = { loaded: [], adapted: [], skipped: [], ignored: [] };
  const problems: MismatchProblem[] = [];
  const plans: Plan[] = [];
  const used = new Set<string>();
  for (const b of bindings) {
    if (skipHead && belongsTo(b, classifier)) {
      report.skipped.push(b.tfName);
      continue;
    }
    const fileKey = files.get(b.torchKey);
    if (fileKey === undefined) {
      problems.push({ kind: 'missing', key: b.torchKey, tfName: b.tfName, expected: b.torchShape });
      continue;
    }
    used.add(b.torchKey);
    const fileShape = state.shape(fileKey);
    const adapt = !sameShape(b.torchShape, fileShape) && opts.adaptInputChannels !== false &&
      belongsTo(b, firstConv) && b.kind === 'conv' && differsInInputChannels(b.torchShape, fileShape);
    if (!adapt && !sameShape(b.torchShape, fileShape)) {
      problems.push({ kind: 'shape', key: fileKey, tfName: b.tfName, expected: b.torchShape, actual: fileShape });
      continue;
    }
    plans.push({ binding: b, fileKey, fileShape, adapt });
  }
  for (const [norm, key] of files) {
    if (used.has(norm)) continue;
    if (isIgnorableKey(norm) || (skipHead && (norm.startsWith(classifier + '.') || isHeadOf(bindings, norm, classifier)))) {
      report.ignored.push(key);
    } else {
      problems.push({ kind: 'unexpected', key, actual: state.shape(key) });
    }
  }
  if (problems.length > 0) throw new WeightsMismatchError(state.source, problems);
  for (const p of plans) {
    if (p.adapt) report.adapted.push({ key: p.fileKey, from: p.fileShape, to: p.binding.torchShape });
    else report.loaded.push(p.fileKey);
  }
  return { plans, report };
}

/** A classifier named by a tfjs layer name still has torchvision keys under the binding's prefix. */
function isHeadOf(bindings: WeightBinding[], key: string, part: string): boolean {
  return bindings.some((b) => belongsTo(b, part) && key.startsWith(b.torchKey.replace(/\.[^.]+$/, '.')));
}

/** Copies a torchvision/timm DenseNet state dict into the model (see the module comment). */
export function loadTorchvisionStateDict(
  model: tf.LayersModel, state: StateDictSource, opts: TorchvisionLoadOptions = {},
): TorchvisionLoadReport {
  const { plans, report } = planTorchvisionLoad(model, state, opts);
  // Convert everything first: a decoding error must not leave a half-loaded model.
  const values = plans.map((p) => {
    let data = state.read(p.fileKey);
    let shape = p.fileShape;
    if (p.adapt) {
      data = adaptInputChannels(data, shape, p.binding.torchShape[1]);
      shape = p.binding.torchShape;
    }
    return toTfLayout(p.binding, data, shape);
  });
  plans.forEach((p, i) => {
    const t = tf.tensor(values[i], p.binding.variable.shape as number[], 'float32');
    p.binding.variable.write(t);
    t.dispose();
  });
  return report;
}

/** Opens a `.safetensors` file or URL and loads it into the model. */
export async function loadTorchvisionSafetensors(
  model: tf.LayersModel, pathOrUrl: string, opts: TorchvisionLoadOptions = {},
): Promise<TorchvisionLoadReport> {
  return loadTorchvisionStateDict(model, await readSafetensors(pathOrUrl), opts);
}

/** A state dict held in memory (tests, conversions). */
export function stateDictFromTensors(tensors: Record<string, FloatTensor> | Map<string, FloatTensor>, source = '<state dict>'): StateDictSource {
  const map = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
  const get = (name: string) => {
    const t = map.get(name);
    if (!t) throw new Error(`${source}: no tensor named '${name}'`);
    if (t.data.length !== numElements(t.shape)) throw new Error(`${source}: tensor '${name}' has ${t.data.length} values for shape ${formatShape(t.shape)}`);
    return t;
  };
  return { source, names: () => [...map.keys()], shape: (n) => [...get(n).shape], read: (n) => get(n).data };
}

// ---------------------------------------------------------------------------------------------
// Export

/** The model's weights under torchvision keys and layouts (no num_batches_tracked: PyTorch fills it in). */
export function exportTorchvisionStateDict(model: tf.LayersModel): Map<string, FloatTensor> {
  const out = new Map<string, FloatTensor>();
  for (const b of bindWeights(model)) {
    const value = b.variable.read();
    const data = toTorchLayout(b, value.dataSync() as Float32Array);
    out.set(b.torchKey, { shape: b.torchShape, data: data === value.dataSync() ? Float32Array.from(data) : data });
  }
  return out;
}

/** Writes the model as a torchvision-keyed `.safetensors` file (atomically). */
export async function saveTorchvisionSafetensors(
  model: tf.LayersModel, file: string, metadata: Record<string, string> = {},
): Promise<void> {
  await writeSafetensors(file, exportTorchvisionStateDict(model), { metadata: { format: 'pt', ...metadata } });
}
