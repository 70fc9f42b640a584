// Running a model on one image the way its weights expect: classification gives the top classes
// with probabilities, segmentation a class per pixel (with the classes' colours) and an overlay.
import * as tf from '../tf';
import type { DecodedImage } from '../data/image-file';
import { decodeImageFile } from '../data/image-file';
import { classColor, Rgb, savePng, segmentationFigure } from '../viz';
import { ImageInput, imageSize, imageToInput, Preprocessing } from './preprocess';
import type { ModelForShape } from './model-for-shape';

/** What a model needs besides its weights to be used on images. */
export interface PredictionInfo {
  task: 'classification' | 'segmentation';
  preprocessing: Preprocessing;
  classNames: readonly string[];
  /** Segmentation: the label of pixels that belong to no class (CamVid's void). */
  ignoreLabel?: number;
  /** Segmentation: a colour per class (default: the package's class palette). */
  palette?: ReadonlyArray<Rgb>;
}

/** FC-DenseNet halves the resolution five times. */
export const SEGMENTATION_MIN_SIDE = 32;

export interface ClassScore {
  class: number;
  name: string;
  probability: number;
}

export interface ClassifyOptions {
  /** How many classes to return, most probable first (default 5). */
  topK?: number;
}

export async function classify(model: tf.LayersModel, info: PredictionInfo, input: ImageInput, options: ClassifyOptions = {}): Promise<ClassScore[]> {
  if (info.task !== 'classification') throw new Error(`${model.name} is a ${info.task} model; use segment()`);
  const topK = options.topK ?? 5;
  if (!Number.isInteger(topK) || topK < 1) throw new Error(`topK must be a positive integer, got ${topK}`);
  const shape = (model.inputs[0].shape as number[]).slice(1) as [number, number, number];
  const x = imageToInput(input, { ...info.preprocessing, inputShape: shape });
  const probs = tf.tidy(() => tf.softmax(model.predict(x) as tf.Tensor2D));
  const { values, indices } = tf.topk(probs, Math.min(topK, probs.shape[1]));
  try {
    const prob = await values.data();
    if (!prob.every(Number.isFinite)) {
      throw new Error(`${model.name}: the class probabilities are ${prob[0]}: the model's weights hold NaN or infinite values (load finite weights)`);
    }
    const cls = Array.from(await indices.data());
    return cls.map((c, i) => ({ class: c, name: info.classNames[c] ?? `class ${c}`, probability: prob[i] }));
  } finally {
    tf.dispose([x, probs, values, indices]);
  }
}

export interface Segmentation {
  height: number;
  width: number;
  /** Class per pixel, row-major. */
  labels: Int32Array;
  /** Share of the pixels given to each class. */
  fractions: number[];
  classNames: readonly string[];
  /** The colour of each class (index = class id), for drawing the label map. */
  colors: Rgb[];
}


/**
 * Largest image segmented at its own size: 1 megapixel (1024x1024). FC-DenseNet's activations take
 * hundreds of bytes per pixel, so a larger image is segmented downsized to this many pixels and
 * its labels scaled back up (nearest neighbour) to the image's size.
 */
export const SEGMENT_MAX_PIXELS = 1024 * 1024;

export interface SegmentOptions {
  /** Pixels of the largest network input (default SEGMENT_MAX_PIXELS). */
  maxPixels?: number;
}

/** The size the network sees: the image's, or the image scaled down (aspect kept) to at most `maxPixels`. */
export function segmentationInputSize(h: number, w: number, maxPixels: number): [number, number] {
  if (h * w <= maxPixels) return [h, w];
  const scale = Math.sqrt(maxPixels / (h * w));
  return [Math.max(1, Math.floor(h * scale)), Math.max(1, Math.floor(w * scale))];
}

/** Labels of an sh x sw map scaled to h x w by nearest neighbour. */
function scaleLabels(labels: Int32Array, sh: number, sw: number, h: number, w: number): Int32Array {
  if (sh === h && sw === w) return labels;
  const out = new Int32Array(h * w);
  for (let y = 0; y < h; y++) {
    const row = Math.min(sh - 1, Math.floor(((y + 0.5) * sh) / h)) * sw;
    for (let x = 0; x < w; x++) out[y * w + x] = labels[row + Math.min(sw - 1, Math.floor(((x + 0.5) * sw) / w))];
  }
  return out;
}

/**
 * A class per pixel at the image's own size. The network sees the image (downsized past
 * `maxPixels`; padded bottom/right to 32 if smaller); the labels are cut back and scaled up.
 */
export async function segment(models: ModelForShape, info: PredictionInfo, input: ImageInput, options: SegmentOptions = {}): Promise<Segmentation> {
  if (info.task !== 'segmentation') throw new Error(`a ${info.task} model cannot segment; use classify()`);
  const maxPixels = options.maxPixels ?? SEGMENT_MAX_PIXELS;
  if (!(maxPixels >= 1)) throw new Error(`maxPixels must be at least 1, got ${maxPixels}`);
  const image = typeof input === 'string' ? decodeImageFile(input) : input;
  const [h, w] = imageSize(image);
  const [sh, sw] = segmentationInputSize(h, w, maxPixels);
  const c = info.preprocessing.inputShape[2];
  // FC-DenseNet takes any size from 32 up: only smaller images are padded.
  const padded: [number, number, number] = [Math.max(sh, SEGMENTATION_MIN_SIDE), Math.max(sw, SEGMENTATION_MIN_SIDE), c];
  const model = models.get(padded);
  const x = imageToInput(image, { ...info.preprocessing, inputShape: [sh, sw, c], resize: undefined });
  const labelsT = tf.tidy(() => {
    // Zero after normalisation is the mean colour: padding that looks like nothing in particular.
    const xp = tf.pad(x, [[0, 0], [0, padded[0] - sh], [0, padded[1] - sw], [0, 0]]);
    const scores = model.predict(xp) as tf.Tensor4D;
    return tf.slice(tf.argMax(scores, -1), [0, 0, 0], [1, sh, sw]);
  });
  try {
    const labels = scaleLabels(Int32Array.from(await labelsT.data()), sh, sw, h, w);
    const counts = new Array<number>(info.classNames.length).fill(0);
    for (const l of labels) counts[l]++;
    const colors = info.classNames.map((_, i) => info.palette?.[i] ?? classColor(i));
    return { height: h, width: w, labels, fractions: counts.map((n) => n / labels.length), classNames: info.classNames, colors };
  } finally {
    tf.dispose([x, labelsT]);
  }
}

/** Writes the input, the predicted classes and their overlay on the input, with a legend, as a PNG. */
export function writeSegmentationOverlay(file: string, img: DecodedImage, seg: Segmentation, info: PredictionInfo, title?: string): string {
  const rgb = new Uint8Array(img.width * img.height * 3);
  for (let i = 0; i < img.width * img.height; i++) rgb.set(img.rgba.subarray(i * 4, i * 4 + 3), i * 3);
  const figure = segmentationFigure({
    image: { data: rgb, height: img.height, width: img.width, channels: 3 },
    prediction: { data: seg.labels, height: seg.height, width: seg.width },
    classNames: info.classNames, ignoreLabel: info.ignoreLabel, palette: info.palette, range: [0, 255], title,
  });
  return savePng(figure, file);
}
