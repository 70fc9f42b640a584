// Experiment "fashion-mosaics": FC-DenseNet56 segmenting the fashion mosaics (64x64 canvases of
// Fashion-MNIST garments, 11 classes with the background) with the Tiramisu recipe shortened to
// 2 epochs of the 10,000 training mosaics; global accuracy and mean IoU on the 2,000 held-out
// mosaics (made from test-split garments), a figure of predictions, and the weights shipped as
// zoo.load('fc-densenet56', { weights: 'fashion-mosaics' }).
//   npm run exp:fashion-mosaics          (the full run; continues runs/exp-fashion-mosaics if it holds one)
//   npm run exp:fashion-mosaics -- --quick --out DIR
import * as path from 'path';
import { backend, tf, zoo } from '../src';
import { openDatasetFromSpec } from '../src/train';
import { Raster, savePng, segmentationFigure } from '../src/notebook';
import { ExperimentContext, main } from './training-run';

const { init } = backend;

/** Held-out mosaics drawn in the figure. */
const FIGURE_SAMPLES = 4;

async function predictionFigure(ctx: ExperimentContext): Promise<string[]> {
  await init(undefined, { log: null });
  const { state } = ctx;
  const dataset = openDatasetFromSpec(state.data);
  const model = await zoo.load(state.model.name, { weights: ctx.modelJson, inputShape: state.model.inputShape, numClasses: state.model.numClasses });
  const batch = (await dataset.batches('test', { batchSize: FIGURE_SAMPLES, shuffle: false }).next()).value;
  if (!batch) throw new Error('fashion-mosaics: the test split is empty');
  const [n, h, w, c] = batch.shape;
  const predictions = tf.tidy(() => tf.argMax(model.predict(tf.tensor4d(batch.images, [n, h, w, c])) as tf.Tensor, -1));
  const predicted = await predictions.data();
  tf.dispose(predictions);
  model.dispose();
  const pixels = h * w;
  const panels = Array.from({ length: n }, (_, i) => segmentationFigure({
    image: { data: batch.images.subarray(i * pixels * c, (i + 1) * pixels * c), height: h, width: w, channels: c },
    truth: { data: batch.labels.subarray(i * pixels, (i + 1) * pixels), height: h, width: w, channels: 1 },
    prediction: { data: predicted.subarray(i * pixels, (i + 1) * pixels), height: h, width: w, channels: 1 },
    classNames: state.data.classNames,
    title: `held-out mosaic ${i}: input, truth, prediction, overlay`,
  }));
  const file = path.join(ctx.resultsDir, 'fashion-mosaics-predictions.png');
  const sheet = new Raster(Math.max(...panels.map((p) => p.width)), panels.reduce((sum, p) => sum + p.height, 0));
  panels.reduce((y, p) => (sheet.paste(p, 0, y), y + p.height), 0);
  savePng(sheet, file);
  return [path.basename(file)];
}

main({
  name: 'fashion-mosaics',
  model: 'fc-densenet56',
  dataset: 'fashion-mosaics',
  tag: 'fashion-mosaics',
  description: 'FC-DenseNet56 trained by this project to segment the fashion mosaics (64x64 grey, background + 10 garments): npm run exp:fashion-mosaics',
  metric: 'meanIoU',
  moreMetrics: ['globalAccuracy'],
  trainFlags: [
    '--recipe', 'tiramisu', '--epochs', '2', '--batch', '8', '--lr', '0.001', '--schedule', 'cosine',
    '--eval-every', '250', '--eval-limit', '500', '--log-every', '50', '--checkpoint-every', '250', '--seed', '1',
  ],
  quickFlags: [
    '--recipe', 'tiramisu', '--epochs', '0.01', '--max-steps', '3', '--batch', '2',
    '--eval-every', '2', '--eval-limit', '16', '--log-every', '1', '--seed', '1',
  ],
  anchor: { label: 'FC-DenseNet103 on CamVid (a harder, real dataset)', value: 0.669, source: 'the Tiramisu paper' },
  figures: predictionFigure,
});
