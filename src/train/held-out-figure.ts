// Held-out images of a segmentation dataset next to what a model makes of them: input, truth,
// prediction and overlay per image, in the dataset's own class colours, one figure per image
// stacked into one sheet. The experiments' figures and the notebooks draw it the same way.
import * as tf from '../tf';
import type { Dataset, Split } from '../data/dataset';
import { ModelForShape } from '../inference/model-for-shape';
import { Raster, segmentationFigure } from '../viz';
import * as zoo from '../zoo';

export interface HeldOutFigureOptions {
  split: Split;
  /** Positions in the split of the images to draw, e.g. [0, 100, 200]. */
  indices: number[];
  /** Caption of image `index` (default: "<split> image <index>"). */
  title?: (index: number) => string;
}

/** Input, truth, prediction and overlay of each chosen image of `split`, stacked into one raster. */
export async function heldOutFigure(model: zoo.ZooModel | ModelForShape, dataset: Dataset, options: HeldOutFigureOptions): Promise<Raster> {
  if (dataset.task !== 'segmentation') throw new Error(`heldOutFigure: ${dataset.name} is a ${dataset.task} dataset; it draws segmentation`);
  const size = dataset.size(options.split);
  const wanted = new Set(options.indices);
  for (const i of wanted) {
    if (!Number.isInteger(i) || i < 0 || i >= size) throw new Error(`heldOutFigure: index ${i} is outside ${dataset.name}'s ${options.split} split (0..${size - 1})`);
  }
  const models = model instanceof ModelForShape ? model : zoo.modelsBySize(model);
  const panels: Raster[] = [];
  try {
    const last = Math.max(...wanted);
    for await (const batch of dataset.batches(options.split, { batchSize: 1, shuffle: false, limit: last + 1 })) {
      const index = batch.sampleIndices[0];
      if (!wanted.has(index)) continue;
      panels.push(await drawOne(models, dataset, batch.images, batch.labels, batch.shape, options.title?.(index) ?? `${options.split} image ${index}`));
    }
  } finally {
    if (models !== model) models.dispose();
  }
  const sheet = new Raster(Math.max(...panels.map((p) => p.width)), panels.reduce((sum, p) => sum + p.height, 0));
  panels.reduce((y, p) => (sheet.paste(p, 0, y), y + p.height), 0);
  return sheet;
}

async function drawOne(models: ModelForShape, dataset: Dataset, images: Float32Array, labels: Int32Array, shape: [number, number, number, number], title: string): Promise<Raster> {
  const [, h, w, c] = shape;
  const predicted = tf.tidy(() => tf.argMax(models.get([h, w, c]).predict(tf.tensor4d(images, shape)) as tf.Tensor, -1));
  const prediction = await predicted.data();
  predicted.dispose();
  return segmentationFigure({
    image: { data: denormalize(images, dataset), height: h, width: w, channels: c },
    truth: { data: labels, height: h, width: w, channels: 1 },
    prediction: { data: prediction, height: h, width: w, channels: 1 },
    classNames: dataset.classNames,
    palette: dataset.palette,
    ignoreLabel: dataset.ignoreLabel,
    range: [0, 1],
    legend: 'all',
    title,
  });
}

/** Back to [0, 1] pixels, so the input shows in its own colours. */
function denormalize(images: Float32Array, dataset: Dataset): Float32Array {
  const { mean, std } = dataset.normalization;
  const c = mean.length;
  return images.map((v, i) => Math.min(1, Math.max(0, v * std[i % c] + mean[i % c])));
}
