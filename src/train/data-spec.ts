// The data side of a checkpoint: which dataset a model was trained on, where it was, and how its
// images were normalised, so that eval, predict and --resume open the same data the same way.
import * as path from 'path';
import type { Dataset, Split } from '../data/dataset';
import { FolderOptions, openDataset, OpenDatasetOptions } from '../data';
import type { DataSpec } from './checkpoint';
import * as zoo from '../zoo';
import type { InputShape } from '../models/common';

export interface DataSpecOptions {
  dir?: string;
  mosaic?: Record<string, unknown>;
  folder?: FolderOptions;
  evalSplit?: Split;
}

/** Folder options that describe the data (the decoder and threads are the machine's business). */
function recordedFolderOptions({ decoder, workers, prefetch, ...rest }: FolderOptions): Record<string, unknown> {
  return rest as Record<string, unknown>;
}

export function dataSpecFor(dataset: Dataset, opts: DataSpecOptions = {}): DataSpec {
  const evalSplit = opts.evalSplit ?? 'test';
  if (!dataset.splits.includes(evalSplit)) {
    throw new Error(`dataset ${dataset.name} has no '${evalSplit}' split to evaluate on (it has ${dataset.splits.join(', ')})`);
  }
  const spec: DataSpec = {
    dataset: dataset.name,
    task: dataset.task,
    imageShape: [...dataset.imageShape] as [number, number, number],
    normalization: { mean: [...dataset.normalization.mean], std: [...dataset.normalization.std] },
    classNames: [...dataset.classNames],
    evalSplit,
  };
  if (opts.dir) spec.dir = path.resolve(opts.dir);
  if (opts.mosaic && Object.keys(opts.mosaic).length) spec.mosaic = opts.mosaic;
  if (opts.folder) spec.folder = recordedFolderOptions(opts.folder);
  if (dataset.ignoreLabel !== undefined) spec.ignoreLabel = dataset.ignoreLabel;
  if (dataset.palette) spec.palette = dataset.palette.map((c) => [c[0], c[1], c[2]]);
  return spec;
}

/** Opens the dataset a checkpoint was trained on (from `dir` instead, when given), normalised as in training. */
export function openDatasetFromSpec(spec: DataSpec, dir?: string, runtime: Pick<OpenDatasetOptions, 'note'> & Pick<FolderOptions, 'decoder'> = {}): Dataset {
  const folder = spec.folder ? { ...(spec.folder as FolderOptions), ...(runtime.decoder ? { decoder: runtime.decoder } : {}) } : undefined;
  return openDataset(spec.dataset, { dir: dir ?? spec.dir, normalization: spec.normalization, mosaic: spec.mosaic, folder, note: runtime.note });
}

/** Checks that data opened for a checkpoint has the shape and classes the model was trained for. */
export function checkDataMatches(spec: DataSpec, dataset: Dataset): void {
  const [h, w, c] = dataset.imageShape;
  if (dataset.numClasses !== spec.classNames.length) {
    throw new Error(`dataset ${dataset.name} has ${dataset.numClasses} classes but the checkpoint was trained on ${spec.classNames.length}`);
  }
  if (c !== spec.imageShape[2]) {
    throw new Error(`dataset ${dataset.name} has ${c}-channel images but the checkpoint was trained on ${spec.imageShape[2]} channels`);
  }
  if (dataset.task === 'classification' && (h !== spec.imageShape[0] || w !== spec.imageShape[1])) {
    throw new Error(`dataset ${dataset.name} has ${h}x${w} images but the checkpoint was trained on ${spec.imageShape[0]}x${spec.imageShape[1]}`);
  }
}

/**
 * The model options a dataset dictates: its channels and classes, and its image size (or, for
 * segmentation trained on random crops, the crop's). Refuses a model of the other task.
 */
export function modelOptionsForDataset(name: string, dataset: Dataset, crop?: number): { inputShape: InputShape; numClasses: number } {
  const e = zoo.info(name);
  if (e.task !== dataset.task) {
    throw new Error(`${name} is a ${e.task} model but dataset ${dataset.name} is a ${dataset.task} dataset; ` +
      `pick a ${dataset.task === 'segmentation' ? 'fc-densenet' : 'densenet'} model`);
  }
  const [h, w, c] = dataset.imageShape;
  const cropped = crop !== undefined && dataset.task === 'segmentation';
  return { inputShape: cropped ? [Math.min(h, crop), Math.min(w, crop), c] : [h, w, c], numClasses: dataset.numClasses };
}
