// Loading the weights of a tfjs `model.json` into an existing model, with the same checks and
// surgery as the torchvision loader: `zoo.load(name, { weights: 'dir/model.json', numClasses })`
// builds the architecture from the zoo record and takes only the weights from the file, so the
// classifier can start fresh and the first conv can take another number of channels.
import * as tf from '../tf';
import { fileSystem } from './file-io';
import {
  StateDictSource, TargetWeight, WeightLoadOptions, WeightLoadReport, baseName, loadIntoTargets, weightsWithLayers,
} from './mapping';
import { CLASSIFIER, FIRST_CONV } from '../layers/layer-names';

/** Reads the weights named in a `model.json` (local path, folder, or http(s) URL). */
export async function readTfjsWeights(pathOrUrl: string): Promise<StateDictSource> {
  const local = !/^https?:\/\//i.test(pathOrUrl);
  const handler = local ? fileSystem(pathOrUrl) : tf.io.http(pathOrUrl);
  const source = local ? fileSystem(pathOrUrl).modelJsonPath : pathOrUrl;
  const artifacts = await handler.load!();
  const specs = artifacts.weightSpecs ?? [];
  if (specs.length === 0 || !artifacts.weightData) throw new Error(`${source}: model.json lists no weights`);
  const named = tf.io.decodeWeights(artifacts.weightData, specs);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const spec of specs) {
    const t = named[spec.name];
    tensors.set(spec.name, { shape: [...t.shape], data: Float32Array.from(t.dataSync() as ArrayLike<number>) });
  }
  tf.dispose(Object.values(named));
  return {
    source,
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
  model: tf.LayersModel, pathOrUrl: string, opts: WeightLoadOptions = {},
): Promise<WeightLoadReport> {
  const state = await readTfjsWeights(pathOrUrl);
  return loadIntoTargets(targetsOf(model), state, opts, {}, { firstConv: FIRST_CONV, classifier: CLASSIFIER });
}
