// Experiment "camvid": FC-DenseNet56 on the real CamVid (SegNet layout: 367 train, 101 val, 233 test
// frames at 360x480, 11 classes + void) with the Tiramisu recipe's first stage (RMSprop 1e-3,
// x0.995 per epoch, random 224x224 crops and flips, batch 3). The checkpoint kept is the best by
// validation mean IoU (evaluated on the whole val split after every epoch); the BatchNorm mode
// that does best on val ships; the 233 test frames are evaluated at full resolution in both modes,
// beside the paper's CamVid table. The weights ship as zoo.load('fc-densenet56', { weights: 'camvid' }).
//   npm run exp:camvid                        (trains runs/exp-camvid, continuing it if it holds a run)
//   npm run exp:camvid -- --run DIR --no-train (evaluate and ship a run trained in the background)
//   npm run exp:camvid -- --quick --out DIR    (a few steps, to check the pipeline)
import * as path from 'path';
import { backend, zoo } from '../src';
import { CAMVID_CLASSES } from '../src/data';
import { heldOutFigure, openDatasetFromSpec } from '../src/train';
import { barChartImage, confusionMatrixImage, savePng } from '../src/notebook';
import { BatchNormChoice, EvalOutput, ExperimentContext, main } from './training-run';

/**
 * The paper's CamVid results (Jégou et al. 2017, "The One Hundred Layers Tiramisu", results table):
 * IoU per class (%), mean IoU (%) and global accuracy (%), test split, void ignored.
 */
export const PAPER_CAMVID = {
  'FC-DenseNet56': { params: '1.5M', meanIoU: 58.9, globalAccuracy: 88.9, perClass: { Building: 77.6, Tree: 72.0, Sky: 92.4, Car: 73.2, SignSymbol: 31.8, Road: 92.8, Pedestrian: 37.9, Fence: 26.2, Pole: 32.6, Pavement: 79.9, Bicyclist: 31.1 } },
  'FC-DenseNet67': { params: '3.5M', meanIoU: 65.8, globalAccuracy: 90.8, perClass: { Building: 80.2, Tree: 75.4, Sky: 93.0, Car: 78.2, SignSymbol: 40.9, Road: 94.7, Pedestrian: 58.4, Fence: 30.7, Pole: 38.4, Pavement: 81.9, Bicyclist: 52.1 } },
  'FC-DenseNet103': { params: '9.4M', meanIoU: 66.9, globalAccuracy: 91.5, perClass: { Building: 83.0, Tree: 77.3, Sky: 93.0, Car: 77.3, SignSymbol: 43.9, Road: 94.5, Pedestrian: 59.6, Fence: 37.1, Pole: 37.8, Pavement: 82.2, Bicyclist: 50.5 } },
  'SegNet (pretrained)': { params: '29.5M', meanIoU: 46.4, globalAccuracy: 62.5, perClass: { Building: 68.7, Tree: 52.0, Sky: 87.0, Car: 58.5, SignSymbol: 13.4, Road: 86.2, Pedestrian: 25.3, Fence: 17.9, Pole: 16.0, Pavement: 60.5, Bicyclist: 24.8 } },
} as const;

type PaperRow = keyof typeof PAPER_CAMVID;

/** Test frames drawn in the figure: three of the four sequences' parts of the split. */
const FIGURE_FRAMES = [10, 120, 200];

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '-' : (x * 100).toFixed(1));

/** Ours (IoU as a fraction) by class name, in the dataset's class order. */
function perClassByName(e: EvalOutput): Record<string, number | null> {
  return Object.fromEntries(CAMVID_CLASSES.map((name, i) => [name, e.perClassIoU?.[i] ?? null]));
}

function epochsTrained(ctx: ExperimentContext): string {
  const { position, stepsPerEpoch } = ctx.state;
  return `${(position.step / stepsPerEpoch).toFixed(1)} epochs (${position.step} steps)`;
}

function comparisonTable(ctx: ExperimentContext, bn: BatchNormChoice): string {
  const rows = [
    '| model | training | BatchNorm at test | mean IoU (%) | global accuracy (%) |',
    '|---|---|---|---|---|',
    ...Object.entries(bn.test).map(([mode, e]) =>
      `| fc-densenet56, this project | ${epochsTrained(ctx)} of the first stage, on ${e!.backend} (CPU) | ${mode}${mode === bn.shipped ? ' (shipped: best on val)' : ''} | ` +
      `**${pct(e!.metrics.meanIoU)}** | **${pct(e!.metrics.globalAccuracy)}** |`),
    ...(Object.keys(PAPER_CAMVID) as PaperRow[]).map((row) =>
      `| ${row} (${PAPER_CAMVID[row].params} params), paper | the paper's (GPU)${row.startsWith('FC') ? ': crops until val stops improving, then full frames at lr 1e-4' : ''} | ` +
      `${row.startsWith('FC') ? 'batch' : '-'} | ${PAPER_CAMVID[row].meanIoU.toFixed(1)} | ${PAPER_CAMVID[row].globalAccuracy.toFixed(1)} |`),
  ];
  return rows.join('\n');
}

function perClassTable(e: EvalOutput): string {
  const ours = perClassByName(e);
  const paper = (row: PaperRow) => PAPER_CAMVID[row].perClass as Record<string, number>;
  return [
    '| class | this project (IoU %) | FC-DenseNet56, paper | FC-DenseNet103, paper |',
    '|---|---|---|---|',
    ...CAMVID_CLASSES.map((name) => `| ${name} | ${pct(ours[name])} | ${paper('FC-DenseNet56')[name].toFixed(1)} | ${paper('FC-DenseNet103')[name].toFixed(1)} |`),
  ].join('\n');
}

async function figures(ctx: ExperimentContext): Promise<string[]> {
  await backend.init(undefined, { log: null });
  const { state, evaluation } = ctx;
  const written: string[] = [];
  const save = (raster: Parameters<typeof savePng>[0], name: string) => written.push(path.basename(savePng(raster, path.join(ctx.resultsDir, name))));

  const dataset = openDatasetFromSpec(state.data, ctx.dataDir);
  const model = await zoo.load(state.model.name, { weights: ctx.modelJson, numClasses: state.model.numClasses, batchNorm: ctx.batchNorm?.shipped });
  try {
    const frames = ctx.quick ? [0] : FIGURE_FRAMES;
    save(await heldOutFigure(model, dataset, {
      split: 'test', indices: frames, title: (i) => `CamVid test frame ${i}: input, truth, prediction, overlay`,
    }), 'camvid-test-frames.png');
  } finally {
    model.dispose();
  }

  const ours = perClassByName(evaluation);
  save(barChartImage(CAMVID_CLASSES, [
    { name: `fc-densenet56, this project (${epochsTrained(ctx)})`, values: CAMVID_CLASSES.map((c) => (ours[c] ?? 0) * 100) },
    ...(['FC-DenseNet56', 'FC-DenseNet103'] as const).map((row) => ({
      name: `${row}, paper`, values: CAMVID_CLASSES.map((c) => (PAPER_CAMVID[row].perClass as Record<string, number>)[c]),
    })),
  ], { title: 'CamVid test: IoU per class', xTitle: 'class', yTitle: 'IoU (%)', valueLabels: false }), 'camvid-per-class-iou.png');
  if (evaluation.confusion) {
    save(confusionMatrixImage(evaluation.confusion, CAMVID_CLASSES, {
      normalize: 'row', counts: false, title: 'CamVid test: confusion (rows: truth, share of its pixels)',
    }), 'camvid-confusion.png');
  }
  return written;
}

function report(ctx: ExperimentContext): { table: string; notes: string; data: Record<string, unknown> } {
  const bn = ctx.batchNorm!;
  const gap = PAPER_CAMVID['FC-DenseNet56'].meanIoU - ctx.evaluation.metrics.meanIoU * 100;
  return {
    table: [comparisonTable(ctx, bn), perClassTable(ctx.evaluation)].join('\n\n'),
    notes: [
      `A shortened CPU run: ${epochsTrained(ctx)} of the recipe's first stage on this machine ` +
        `(${(ctx.state.trainSeconds / 3600).toFixed(1)} h of training), against the paper's hundreds of epochs on a GPU followed by ` +
        `fine-tuning on full frames; the second stage was not run. FC-DenseNet56 here is ${gap.toFixed(1)} mean-IoU points below the paper's.`,
      `Checkpoint: the best of the run by mean IoU on the 101 val frames (${ctx.state.best ? `${pct(ctx.state.best.metrics.meanIoU)}% at step ${ctx.state.best.step}` : 'no evaluation recorded'}). ` +
        `BatchNorm at inference on val: ${Object.entries(bn.val).map(([m, e]) => `${m} ${pct(e!.metrics.meanIoU)}%`).join(', ')}; '${bn.shipped}' ships.`,
    ].join('\n\n'),
    data: { paper: PAPER_CAMVID, classNames: CAMVID_CLASSES, epochs: ctx.state.position.step / ctx.state.stepsPerEpoch },
  };
}

main({
  name: 'camvid',
  model: 'fc-densenet56',
  dataset: 'camvid',
  tag: 'camvid',
  description: 'FC-DenseNet56 trained by this project on the real CamVid (11 classes, void ignored), a shortened CPU run of the Tiramisu recipe: npm run exp:camvid',
  metric: 'meanIoU',
  moreMetrics: ['globalAccuracy'],
  checkpoint: 'best',
  defaultData: '../shared/data/camvid',
  batchNormModes: ['running', 'batch'],
  trainFlags: ['--recipe', 'tiramisu', '--eval-split', 'val', '--epochs', '300', '--checkpoint-every', '40', '--log-every', '10', '--seed', '1'],
  quickFlags: [
    '--recipe', 'tiramisu', '--eval-split', 'val', '--epochs', '0.01', '--max-steps', '3', '--batch', '1', '--crop', '64',
    '--eval-limit', '1', '--log-every', '1', '--seed', '1',
  ],
  quickEvalImages: 1,
  anchor: { label: 'FC-DenseNet56 on CamVid, paper', value: 0.589, source: 'Jégou et al. 2017' },
  figures,
  report,
});
