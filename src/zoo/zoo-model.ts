// The model the zoo hands out: a tf.LayersModel (so every tfjs API still works on it) that also
// carries its card, what it takes to use it on images (input size, normalisation, class names,
// task) and to rebuild it (the spec), with classify() and segment() on top.
import * as tf from '../tf';
import { ModelFactory, ModelForShape } from '../inference/model-for-shape';
import { classify, ClassifyOptions, ClassScore, PredictionInfo, segment, Segmentation, SegmentOptions } from '../inference/predict';
import type { ImageInput } from '../inference/preprocess';
import type { ModelSpec } from './resolve';

/** Where a model's weights came from. */
export interface WeightsProvenance {
  /** The weight tag, file or folder given. */
  source: string;
  format: 'safetensors' | 'pytorch' | 'tfjs';
  /** sha256 the zoo checked the weights against, when it has one. */
  sha256?: string;
  /** Whether the file's classifier was loaded (false: a fresh head, e.g. for other classes). */
  headLoaded: boolean;
}

export interface ModelCard extends PredictionInfo {
  spec: ModelSpec;
  /** Absent for fresh (randomly initialised) weights. */
  weights?: WeightsProvenance;
}

export interface ZooModel extends tf.LayersModel {
  readonly card: ModelCard;
  /** The most probable classes of one image, with probabilities. */
  classify(input: ImageInput, options?: ClassifyOptions): Promise<ClassScore[]>;
  /** A class per pixel of one image, at its own size. */
  segment(input: ImageInput, options?: SegmentOptions): Promise<Segmentation>;
}

export function isZooModel(model: tf.LayersModel): model is ZooModel {
  return typeof (model as Partial<ZooModel>).card?.spec?.name === 'string';
}

/** Gives `model` its card and the methods that use it; `build` makes fresh copies at other sizes. */
export function asZooModel(model: tf.LayersModel, card: ModelCard, build: ModelFactory): ZooModel {
  const shapes = new ModelForShape(model, build);
  const disposeModel = model.dispose.bind(model);
  return Object.assign(model, {
    card,
    classify: (input: ImageInput, options?: ClassifyOptions) => classify(model, card, input, options),
    segment: (input: ImageInput, options?: SegmentOptions) => {
      shapes.invalidate(); // the weights may have been trained since the last call
      return segment(shapes, card, input, options);
    },
    dispose: () => {
      shapes.dispose();
      return disposeModel();
    },
  });
}
