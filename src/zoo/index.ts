// The public zoo: list the models, look one up, create one from its record, load one with weights.
// Every model, whoever builds it (trainer, eval, predict, planner, benches), comes from create().
import * as path from 'path';
import * as tf from '../tf';
import { loadTfjsWeights, WeightsCardMetadata } from '../weights/tfjs-weights';
import type { WeightLoadReport } from '../weights/mapping';
import { loadTorchvisionStateDict } from '../weights/torchvision';
import { readSafetensors } from '../weights/safetensors';
import { KeyMap, readPytorchCheckpoint } from '../weights/pytorch';
import { buildArchitecture } from '../models/build';
import type { InputShape } from '../models/common';
import { ModelForShape } from '../inference/model-for-shape';
import { Rng } from '../random/prng';
import { withSeededMathRandom } from '../random/seeded-math-random';
import { WeightsSource, ZOO, ZooEntry } from './records';
import { ModelOptions, ModelSpec, resolveModel, ResolvedModel } from './resolve';
import { readManifest, shippedFile } from './shipped-weights';
import { asZooModel, ModelCard, WeightsProvenance, ZooModel } from './zoo-model';
import IMAGENET_CLASSES from './imagenet-classes.json';

export * from './records';
export { ModelOptions, ModelSpec, ResolvedModel, describeSpec } from './resolve';
export { ZooModel, ModelCard, WeightsProvenance, isZooModel } from './zoo-model';
export { readManifest, weightDataFiles, weightsDigest } from './shipped-weights';

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
export function info(name: string): ZooEntry {
  const found = ZOO.find((e) => e.name === name);
  if (!found) throw new Error(`unknown model '${name}'; the zoo has: ${list().join(', ')}`);
  const own = shippedWeights(name);
  return own.length ? { ...found, weights: [...found.weights, ...own] } : found;
}

/** `name` with every option applied and checked: the architecture, build options and the spec that rebuilds it. */
export function resolve(name: string, options: ModelOptions = {}): ResolvedModel {
  return resolveModel(info(name), options);
}

/** The record's class names for a head of `count` classes (`class i` where the record has none). */
function classNamesOf(e: ZooEntry, count: number): string[] {
  const known = e.classNames === 'imagenet' ? (IMAGENET_CLASSES as string[]) : e.classNames;
  if (count !== e.numClasses) return Array.from({ length: count }, (_, i) => `class ${i}`);
  return Array.from({ length: count }, (_, i) => known[i] ?? `class ${i}`);
}

function freshCard(e: ZooEntry, spec: ModelSpec): ModelCard {
  return {
    spec, task: e.task, classNames: classNamesOf(e, spec.numClasses),
    preprocessing: {
      inputShape: spec.inputShape, mean: [...e.input.mean], std: [...e.input.std],
      ...(e.task === 'classification' && e.input.resize ? { resize: e.input.resize } : {}),
    },
  };
}

function build(resolved: ResolvedModel, card: ModelCard): ZooModel {
  const model = buildArchitecture(resolved.arch, resolved.build);
  const { spec } = resolved;
  return asZooModel(model, card, (inputShape) => create(spec.name, { ...spec, inputShape, memoryEfficient: false }));
}

/** The random stream of initial weights, apart from the data's and dropout's streams of the same seed. */
const INIT_STREAM = 0x696e6974;

export interface CreateOptions extends ModelOptions {
  /** Initial weights drawn from this seed (the same seed, the same model); default Math.random. */
  seed?: number;
}

/** Builds `name` with fresh weights. */
export function create(name: string, options: CreateOptions = {}): ZooModel {
  const { seed, ...modelOptions } = options;
  const resolved = resolve(name, modelOptions);
  const card = freshCard(info(name), resolved.spec);
  return seed === undefined ? build(resolved, card) : withSeededMathRandom(Rng.from(seed, INIT_STREAM), () => build(resolved, card));
}

/** Builds a model again from the spec another one carries (a checkpoint's, a card's), at `inputShape` if given. */
export function fromSpec(spec: ModelSpec, inputShape?: InputShape): ZooModel {
  return create(spec.name, inputShape ? { ...spec, inputShape } : spec);
}

/** Copies of `model` at other input sizes, with its weights (fully convolutional evaluation). */
export function modelsBySize(model: ZooModel): ModelForShape {
  return new ModelForShape(model, (inputShape) => fromSpec({ ...model.card.spec, memoryEfficient: false }, inputShape));
}

/** Number of trainable parameters of a model. */
export function countTrainableParams(model: tf.LayersModel): number {
  return model.trainableWeights.reduce((sum, w) => sum + (w.shape as number[]).reduce((a, b) => a * b, 1), 0);
}

export interface LoadOptions extends CreateOptions {
  /**
   * A weight tag of the record (`imagenet`, or one the project ships), a `.safetensors` file or URL with
   * torchvision/timm keys, or a tfjs `model.json` (file, folder or URL; a training checkpoint folder is one).
   */
  weights?: string;
  /** Leave the classifier freshly initialised even where the weights have one that fits (a new head to train). */
  freshHead?: boolean;
  /** PyTorch checkpoints: how their keys become torchvision's (rules applied in order, or a function). */
  keyMap?: KeyMap;
  /** How the weights expect pixels (0..1) normalised, where their file does not say or says otherwise. */
  normalization?: { mean: number[]; std: number[] };
}

export type WeightsOptions = Pick<LoadOptions, 'freshHead' | 'keyMap' | 'normalization'>;

/** What torch.save files are usually called. */
const PYTORCH_FILE = /\.(pth|pt|ckpt|pth\.tar)$/i;

const isUrl = (p: string) => /^https?:\/\//i.test(p);
const known = (n: number) => (Number.isNaN(n) ? undefined : n);

/** The record's weights source for a tag, or a source described by a path/URL. */
export function resolveWeights(name: string, weights: string): WeightsSource {
  const e = info(name);
  const tagged = e.weights.find((w) => w.tag === weights);
  if (tagged) return { ...tagged, url: isUrl(tagged.url) ? tagged.url : shippedFile(tagged.url) };
  const looksLikeFile = /\.safetensors$|\.json$/i.test(weights) || PYTORCH_FILE.test(weights) || isUrl(weights) || weights.includes('/') || weights.includes(path.sep);
  if (!looksLikeFile) {
    const tags = e.weights.map((w) => w.tag);
    throw new Error(`${name}: unknown weights '${weights}'; tags for this model: ${tags.length ? tags.join(', ') : 'none'}; ` +
      'or give a .safetensors or PyTorch .pth file, a tfjs model.json or a folder holding one');
  }
  const format = /\.safetensors$/i.test(weights) ? 'safetensors' : PYTORCH_FILE.test(weights) ? 'pytorch' : 'tfjs';
  return { tag: weights, description: 'user weights', url: weights, format, numClasses: NaN, inChannels: NaN };
}

function checkNormalization({ mean, std }: { mean: number[]; std: number[] }, channels: number): void {
  if (mean?.length !== channels || std?.length !== channels) {
    throw new Error(`normalization needs ${channels} means and ${channels} stds (one per input channel), got ${mean?.length} and ${std?.length}`);
  }
  if (![...mean, ...std].every(Number.isFinite) || std.some((v) => !(v > 0))) throw new Error(`normalization: means must be finite and stds > 0, got mean ${mean} std ${std}`);
}

/**
 * Loads weights into a zoo model: every weight checked by name and shape; the classifier is left
 * fresh when the weights have another class count (fine-tuning), and the first conv adapted to
 * another channel count. The card then says how the weights expect images and name classes.
 */
export async function loadWeights(model: ZooModel, weights: string, options: WeightsOptions = {}): Promise<WeightsProvenance> {
  const { spec } = model.card;
  if (options.normalization) checkNormalization(options.normalization, spec.inputShape[2]);
  const e = info(spec.name);
  const source = resolveWeights(spec.name, weights);
  // Checked on the very bytes that are then decoded, downloads included.
  const expected = source.sha256 ? { sha256: source.sha256, owner: `tag '${source.tag}' of ${spec.name}` } : undefined;
  const sourceClasses = known(source.numClasses);
  const loadOptions = {
    skipClassifier: options.freshHead || (sourceClasses !== undefined && sourceClasses !== spec.numClasses) ? true : ('auto' as const),
    adaptInputChannels: true, firstConv: e.firstConv, classifier: e.classifier,
  };
  if (source.format !== 'tfjs' && e.arch.family !== 'densenet') {
    throw new Error(`${spec.name}: ${source.format} import reads torchvision/timm DenseNet keys; FC-DenseNet weights come as a tfjs model.json`);
  }
  const report: WeightLoadReport & { card?: WeightsCardMetadata } = source.format === 'safetensors'
    ? loadTorchvisionStateDict(model, await readSafetensors(source.url, expected), loadOptions)
    : source.format === 'pytorch'
      ? loadTorchvisionStateDict(model, await readPytorchCheckpoint(source.url, options.keyMap), loadOptions)
      : await loadTfjsWeights(model, source.url, loadOptions, expected);
  const headLoaded = report.skipped.length === 0;
  const card = model.card;
  if (headLoaded && source.classNames) card.classNames = [...source.classNames];
  if (headLoaded && source.palette) card.palette = source.palette.map((c) => [c[0], c[1], c[2]] as const);
  if (source.ignoreLabel !== undefined) card.ignoreLabel = source.ignoreLabel;
  const normalization = options.normalization ?? source.normalization ?? report.card?.normalization;
  if (normalization) Object.assign(card.preprocessing, { mean: [...normalization.mean], std: [...normalization.std] });
  // Weights trained at their own input size saw whole images, resized without a crop.
  if (source.inputShape) delete card.preprocessing.resize;
  card.weights = { source: weights, format: source.format, ...(source.sha256 ? { sha256: source.sha256 } : {}), headLoaded };
  return card.weights;
}

/** Builds `name` and loads weights into it (see LoadOptions). Without `weights`, the same as `create`. */
export async function load(name: string, options: LoadOptions = {}): Promise<ZooModel> {
  const { weights, freshHead, keyMap, normalization, ...createOptions } = options;
  if (!weights) return create(name, createOptions);
  const source = resolveWeights(name, weights);
  const model = create(name, {
    ...createOptions,
    numClasses: createOptions.numClasses ?? known(source.numClasses),
    inputShape: createOptions.inputShape ?? source.inputShape,
    batchNorm: createOptions.batchNorm ?? source.batchNorm,
  });
  try {
    await loadWeights(model, weights, { freshHead, keyMap, normalization });
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}
