// Experiment "fashion-mosaics": FC-DenseNet56 segmenting the fashion mosaics (64x64 canvases of
// Fashion-MNIST garments, 11 classes with the background) with the Tiramisu recipe shortened to
// 2 epochs of the 10,000 training mosaics; global accuracy and mean IoU on the 2,000 held-out
// mosaics (made from test-split garments), a figure of predictions, and the weights shipped as
// zoo.load('fc-densenet56', { weights: 'fashion-mosaics' }).
//   npm run exp:fashion-mosaics          (the full run; continues runs/exp-fashion-mosaics if it holds one)
//   npm run exp:fashion-mosaics -- --quick --out DIR
import * as path from 'path';
import { backend, zoo } from '../src';
import { heldOutFigure, openDatasetFromSpec } from '../src/train';
import { savePng } from '../src/notebook';
import { ExperimentContext, main } from './training-run';

async function predictionFigure(ctx: ExperimentContext): Promise<string[]> {
  await backend.init(undefined, { log: null });
  const { state } = ctx;
  const dataset = openDatasetFromSpec(state.data);
  const model = await zoo.load(state.model.name, { weights: ctx.modelJson, inputShape: state.model.inputShape, numClasses: state.model.numClasses });
  try {
    const sheet = await heldOutFigure(model, dataset, {
      split: 'test', indices: [0, 1, 2, 3], title: (i) => `held-out mosaic ${i}: input, truth, prediction, overlay`,
    });
    return [path.basename(savePng(sheet, path.join(ctx.resultsDir, 'fashion-mosaics-predictions.png')))];
  } finally {
    model.dispose();
  }
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
