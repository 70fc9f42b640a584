// Maps torchvision/timm DenseNet state dicts onto the zoo's LayersModels and back.
//
// The zoo names its weights after where they sit (see the builders in src/models/):
//   stem_conv/kernel                       <-> features.conv0.weight
//   stem_norm/{gamma,beta,moving_*}        <-> features.norm0.{weight,bias,running_*}
//   block{b}/layer{l}/norm1|norm2/...      <-> features.denseblock{b}.denselayer{l}.norm1|norm2....
//   block{b}/layer{l}/conv1|conv2/kernel   <-> features.denseblock{b}.denselayer{l}.conv1|conv2.weight
//   transition{t}/norm/..., /conv/kernel   <-> features.transition{t}.norm...., .conv.weight
//   final_norm/...                         <-> features.norm5....
//   classifier/kernel, classifier/bias     <-> classifier.weight, classifier.bias
// A part may also be a layer of its own: `_` for `/` (stem_conv, block1_layer2/..., transition1_conv).
// Layouts: conv OIHW <-> HWIO, linear [out,in] <-> [in,out]; BN num_batches_tracked is ignored.
// Every tensor is checked before anything is written, so a failed load leaves the model untouched.
import * as tf from '../tf';
import {
  StateDictSource, TargetWeight, WeightLoadOptions, WeightLoadReport, baseName, hwioToOihw, loadIntoTargets,
  transpose2d, weightsWithLayers,
} from './mapping';
import { FloatTensor, formatShape, readSafetensors, writeSafetensors } from './safetensors';

export {
  MismatchProblem, StateDictSource, WeightsMismatchError, adaptInputChannels, hwioToOihw, oihwToHwio,
  stateDictFromTensors, transpose2d,
} from './mapping';

/** What a weight is, which decides its layout conversion. */
export type WeightKind = 'conv' | 'linear' | 'vector';

/** A model weight and its torchvision counterpart. */
export interface WeightBinding {
  variable: tf.LayerVariable;
  /** The tfjs weight name without tfjs's uniqueness suffix, e.g. `block1/layer2/conv1/kernel`. */
  tfName: string;
  /** The tfjs layer that owns it, e.g. `block1`. */
  layerName: string;
  torchKey: string;
  kind: WeightKind;
  /** Shape of the tensor in the torchvision layout. */
  torchShape: number[];
}

/** Options of `loadTorchvisionStateDict`; `firstConv` defaults to `features.conv0`, `classifier` to `classifier`. */
export type TorchvisionLoadOptions = WeightLoadOptions;
export type TorchvisionLoadReport = WeightLoadReport;

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

/**
 * Each rule matches the end of a tfjs weight name (name scopes may come before it). A part may
 * be a layer of its own (`transition1_conv/kernel`) or a sub-part of a custom layer
 * (`transition1/conv/kernel`, `block1/layer2/norm1/gamma`): the separator is `_` or `/`.
 */
const RULES: Rule[] = [
  { re: /(?:^|\/)stem[_/]conv\/(kernel|bias)$/, map: (m) => conv('features.conv0', m[1]) },
  { re: new RegExp(`(?:^|/)stem[_/]norm/${BN}$`), map: (m) => bn('features.norm0', m[1]) },
  {
    re: new RegExp(`(?:^|/)block(\\d+)[_/]layer(\\d+)/(norm[12])/${BN}$`),
    map: (m) => bn(`features.denseblock${m[1]}.denselayer${m[2]}.${m[3]}`, m[4]),
  },
  {
    re: /(?:^|\/)block(\d+)[_/]layer(\d+)\/(conv[12])\/(kernel|bias)$/,
    map: (m) => conv(`features.denseblock${m[1]}.denselayer${m[2]}.${m[3]}`, m[4]),
  },
  { re: new RegExp(`(?:^|/)transition(\\d+)[_/]norm/${BN}$`), map: (m) => bn(`features.transition${m[1]}.norm`, m[2]) },
  { re: /(?:^|\/)transition(\d+)[_/]conv\/(kernel|bias)$/, map: (m) => conv(`features.transition${m[1]}.conv`, m[2]) },
  { re: new RegExp(`(?:^|/)final[_/]norm/${BN}$`), map: (m) => bn('features.norm5', m[1]) },
  {
    re: /(?:^|\/)classifier\/(kernel|bias)$/,
    map: (m) => ({ prefix: 'classifier', param: m[1] === 'kernel' ? 'weight' : 'bias', kind: m[1] === 'kernel' ? 'linear' : 'vector' }),
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

/** The torchvision key and layout of one tfjs weight name; undefined if it follows no known name. */
export function torchvisionKeyOf(tfName: string): { key: string; kind: WeightKind } | undefined {
  for (const rule of RULES) {
    const m = tfName.match(rule.re);
    if (m) {
      const { prefix, param, kind } = rule.map(m);
      return { key: `${prefix}.${param}`, kind };
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
  for (const { variable, layerName } of weightsWithLayers(model)) {
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
    bindings.push({ variable, tfName, layerName, torchKey: found.key, kind: found.kind, torchShape: torchShapeOf(found.kind, tfShape) });
  }
  if (unknown.length > 0) {
    throw new Error(
      `model '${model.name}' has weights with no torchvision DenseNet counterpart: ${unknown.slice(0, 10).join(', ')}` +
        `${unknown.length > 10 ? ` (and ${unknown.length - 10} more)` : ''}; is it a DenseNet built by the zoo?`,
    );
  }
  return bindings;
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

function toTorchLayout(b: WeightBinding, tfData: Float32Array): Float32Array {
  const tfShape = b.variable.shape as number[];
  if (b.kind === 'conv') return hwioToOihw(tfData, tfShape);
  if (b.kind === 'linear') return transpose2d(tfData, tfShape);
  return tfData;
}

const LAYOUTS: Record<WeightKind, TargetWeight['layout']> = { conv: 'oihw', linear: 'out-in', vector: 'plain' };

function targetsOf(model: tf.LayersModel): TargetWeight[] {
  return bindWeights(model).map((b) => ({
    variable: b.variable, tfName: b.tfName, layerName: b.layerName, key: b.torchKey, layout: LAYOUTS[b.kind], shape: b.torchShape,
  }));
}

/** Copies a torchvision/timm DenseNet state dict into the model (see the module comment). */
export function loadTorchvisionStateDict(
  model: tf.LayersModel, state: StateDictSource, opts: TorchvisionLoadOptions = {},
): TorchvisionLoadReport {
  return loadIntoTargets(targetsOf(model), state, opts, { normalise: normaliseTorchKey, ignorable: isIgnorableKey }, {
    firstConv: 'features.conv0', classifier: 'classifier',
  });
}

/** Opens a `.safetensors` file or URL and loads it into the model. */
export async function loadTorchvisionSafetensors(
  model: tf.LayersModel, pathOrUrl: string, opts: TorchvisionLoadOptions = {},
): Promise<TorchvisionLoadReport> {
  return loadTorchvisionStateDict(model, await readSafetensors(pathOrUrl), opts);
}

// ---------------------------------------------------------------------------------------------
// Export

/** The model's weights under torchvision keys and layouts (no num_batches_tracked: PyTorch fills it in). */
export function exportTorchvisionStateDict(model: tf.LayersModel): Map<string, FloatTensor> {
  const out = new Map<string, FloatTensor>();
  for (const b of bindWeights(model)) {
    // read() returns the variable itself and dataSync() may share its storage: copy.
    const tfData = Float32Array.from(b.variable.read().dataSync() as Float32Array);
    out.set(b.torchKey, { shape: b.torchShape, data: toTorchLayout(b, tfData) });
  }
  return out;
}

/** Writes the model as a torchvision-keyed `.safetensors` file (atomically). */
export async function saveTorchvisionSafetensors(
  model: tf.LayersModel, file: string, metadata: Record<string, string> = {},
): Promise<void> {
  await writeSafetensors(file, exportTorchvisionStateDict(model), { metadata: { format: 'pt', ...metadata } });
}
