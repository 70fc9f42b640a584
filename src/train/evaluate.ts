// Evaluation of a model on a split: the mean loss and the task's metrics (top-1/top-5 accuracy,
// or global pixel accuracy, per-class IoU and mean IoU), with the confusion matrix for reports.
// Segmentation images are evaluated whole, by a copy of the model built for their size
// (zoo.modelsBySize): FC-DenseNet takes any size, and its weights do not depend on it.
import * as tf from '../tf';
import type { Dataset, Split } from '../data/dataset';
import { batchToTensors } from '../data/tensors';
import { pixelCrossEntropy, softmaxCrossEntropy } from './losses';
import { ClassificationMeter, SegmentationMeter } from './metrics';
import { ModelForShape } from '../inference/model-for-shape';
import * as zoo from '../zoo';
import type { ZooModel } from '../zoo';

export interface EvalOptions {
  split: Split;
  batchSize?: number;
  /** Evaluate the first `limit` samples only. */
  limit?: number;
  /** Called after each batch with (batches done, total). */
  onBatch?: (done: number, total: number) => void;
}

export interface EvalResult {
  split: Split;
  /** Images evaluated. */
  count: number;
  loss: number;
  /** top1, top5 (classification) or globalAccuracy, meanIoU (segmentation), as fractions. */
  metrics: Record<string, number>;
  /** Segmentation: IoU of each class (null where the class occurs in neither truth nor prediction). */
  perClassIoU?: Array<number | null>;
  /** Rows: true class, columns: predicted class. */
  confusion: number[][];
}

/** The metric a run keeps its best checkpoint by. */
export function primaryMetric(task: 'classification' | 'segmentation'): string {
  return task === 'classification' ? 'top1' : 'meanIoU';
}

/**
 * Evaluates a zoo model (or the copies of one at other sizes, which the caller keeps) on a split.
 * Batch size defaults to 64 images for classification and 1 full image for segmentation.
 */
export async function evaluate(model: ZooModel | ModelForShape, dataset: Dataset, opts: EvalOptions): Promise<EvalResult> {
  const models = model instanceof ModelForShape ? model : zoo.modelsBySize(model);
  try {
    return await evaluateWith(models, dataset, opts);
  } finally {
    if (models !== model) models.dispose();
  }
}

async function evaluateWith(models: ModelForShape, dataset: Dataset, opts: EvalOptions): Promise<EvalResult> {
  const segmentation = dataset.task === 'segmentation';
  const batchOpts = {
    batchSize: opts.batchSize ?? (segmentation ? 1 : 64), limit: opts.limit, shuffle: false, augment: false,
  };
  models.invalidate();
  const total = dataset.numBatches(opts.split, batchOpts);
  const cls = segmentation ? undefined : new ClassificationMeter(dataset.numClasses);
  const seg = segmentation ? new SegmentationMeter(dataset.numClasses, dataset.ignoreLabel) : undefined;
  let lossSum = 0;
  let lossWeight = 0;
  let count = 0;
  let done = 0;
  for await (const batch of dataset.batches(opts.split, batchOpts)) {
    const [, h, w, c] = batch.shape;
    const model = models.get([h, w, c]);
    const { loss, scores } = tf.tidy(() => {
      const { images, labels } = batchToTensors(batch);
      const logits = model.predict(images) as tf.Tensor;
      const l = segmentation
        ? pixelCrossEntropy(logits, labels, { ignoreLabel: dataset.ignoreLabel })
        : softmaxCrossEntropy(logits, labels);
      return { loss: l, scores: logits };
    });
    const scoreValues = (await scores.data()) as Float32Array;
    const lossValue = (await loss.data())[0];
    tf.dispose([loss, scores]);
    if (seg) {
      seg.update(scoreValues, batch.labels);
      const counted = dataset.ignoreLabel === undefined ? batch.labels.length : batch.labels.filter((l) => l !== dataset.ignoreLabel).length;
      lossSum += lossValue * counted;
      lossWeight += counted;
    } else {
      cls!.update(scoreValues, batch.labels);
      lossSum += lossValue * batch.count;
      lossWeight += batch.count;
    }
    count += batch.count;
    opts.onBatch?.(++done, total);
  }
  const loss = lossWeight > 0 ? lossSum / lossWeight : NaN;
  if (cls) {
    const r = cls.result();
    return { split: opts.split, count, loss, metrics: { top1: r.top1, top5: r.top5 }, confusion: r.confusion.toRows() };
  }
  const r = seg!.result();
  return {
    split: opts.split, count, loss,
    metrics: { globalAccuracy: r.globalAccuracy, meanIoU: r.meanIoU },
    perClassIoU: r.perClassIoU.map((x) => (Number.isNaN(x) ? null : x)),
    confusion: r.confusion.toRows(),
  };
}
