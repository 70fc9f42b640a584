// The one road from a name to an architecture: a zoo record plus the user's options become a
// complete, checked description of the model to build. zoo.create, the trainer, eval, predict,
// the planner and the benches all resolve through here, so an option means the same everywhere.
import type { DenseNetArch } from '../models/densenet';
import type { FCDenseNetArch } from '../models/fc-densenet';
import type { BuildOptions, InputShape } from '../models/common';
import { DROPOUT_PLACEMENTS, DropoutPlacement } from '../layers/dropout';
import { KERNEL_INITS, KernelInit } from '../layers/initializers';
import { INFERENCE_STATS, InferenceStats } from '../layers/unit-variables';
import type { Task, ZooEntry } from './records';
import { cifarBlockLayers } from './records';

export interface ModelOptions {
  /** [height, width, channels]; channels default to `inChannels` or the record's. */
  inputShape?: InputShape | [number, number];
  numClasses?: number;
  inChannels?: number;
  dropRate?: number;
  /**
   * DenseNet: dropout after every conv but the stem's, transitions included ('every-conv', the paper's,
   * default) or after each dense layer's last conv only ('last-conv', torchvision's drop_rate).
   */
  dropoutPlacement?: DropoutPlacement;
  /** DenseNet transition compression theta. */
  compression?: number;
  /** DenseNet: the 1x1 bottleneck (4k) in every dense layer. */
  bottleneck?: boolean;
  /** CIFAR DenseNets: total depth L (BC: 6n+4, plain: 3n+4), three equal blocks. */
  depth?: number;
  /** Growth rate k (DenseNet-BC's CIFAR stem follows it at 2k unless `stemChannels` is given). */
  growthRate?: number;
  /** Layers of each dense block (FC-DenseNet: of each encoder block; the decoder mirrors it). */
  blockLayers?: number[];
  stemChannels?: number;
  /** CIFAR DenseNets: a BatchNorm-ReLU after the stem conv, as many public CIFAR checkpoints have. */
  stemNorm?: boolean;
  /** Recompute concatenations and BN outputs in the backward pass instead of storing them. */
  memoryEfficient?: boolean;
  /** Conv kernel initialisation (default: the reference code's, he-normal for DenseNet, he-uniform for FC-DenseNet). */
  kernelInit?: KernelInit;
  /**
   * FC-DenseNet: the BatchNorm statistics of inference, 'running' averages (default) or each batch's
   * own ('batch', as the authors' code evaluates). Training always uses the batch's and updates the averages.
   */
  batchNorm?: InferenceStats;
}

/** What it takes to rebuild a model exactly: its name and every option, resolved (checkpoints record this). */
export interface ModelSpec extends ModelOptions {
  name: string;
  task: Task;
  inputShape: InputShape;
  numClasses: number;
  memoryEfficient: boolean;
}

const SPEC_KEYS = [
  'dropRate', 'dropoutPlacement', 'compression', 'bottleneck', 'depth', 'growthRate', 'blockLayers', 'stemChannels', 'stemNorm', 'kernelInit', 'batchNorm',
] as const satisfies ReadonlyArray<keyof ModelOptions>;

export interface ResolvedModel {
  spec: ModelSpec;
  arch: DenseNetArch | FCDenseNetArch;
  build: BuildOptions;
}

const positiveInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1;

function check(name: string, ok: boolean, what: string, value: unknown): void {
  if (!ok) throw new Error(`${name}: ${what}, got ${JSON.stringify(value)}`);
}

/** Options that only one family (or only the CIFAR stem) understands: one clear error. */
function refuseInapplicable(e: ZooEntry, o: ModelOptions): void {
  const given = (keys: Array<keyof ModelOptions>) => keys.filter((k) => o[k] !== undefined);
  if (o.batchNorm !== undefined && !INFERENCE_STATS.includes(o.batchNorm)) {
    throw new Error(`${e.name}: batchNorm must be one of ${INFERENCE_STATS.join(', ')}, got ${JSON.stringify(o.batchNorm)}`);
  }
  if (e.arch.family === 'densenet' && o.batchNorm === 'batch') {
    throw new Error(`${e.name}: batchNorm 'batch' (batch statistics at inference) applies to FC-DenseNet models`);
  }
  if (e.arch.family === 'fc-densenet') {
    const wrong = given(['compression', 'bottleneck', 'depth', 'stemNorm', 'dropoutPlacement']);
    if (wrong.length) throw new Error(`${e.name}: ${wrong.map((k) => `'${k}'`).join(', ')} apply to DenseNet models, not FC-DenseNet`);
    return;
  }
  if (e.arch.stem !== 'cifar') {
    const wrong = given(['depth', 'stemNorm']);
    if (wrong.length) throw new Error(`${e.name}: ${wrong.map((k) => `'${k}'`).join(', ')} apply to the CIFAR DenseNets (3x3 stem), not the ImageNet ones`);
  }
  if (o.depth !== undefined && o.blockLayers !== undefined) throw new Error(`${e.name}: give 'depth' or 'blockLayers', not both`);
}

function checkCommon(name: string, o: ModelOptions): void {
  if (o.growthRate !== undefined) check(name, positiveInt(o.growthRate), 'growthRate must be a positive integer', o.growthRate);
  if (o.stemChannels !== undefined) check(name, positiveInt(o.stemChannels), 'stemChannels must be a positive integer', o.stemChannels);
  if (o.blockLayers !== undefined) {
    check(name, Array.isArray(o.blockLayers) && o.blockLayers.length > 0 && o.blockLayers.every(positiveInt),
      'blockLayers must be a non-empty list of positive integers', o.blockLayers);
  }
  if (o.dropRate !== undefined) check(name, o.dropRate >= 0 && o.dropRate < 1, 'dropRate must be in [0, 1)', o.dropRate);
  if (o.dropoutPlacement !== undefined) {
    check(name, DROPOUT_PLACEMENTS.includes(o.dropoutPlacement), `dropoutPlacement must be one of ${DROPOUT_PLACEMENTS.join(', ')}`, o.dropoutPlacement);
  }
  if (o.compression !== undefined) check(name, o.compression > 0 && o.compression <= 1, 'compression must be in (0, 1]', o.compression);
  if (o.kernelInit !== undefined) check(name, KERNEL_INITS.includes(o.kernelInit), `kernelInit must be one of ${KERNEL_INITS.join(', ')}`, o.kernelInit);
}

function denseNetArch(e: ZooEntry & { arch: DenseNetArch }, o: ModelOptions): DenseNetArch {
  const base = e.arch;
  const bottleneckFactor = o.bottleneck === undefined ? base.bottleneckFactor : o.bottleneck ? 4 : 0;
  const growthRate = o.growthRate ?? base.growthRate;
  const bc = bottleneckFactor > 0;
  const blockLayers = o.depth !== undefined ? cifarBlockLayers(e.name, o.depth, bc) : [...(o.blockLayers ?? base.blockLayers)];
  // DenseNet-BC's CIFAR stem is 2k wide (the paper); the plain CIFAR DenseNets' is 16 whatever k.
  const cifarBCStem = base.stem === 'cifar' && bc && o.growthRate !== undefined ? 2 * growthRate : undefined;
  return {
    ...base, growthRate, blockLayers, bottleneckFactor,
    stemChannels: o.stemChannels ?? cifarBCStem ?? base.stemChannels,
    compression: o.compression ?? base.compression,
    dropRate: o.dropRate ?? base.dropRate,
    dropoutPlacement: o.dropoutPlacement ?? base.dropoutPlacement,
    kernelInit: o.kernelInit ?? base.kernelInit,
    stemNorm: base.stem === 'imagenet' ? true : o.stemNorm ?? base.stemNorm ?? false,
  };
}

function fcDenseNetArch(e: ZooEntry & { arch: FCDenseNetArch }, o: ModelOptions): FCDenseNetArch {
  const base = e.arch;
  return {
    ...base,
    growthRate: o.growthRate ?? base.growthRate,
    downLayers: [...(o.blockLayers ?? base.downLayers)],
    stemChannels: o.stemChannels ?? base.stemChannels,
    dropRate: o.dropRate ?? base.dropRate,
    kernelInit: o.kernelInit ?? base.kernelInit,
  };
}

function inputShapeOf(e: ZooEntry, o: ModelOptions): InputShape {
  if (o.inChannels !== undefined && o.inputShape?.[2] !== undefined && o.inChannels !== o.inputShape[2]) {
    throw new Error(`${e.name}: inChannels ${o.inChannels} contradicts inputShape channels ${o.inputShape[2]}`);
  }
  const channels = o.inputShape?.[2] ?? o.inChannels ?? e.input.shape[2];
  const [h, w] = o.inputShape ?? e.input.shape;
  return [h, w, channels];
}

/** The record's architecture with every option applied, checked, and the spec that rebuilds it. */
export function resolveModel(e: ZooEntry, options: ModelOptions = {}): ResolvedModel {
  refuseInapplicable(e, options);
  checkCommon(e.name, options);
  const numClasses = options.numClasses ?? e.numClasses;
  check(e.name, positiveInt(numClasses), 'numClasses must be a positive integer', options.numClasses);
  const inputShape = inputShapeOf(e, options);
  const memoryEfficient = options.memoryEfficient ?? false;
  const arch = e.arch.family === 'densenet'
    ? denseNetArch(e as ZooEntry & { arch: DenseNetArch }, options)
    : fcDenseNetArch(e as ZooEntry & { arch: FCDenseNetArch }, options);
  // The options that make the model what it is (architecture, initialisation, inference statistics); inChannels is folded into inputShape.
  const overrides = Object.fromEntries(SPEC_KEYS.filter((k) => options[k] !== undefined).map((k) => [k, options[k]])) as ModelOptions;
  const spec: ModelSpec = { ...overrides, name: e.name, task: e.task, inputShape, numClasses, memoryEfficient };
  return { spec, arch, build: { name: e.name, inputShape, numClasses, memoryEfficient, inferenceStats: options.batchNorm ?? 'running' } };
}

/** "densenet-bc-100-k12 (depth 40, k 12) 28x28x1 -> 10 classes". */
export function describeSpec(spec: ModelSpec): string {
  const fixed = new Set(['name', 'task', 'inputShape', 'numClasses', 'memoryEfficient']);
  const label = (k: string) => (k === 'growthRate' ? 'k' : k);
  const extra = Object.entries(spec).filter(([k]) => !fixed.has(k)).map(([k, v]) => `${label(k)} ${Array.isArray(v) ? v.join('-') : v}`);
  return `${spec.name}${extra.length ? ` (${extra.join(', ')})` : ''} ${spec.inputShape.join('x')} -> ${spec.numClasses} classes`;
}
