// What it takes to rebuild a trained model: the zoo name plus the options the trainer chose for
// the data (input size, channels, classes) and the user's architecture overrides. A checkpoint
// records this, and `eval` / `predict` build the same model from it.
import * as tf from '../tf';
import * as zoo from '../zoo';
import { buildDenseNet, DenseNetArch } from '../models/densenet';
import { buildFCDenseNet, FCDenseNetArch } from '../models/fc-densenet';
import type { Dataset } from '../data/dataset';

export interface ModelSpec {
  /** Zoo name. */
  name: string;
  task: 'classification' | 'segmentation';
  /** [H, W, C] the model is built for (the training batches' size). */
  inputShape: [number, number, number];
  numClasses: number;
  dropRate?: number;
  memoryEfficient: boolean;
  /**
   * DenseNet with the CIFAR stem only: total depth L (3 blocks of (L-4)/6 bottleneck layers for
   * DenseNet-BC, (L-4)/3 plain layers otherwise), for smaller variants of a zoo model.
   */
  depth?: number;
  /** Growth rate k (DenseNet-BC's stem is 2k wide, as in the paper). */
  growthRate?: number;
}

export interface SpecOptions {
  dropRate?: number;
  memoryEfficient?: boolean;
  depth?: number;
  growthRate?: number;
  /** Segmentation: training crop side, when smaller than the images. */
  crop?: number;
}

/** The model spec that fits a dataset: its channels and classes, its image size (or the crop). */
export function specForDataset(name: string, dataset: Dataset, opts: SpecOptions = {}): ModelSpec {
  const e = zoo.entry(name);
  if (e.task !== dataset.task) {
    throw new Error(`${name} is a ${e.task} model but dataset ${dataset.name} is a ${dataset.task} dataset; ` +
      `pick a ${dataset.task === 'segmentation' ? 'fc-densenet' : 'densenet'} model`);
  }
  const [h, w, c] = dataset.imageShape;
  const crop = opts.crop !== undefined && dataset.task === 'segmentation' ? opts.crop : undefined;
  const inputShape: [number, number, number] = crop !== undefined ? [Math.min(h, crop), Math.min(w, crop), c] : [h, w, c];
  const spec: ModelSpec = {
    name, task: e.task, inputShape, numClasses: dataset.numClasses,
    memoryEfficient: opts.memoryEfficient ?? false,
  };
  if (opts.dropRate !== undefined) spec.dropRate = opts.dropRate;
  if (opts.depth !== undefined) spec.depth = opts.depth;
  if (opts.growthRate !== undefined) spec.growthRate = opts.growthRate;
  architecture(spec); // fail now on a bad depth or growth rate
  return spec;
}

/** The zoo architecture with the spec's overrides. */
export function architecture(spec: ModelSpec): DenseNetArch | FCDenseNetArch {
  const base = zoo.resolveArch(spec.name, { dropRate: spec.dropRate });
  if (spec.growthRate !== undefined && !(Number.isInteger(spec.growthRate) && spec.growthRate >= 1)) {
    throw new Error(`${spec.name}: growth rate must be a positive integer, got ${spec.growthRate}`);
  }
  if (base.family === 'fc-densenet') {
    if (spec.depth !== undefined) throw new Error(`${spec.name}: --depth applies to the CIFAR DenseNets, not FC-DenseNet`);
    return { ...base, growthRate: spec.growthRate ?? base.growthRate };
  }
  const arch: DenseNetArch = { ...base, blockLayers: [...base.blockLayers] };
  const bc = arch.bottleneckFactor > 0;
  if (spec.growthRate !== undefined) {
    arch.growthRate = spec.growthRate;
    if (arch.stem === 'cifar' && bc) arch.stemChannels = 2 * spec.growthRate;
  }
  if (spec.depth !== undefined) {
    if (arch.stem !== 'cifar') throw new Error(`${spec.name}: --depth applies to the CIFAR DenseNets (3 blocks), not the ImageNet ones`);
    const perLayer = bc ? 6 : 3;
    const layers = (spec.depth - 4) / perLayer;
    if (!Number.isInteger(layers) || layers < 1) {
      throw new Error(`${spec.name}: depth ${spec.depth} does not give whole blocks; ${bc ? 'DenseNet-BC' : 'DenseNet'} depth is ` +
        `${perLayer} x (layers per block) + 4, e.g. ${perLayer + 4}, ${2 * perLayer + 4}, ${3 * perLayer + 4}`);
    }
    arch.blockLayers = [layers, layers, layers];
  }
  return arch;
}

/** Builds the model of a spec with fresh weights; `inputShape` overrides the spec's (fully convolutional segmentation). */
export function buildModel(spec: ModelSpec, inputShape: [number, number, number] = spec.inputShape): tf.LayersModel {
  const arch = architecture(spec);
  const build = { name: spec.name, inputShape, numClasses: spec.numClasses, memoryEfficient: spec.memoryEfficient };
  return arch.family === 'densenet' ? buildDenseNet(arch, build) : buildFCDenseNet(arch, build);
}

/** A short human description: "densenet-bc-100-k12 (depth 40, k 12) 28x28x1 -> 10 classes". */
export function describeSpec(spec: ModelSpec): string {
  const extra = [spec.depth !== undefined ? `depth ${spec.depth}` : '', spec.growthRate !== undefined ? `k ${spec.growthRate}` : '']
    .filter(Boolean).join(', ');
  return `${spec.name}${extra ? ` (${extra})` : ''} ${spec.inputShape.join('x')} -> ${spec.numClasses} classes`;
}
