// Maps torchvision/timm DenseNet state dicts onto the zoo's LayersModels and back.
//
// The zoo names its weights after where they sit (src/layers/layer-names.ts):
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
import { WeightParam, WeightPlace, parseWeightName } from '../layers/layer-names';

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

const TORCH_PARAMS: Record<WeightParam, string> = {
  kernel: 'weight', bias: 'bias', gamma: 'weight', beta: 'bias', moving_mean: 'running_mean', moving_variance: 'running_var',
};

/** The torchvision module of a weight's place (see src/layers/layer-names.ts); undefined where torchvision's DenseNet has none. */
function torchModuleOf({ stage, layer, part }: WeightPlace): string | undefined {
  switch (stage.kind) {
    case 'stem':
      return part === 'conv' ? 'features.conv0' : part === 'norm' ? 'features.norm0' : undefined;
    case 'block':
      return layer === undefined ? undefined : `features.denseblock${stage.index}.denselayer${layer}.${part}`;
    case 'transition':
      return layer === undefined && part !== undefined ? `features.transition${stage.index}.${part}` : undefined;
    case 'final':
      return part === 'norm' ? 'features.norm5' : undefined;
    case 'classifier':
      return part === undefined ? 'classifier' : undefined;
    default:
      return undefined;
  }
}

function kindOf({ part, param }: WeightPlace): WeightKind {
  if (param !== 'kernel') return 'vector';
  return part === undefined ? 'linear' : 'conv';
}

/** The torchvision key and layout of one tfjs weight name; undefined if it follows no known name. */
export function torchvisionKeyOf(tfName: string): { key: string; kind: WeightKind } | undefined {
  const place = parseWeightName(tfName);
  const module = place && torchModuleOf(place);
  return module === undefined ? undefined : { key: `${module}.${TORCH_PARAMS[place!.param]}`, kind: kindOf(place!) };
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
export async function exportTorchvisionStateDict(model: tf.LayersModel): Promise<Map<string, FloatTensor>> {
  const out = new Map<string, FloatTensor>();
  for (const b of bindWeights(model)) {
    // read() returns the variable itself and data() may share its storage: copy.
    const tfData = Float32Array.from((await b.variable.read().data()) as Float32Array);
    out.set(b.torchKey, { shape: b.torchShape, data: toTorchLayout(b, tfData) });
  }
  return out;
}

/** Writes the model as a torchvision-keyed `.safetensors` file (atomically). */
export async function saveTorchvisionSafetensors(
  model: tf.LayersModel, file: string, metadata: Record<string, string> = {},
): Promise<void> {
  await writeSafetensors(file, await exportTorchvisionStateDict(model), { metadata: { format: 'pt', ...metadata } });
}
