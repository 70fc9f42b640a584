// The public zoo: list the models, create one from its record, load one with weights.
import * as tf from '../src/tf';
import { buildDenseNet, DenseNetArch } from '../src/models/densenet';
import { buildFCDenseNet, FCDenseNetArch } from '../src/models/fc-densenet';
import { InputShape } from '../src/models/common';
import { ZOO, ZooEntry } from './configs';

export * from './configs';

export interface CreateOptions {
  /** [height, width, channels]; channels default to `inChannels` or the record's. */
  inputShape?: InputShape | [number, number];
  numClasses?: number;
  inChannels?: number;
  dropRate?: number;
  /** DenseNet transition compression theta. */
  compression?: number;
  /** DenseNet: use the 1x1 bottleneck (4k) in every dense layer. */
  bottleneck?: boolean;
  /** Recompute concatenations and BN outputs in the backward pass instead of storing them. */
  memoryEfficient?: boolean;
}

export function list(): string[] {
  return ZOO.map((e) => e.name);
}

export function entry(name: string): ZooEntry {
  const found = ZOO.find((e) => e.name === name);
  if (!found) throw new Error(`unknown model '${name}'; the zoo has: ${list().join(', ')}`);
  return found;
}

/** The architecture of `name` with the options' overrides applied. */
export function resolveArch(name: string, options: CreateOptions = {}): DenseNetArch | FCDenseNetArch {
  const { arch } = entry(name);
  if (arch.family === 'fc-densenet') {
    if (options.compression !== undefined || options.bottleneck !== undefined) {
      throw new Error(`${name}: 'compression' and 'bottleneck' apply to DenseNet models, not FC-DenseNet`);
    }
    return { ...arch, dropRate: options.dropRate ?? arch.dropRate };
  }
  if (options.compression !== undefined && !(options.compression > 0 && options.compression <= 1)) {
    throw new Error(`${name}: compression must be in (0, 1], got ${options.compression}`);
  }
  return {
    ...arch,
    dropRate: options.dropRate ?? arch.dropRate,
    compression: options.compression ?? arch.compression,
    bottleneckFactor: options.bottleneck === undefined ? arch.bottleneckFactor : options.bottleneck ? 4 : 0,
  };
}

export function resolveInputShape(name: string, options: CreateOptions = {}): InputShape {
  const e = entry(name);
  const channels = options.inputShape?.[2] ?? options.inChannels ?? e.input.shape[2];
  if (options.inChannels !== undefined && options.inputShape?.[2] !== undefined && options.inChannels !== options.inputShape[2]) {
    throw new Error(`${name}: inChannels ${options.inChannels} contradicts inputShape channels ${options.inputShape[2]}`);
  }
  const [h, w] = options.inputShape ?? e.input.shape;
  return [h, w, channels];
}

/** Builds `name` with fresh weights. */
export function create(name: string, options: CreateOptions = {}): tf.LayersModel {
  const e = entry(name);
  const arch = resolveArch(name, options);
  const build = {
    name,
    inputShape: resolveInputShape(name, options),
    numClasses: options.numClasses ?? e.numClasses,
    memoryEfficient: options.memoryEfficient ?? false,
  };
  if (!Number.isInteger(build.numClasses) || build.numClasses < 1) {
    throw new Error(`${name}: numClasses must be a positive integer, got ${options.numClasses}`);
  }
  return arch.family === 'densenet' ? buildDenseNet(arch, build) : buildFCDenseNet(arch, build);
}

/** Number of trainable parameters of a model. */
export function countTrainableParams(model: tf.LayersModel): number {
  return model.trainableWeights.reduce((sum, w) => sum + (w.shape as number[]).reduce((a, b) => a * b, 1), 0);
}
