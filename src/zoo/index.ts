// The public zoo: list the models, create one from its record, load one with weights.
import * as path from 'path';
import * as tf from '../tf';
import { loadTfjsWeights } from '../weights/tfjs-weights';
import { loadTorchvisionSafetensors } from '../weights/torchvision';
import { buildDenseNet, DenseNetArch } from '../models/densenet';
import { buildFCDenseNet, FCDenseNetArch } from '../models/fc-densenet';
import { InputShape } from '../models/common';
import { WeightsSource, ZOO, ZooEntry } from './records';
import { readManifest, verifyWeights } from './shipped-weights';
import { PACKAGE_ROOT } from '../package-root';

export * from './records';

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

let shipped: Map<string, WeightsSource[]> | undefined;

/** The project's own weights (weights/manifest.json) by model, read once. */
function shippedWeights(name: string): WeightsSource[] {
  if (!shipped) {
    shipped = new Map();
    for (const { model, ...source } of readManifest()) shipped.set(model, [...(shipped.get(model) ?? []), source]);
  }
  return shipped.get(name) ?? [];
}

/** The record of `name`, its weights including the ones the project ships. */
export function entry(name: string): ZooEntry {
  const found = ZOO.find((e) => e.name === name);
  if (!found) throw new Error(`unknown model '${name}'; the zoo has: ${list().join(', ')}`);
  const own = shippedWeights(name);
  return own.length ? { ...found, weights: [...found.weights, ...own] } : found;
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

export interface LoadOptions extends CreateOptions {
  /**
   * A weight tag of the record (`imagenet`, or one the project ships), a `.safetensors` file or URL with
   * torchvision/timm keys, or a tfjs `model.json` (file, folder or URL).
   */
  weights?: string;
}

/** The record's weights source for a tag, or a source described by a path/URL. */
export function resolveWeights(name: string, weights: string): WeightsSource {
  const e = entry(name);
  const tagged = e.weights.find((w) => w.tag === weights);
  if (tagged) {
    const isUrl = /^https?:\/\//i.test(tagged.url);
    return { ...tagged, url: isUrl ? tagged.url : path.join(PACKAGE_ROOT, tagged.url) };
  }
  const looksLikeFile = /\.safetensors$|\.json$|^https?:\/\//i.test(weights) || weights.includes('/') || weights.includes(path.sep);
  if (!looksLikeFile) {
    const tags = e.weights.map((w) => w.tag);
    throw new Error(`${name}: unknown weights '${weights}'; tags for this model: ${tags.length ? tags.join(', ') : 'none'}; ` +
      'or give a .safetensors file, a tfjs model.json or a folder holding one');
  }
  const format = /\.safetensors$/i.test(weights) ? 'safetensors' : 'tfjs';
  return { tag: weights, description: 'user weights', url: weights, format, numClasses: NaN, inChannels: NaN };
}

/** Builds `name` and loads weights into it (see LoadOptions). Without `weights`, the same as `create`. */
export async function load(name: string, options: LoadOptions = {}): Promise<tf.LayersModel> {
  const e = entry(name);
  if (!options.weights) return create(name, options);
  const source = resolveWeights(name, options.weights);
  const known = (n: number) => (Number.isNaN(n) ? undefined : n);
  const model = create(name, {
    ...options,
    numClasses: options.numClasses ?? known(source.numClasses),
    inputShape: options.inputShape ?? source.inputShape,
  });
  if (source.sha256 && !/^https?:\/\//i.test(source.url)) verifyWeights(source);
  const numClasses = options.numClasses ?? known(source.numClasses);
  const weightOptions = {
    skipClassifier: known(source.numClasses) !== undefined && numClasses !== source.numClasses ? true : ('auto' as const),
    adaptInputChannels: true,
    firstConv: e.firstConv,
    classifier: e.classifier,
  };
  if (source.format === 'safetensors') {
    if (e.arch.family !== 'densenet') {
      throw new Error(`${name}: .safetensors import reads torchvision/timm DenseNet keys; FC-DenseNet weights come as a tfjs model.json`);
    }
    await loadTorchvisionSafetensors(model, source.url, weightOptions);
  } else {
    await loadTfjsWeights(model, source.url, weightOptions);
  }
  return model;
}
