// Loading the weights of a tfjs `model.json` into an existing model, with the same checks and
// surgery as the torchvision loader: `zoo.load(name, { weights: 'dir/model.json', numClasses })`
// builds the architecture from the zoo record and takes only the weights from the file, so the
// classifier can start fresh and the first conv can take another number of channels.
import * as tf from '../tf';
import { fileSystem } from './file-io';
import { checkDigest, ExpectedDigest, tfjsWeightsDigest } from './digest';
import { boundedFetch, DownloadError } from './download';
import {
  StateDictSource, TargetWeight, WeightLoadOptions, WeightLoadReport, baseName, loadIntoTargets, weightsWithLayers,
} from './mapping';
import { CLASSIFIER, FIRST_CONV } from '../layers/layer-names';

/** Where weights converted by `densenet convert` keep what they expect of images, in model.json's userDefinedMetadata. */
export const WEIGHTS_CARD_KEY = 'densenetZoo';

export interface WeightsCardMetadata {
  normalization?: { mean: number[]; std: number[] };
}

/** The normalisation a model.json's metadata records, when it is well formed. */
function cardOf(artifacts: tf.io.ModelArtifacts): WeightsCardMetadata | undefined {
  const card = (artifacts.userDefinedMetadata as Record<string, unknown> | undefined)?.[WEIGHTS_CARD_KEY] as WeightsCardMetadata | undefined;
  const n = card?.normalization;
  const numbers = (v: unknown) => Array.isArray(v) && v.length > 0 && v.every((x) => Number.isFinite(x));
  return n && numbers(n.mean) && numbers(n.std) && n.mean.length === n.std.length ? { normalization: { mean: n.mean, std: n.std } } : undefined;
}

/** Reads a model.json and its weight data, once, naming the file or URL in every error. */
async function loadArtifacts(pathOrUrl: string): Promise<{ source: string; artifacts: tf.io.ModelArtifacts }> {
  if (!/^https?:\/\//i.test(pathOrUrl)) {
    const handler = fileSystem(pathOrUrl);
    return { source: handler.modelJsonPath, artifacts: await handler.load() };
  }
  try {
    return { source: pathOrUrl, artifacts: await tf.io.http(pathOrUrl, { fetchFunc: boundedFetch }).load!() };
  } catch (err) {
    throw err instanceof DownloadError ? err : new Error(`${pathOrUrl}: cannot load the tfjs model: ${(err as Error).message}`);
  }
}

/**
 * Reads the weights named in a `model.json` (local path, folder, or http(s) URL). With `expected`,
 * the weight list and data must hash to it (tfjsWeightsDigest), checked on the bytes then decoded.
 */
export async function readTfjsWeights(pathOrUrl: string, expected?: ExpectedDigest): Promise<StateDictSource & { card?: WeightsCardMetadata }> {
  const { source, artifacts } = await loadArtifacts(pathOrUrl);
  const specs = artifacts.weightSpecs ?? [];
  if (specs.length === 0 || !artifacts.weightData) throw new Error(`${source}: model.json lists no weights`);
  const data = tf.io.CompositeArrayBuffer.join(artifacts.weightData);
  if (expected) checkDigest(source, 'its weights (the weight list of model.json and the shard data)', tfjsWeightsDigest(specs, data), expected);
  const notFloat = specs.find((s) => s.dtype !== 'float32');
  if (notFloat) throw new Error(`${source}: weight '${notFloat.name}' has dtype ${notFloat.dtype}; model weights are float32`);
  const named = tf.io.decodeWeights(data, specs);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const spec of specs) {
    const t = named[spec.name];
    tensors.set(spec.name, { shape: [...t.shape], data: Float32Array.from((await t.data()) as ArrayLike<number>) });
  }
  tf.dispose(Object.values(named));
  return {
    source, card: cardOf(artifacts),
    names: () => [...tensors.keys()],
    shape: (n) => [...tensors.get(n)!.shape],
    read: (n) => tensors.get(n)!.data,
  };
}

function targetsOf(model: tf.LayersModel): TargetWeight[] {
  return weightsWithLayers(model).map(({ variable, layerName }) => {
    const shape = [...(variable.shape as number[])];
    return { variable, tfName: baseName(variable), layerName, key: baseName(variable), layout: shape.length === 4 ? 'hwio' : 'plain', shape };
  });
}

/**
 * Loads a tfjs `model.json`'s weights into `model`, matched by weight name. `firstConv` and
 * `classifier` (layer names) default to the zoo's `stem_conv` and `classifier`.
 */
export async function loadTfjsWeights(
  model: tf.LayersModel, pathOrUrl: string, opts: WeightLoadOptions = {}, expected?: ExpectedDigest,
): Promise<WeightLoadReport & { card?: WeightsCardMetadata }> {
  const state = await readTfjsWeights(pathOrUrl, expected);
  return { ...loadIntoTargets(targetsOf(model), state, opts, {}, { firstConv: FIRST_CONV, classifier: CLASSIFIER }), card: state.card };
}
