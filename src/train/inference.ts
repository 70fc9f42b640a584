// Running a trained model on one image file: a checkpoint (the model rebuilt from its spec, the
// training normalisation and class names) or a zoo model with weights. Classification gives the
// top classes; segmentation gives a class per pixel and a colour overlay PNG drawn by src/viz.
import * as tf from '../tf';
import * as zoo from '../zoo';
import type { DecodedImage } from '../data/image-file';
import { imageToInput } from '../cli/preprocess';
import { savePng, segmentationFigure } from '../viz';
import { isCheckpointDir, loadCheckpointWeights, readCheckpointState } from './checkpoint';
import { SEGMENTATION_MULTIPLE } from './evaluate';
import { buildModel, ModelSpec } from './model-spec';
import IMAGENET_CLASSES from '../zoo/imagenet-classes.json';

/** Everything predict needs besides the weights: how to preprocess and how to name the classes. */
export interface Predictor {
  task: 'classification' | 'segmentation';
  /** [H, W, C] of classification inputs (segmentation takes any size). */
  inputShape: [number, number, number];
  mean: number[];
  std: number[];
  /** Classification: resize the shorter side to this, then center-crop (ImageNet weights). */
  resize?: number;
  classNames: readonly string[];
  ignoreLabel?: number;
  /** Builds the model with weights, for an input size (default: the one it was trained or defined for). */
  model(inputShape?: [number, number, number]): Promise<tf.LayersModel>;
}

function names(e: zoo.ZooEntry, count: number): string[] {
  const list = e.classNames === 'imagenet' ? (IMAGENET_CLASSES as string[]) : e.classNames;
  return Array.from({ length: count }, (_, i) => list[i] ?? `class ${i}`);
}

/** A predictor for a checkpoint folder, or for a zoo model with optional weights (tag, .safetensors, model.json). */
export function predictorFor(name: string, weights?: string): Predictor {
  const e = zoo.entry(name);
  if (weights && isCheckpointDir(weights)) {
    const { dir, state } = readCheckpointState(weights);
    if (state.model.name !== name) throw new Error(`${weights} holds a ${state.model.name} model, not ${name}`);
    const spec: ModelSpec = { ...state.model, memoryEfficient: false };
    return {
      task: spec.task, inputShape: spec.inputShape, mean: state.data.normalization.mean, std: state.data.normalization.std,
      classNames: state.data.classNames, ignoreLabel: state.data.ignoreLabel,
      model: async (shape) => {
        const model = buildModel(spec, shape);
        await loadCheckpointWeights(model, dir);
        return model;
      },
    };
  }
  // A weight tag may carry its own input, normalisation and classes (the project's trained weights);
  // weights trained at their own input size saw whole images, resized without a crop.
  const tagged = weights ? e.weights.find((w) => w.tag === weights) : undefined;
  return {
    task: e.task, inputShape: tagged?.inputShape ?? e.input.shape, mean: tagged?.normalization?.mean ?? e.input.mean,
    std: tagged?.normalization?.std ?? e.input.std, resize: tagged?.inputShape ? undefined : e.input.resize,
    classNames: tagged?.classNames ?? names(e, e.numClasses),
    // Without a size, the weights' own input size (a record may say it differs from the model's default).
    model: (shape) => zoo.load(name, shape ? { weights, inputShape: shape } : { weights }),
  };
}

export interface ClassScore {
  class: number;
  name: string;
  probability: number;
}

export async function classifyImage(p: Predictor, img: DecodedImage, top: number): Promise<ClassScore[]> {
  const model = await p.model();
  try {
    const shape = (model.inputs[0].shape as number[]).slice(1) as [number, number, number];
    const input = imageToInput(img, { shape, mean: p.mean, std: p.std, resize: p.resize });
    const probs = tf.tidy(() => tf.softmax(model.predict(input) as tf.Tensor2D));
    const { values, indices } = tf.topk(probs, Math.min(top, probs.shape[1]));
    const prob = await values.data();
    const cls = Array.from(await indices.data());
    tf.dispose([input, probs, values, indices]);
    return cls.map((c, i) => ({ class: c, name: p.classNames[c] ?? `class ${c}`, probability: prob[i] }));
  } finally {
    model.dispose();
  }
}

export interface Segmentation {
  height: number;
  width: number;
  /** Class per pixel, row-major. */
  labels: Int32Array;
  /** Share of the pixels given to each class. */
  fractions: number[];
}

const roundUp = (v: number, m: number) => Math.ceil(v / m) * m;

/** A class per pixel at the image's own size (padded bottom/right to a multiple of 32 for the network, then cut back). */
export async function segmentImage(p: Predictor, img: DecodedImage): Promise<Segmentation> {
  const c = p.inputShape[2];
  const { height: h, width: w } = img;
  const padded: [number, number, number] = [roundUp(h, SEGMENTATION_MULTIPLE), roundUp(w, SEGMENTATION_MULTIPLE), c];
  const model = await p.model(padded);
  try {
    const input = imageToInput(img, { shape: [h, w, c], mean: p.mean, std: p.std });
    const labelsT = tf.tidy(() => {
      // Zero after normalisation is the mean colour: padding that looks like nothing in particular.
      const x = tf.pad(input, [[0, 0], [0, padded[0] - h], [0, padded[1] - w], [0, 0]]);
      const scores = model.predict(x) as tf.Tensor4D;
      return tf.slice(tf.argMax(scores, -1), [0, 0, 0], [1, h, w]);
    });
    const labels = Int32Array.from(await labelsT.data());
    tf.dispose([input, labelsT]);
    const counts = new Array<number>(p.classNames.length).fill(0);
    for (const l of labels) counts[l]++;
    return { height: h, width: w, labels, fractions: counts.map((n) => n / labels.length) };
  } finally {
    model.dispose();
  }
}

/** Writes the input, the predicted classes and their overlay on the input, with a legend, as a PNG. */
export function writeSegmentationOverlay(file: string, img: DecodedImage, seg: Segmentation, p: Predictor, title?: string): string {
  const rgb = new Uint8Array(img.width * img.height * 3);
  for (let i = 0; i < img.width * img.height; i++) rgb.set(img.rgba.subarray(i * 4, i * 4 + 3), i * 3);
  const figure = segmentationFigure({
    image: { data: rgb, height: img.height, width: img.width, channels: 3 },
    prediction: { data: seg.labels, height: seg.height, width: seg.width },
    classNames: p.classNames, ignoreLabel: p.ignoreLabel, range: [0, 255], title,
  });
  return savePng(figure, file);
}
