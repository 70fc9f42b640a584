// Evaluation metrics on plain typed arrays (read back from tensors once per batch):
// top-k accuracy for classification; a confusion matrix and from it global pixel accuracy,
// per-class IoU and mean IoU for segmentation. Accumulators add batch after batch, so a whole
// test split is measured without holding its predictions.

/** Index of the largest score of each row of a row-major [rows, numClasses] array (first one on ties). */
export function argmax(scores: ArrayLike<number>, numClasses: number): Int32Array {
  checkShape(scores.length, numClasses, 'scores');
  const rows = scores.length / numClasses;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * numClasses;
    let best = 0;
    let bestScore = scores[base];
    for (let c = 1; c < numClasses; c++) {
      if (scores[base + c] > bestScore) {
        bestScore = scores[base + c];
        best = c;
      }
    }
    out[r] = best;
  }
  return out;
}

function checkShape(length: number, numClasses: number, what: string): void {
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new Error(`numClasses must be a positive integer, got ${numClasses}`);
  if (length % numClasses !== 0) {
    throw new Error(`${what} has ${length} values, not a whole number of rows of ${numClasses} classes`);
  }
}

function checkLabel(label: number, position: number, numClasses: number, ignoreLabel?: number): void {
  if (!(Number.isInteger(label) && label >= 0 && label < numClasses)) {
    const ignore = ignoreLabel === undefined ? '' : ` or the ignore label ${ignoreLabel}`;
    throw new Error(`label ${label} at position ${position} is out of range; expected 0..${numClasses - 1}${ignore}`);
  }
}

/**
 * How many rows have their true class among the k highest scores. Ties rank the lower class
 * index first, as argmax does, so top-1 agrees with the confusion matrix.
 */
export function topKCorrect(scores: ArrayLike<number>, labels: ArrayLike<number>, numClasses: number, k: number): number {
  checkShape(scores.length, numClasses, 'scores');
  const rows = scores.length / numClasses;
  if (labels.length !== rows) throw new Error(`scores have ${rows} rows but there are ${labels.length} labels`);
  if (!Number.isInteger(k) || k < 1) throw new Error(`top-k needs an integer k >= 1, got ${k}`);
  let correct = 0;
  for (let r = 0; r < rows; r++) {
    const label = labels[r];
    checkLabel(label, r, numClasses);
    const base = r * numClasses;
    const target = scores[base + label];
    // NaN compares false with everything: a row holding one would otherwise count as correct.
    let higher = Number.isNaN(target) ? k : 0;
    for (let c = 0; c < numClasses && higher < k; c++) {
      const score = scores[base + c];
      if (Number.isNaN(score)) higher = k;
      else if (score > target || (score === target && c < label)) higher++;
    }
    if (higher < k) correct++;
  }
  return correct;
}

export function topKAccuracy(scores: ArrayLike<number>, labels: ArrayLike<number>, numClasses: number, k: number): number {
  return labels.length === 0 ? 0 : topKCorrect(scores, labels, numClasses, k) / labels.length;
}

/** counts[truth * numClasses + predicted]; float64 so pixel counts stay exact past 2^32. */
export class ConfusionMatrix {
  readonly counts: Float64Array;

  constructor(readonly numClasses: number, readonly ignoreLabel?: number) {
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new Error(`numClasses must be a positive integer, got ${numClasses}`);
    this.counts = new Float64Array(numClasses * numClasses);
  }

  /** Adds pairs (truth[i], predicted[i]); pairs whose truth is the ignore label are skipped. */
  add(truth: ArrayLike<number>, predicted: ArrayLike<number>): this {
    if (truth.length !== predicted.length) {
      throw new Error(`confusion matrix: ${truth.length} true labels but ${predicted.length} predictions`);
    }
    const n = this.numClasses;
    for (let i = 0; i < truth.length; i++) {
      const t = truth[i];
      if (t === this.ignoreLabel) continue;
      checkLabel(t, i, n, this.ignoreLabel);
      const p = predicted[i];
      if (!(Number.isInteger(p) && p >= 0 && p < n)) {
        throw new Error(`prediction ${p} at position ${i} is out of range; expected 0..${n - 1}`);
      }
      this.counts[t * n + p]++;
    }
    return this;
  }

  at(truth: number, predicted: number): number {
    return this.counts[truth * this.numClasses + predicted];
  }

  total(): number {
    return this.counts.reduce((a, b) => a + b, 0);
  }

  /** Rows of counts, for reports and JSON. */
  toRows(): number[][] {
    const n = this.numClasses;
    return Array.from({ length: n }, (_, t) => Array.from(this.counts.subarray(t * n, (t + 1) * n)));
  }
}

/** Correct over all counted samples (pixels, for segmentation); 0 when nothing was counted. */
export function globalAccuracy(cm: ConfusionMatrix): number {
  const total = cm.total();
  if (total === 0) return 0;
  let diag = 0;
  for (let c = 0; c < cm.numClasses; c++) diag += cm.at(c, c);
  return diag / total;
}

/** TP / (TP + FP + FN) per class; NaN for a class absent from both truth and predictions. */
export function perClassIoU(cm: ConfusionMatrix): number[] {
  const n = cm.numClasses;
  const iou: number[] = [];
  for (let c = 0; c < n; c++) {
    let truthTotal = 0;
    let predTotal = 0;
    for (let k = 0; k < n; k++) {
      truthTotal += cm.at(c, k);
      predTotal += cm.at(k, c);
    }
    const tp = cm.at(c, c);
    const union = truthTotal + predTotal - tp;
    iou.push(union === 0 ? NaN : tp / union);
  }
  return iou;
}

/** Mean of the per-class IoUs of the classes that occur (in truth or prediction); 0 when none does. */
export function meanIoU(cm: ConfusionMatrix): number {
  const present = perClassIoU(cm).filter((x) => !Number.isNaN(x));
  return present.length === 0 ? 0 : present.reduce((a, b) => a + b, 0) / present.length;
}

export interface ClassificationResult {
  top1: number;
  top5: number;
  count: number;
  confusion: ConfusionMatrix;
}

/** Accumulates top-1/top-5 accuracy and the confusion matrix over batches of scores. */
export class ClassificationMeter {
  private top1 = 0;
  private top5 = 0;
  private count = 0;
  private readonly confusion: ConfusionMatrix;

  constructor(readonly numClasses: number) {
    this.confusion = new ConfusionMatrix(numClasses);
  }

  /** scores: [N, numClasses] row-major logits or probabilities; labels: [N]. */
  update(scores: ArrayLike<number>, labels: ArrayLike<number>): void {
    this.top1 += topKCorrect(scores, labels, this.numClasses, 1);
    this.top5 += topKCorrect(scores, labels, this.numClasses, 5);
    this.confusion.add(labels, argmax(scores, this.numClasses));
    this.count += labels.length;
  }

  result(): ClassificationResult {
    const d = Math.max(this.count, 1);
    return { top1: this.top1 / d, top5: this.top5 / d, count: this.count, confusion: this.confusion };
  }
}

export interface SegmentationResult {
  globalAccuracy: number;
  meanIoU: number;
  /** NaN where a class occurred in neither truth nor prediction. */
  perClassIoU: number[];
  /** Pixels counted (not ignored). */
  pixels: number;
  confusion: ConfusionMatrix;
}

/** Accumulates the pixel confusion matrix of segmentation batches. */
export class SegmentationMeter {
  private readonly confusion: ConfusionMatrix;

  constructor(readonly numClasses: number, readonly ignoreLabel?: number) {
    this.confusion = new ConfusionMatrix(numClasses, ignoreLabel);
  }

  /** scores: [N, H, W, numClasses] logits or probabilities; labels: [N, H, W]. */
  update(scores: ArrayLike<number>, labels: ArrayLike<number>): void {
    this.updatePredictions(argmax(scores, this.numClasses), labels);
  }

  /** predicted: [N, H, W] class indices; labels: [N, H, W]. */
  updatePredictions(predicted: ArrayLike<number>, labels: ArrayLike<number>): void {
    this.confusion.add(labels, predicted);
  }

  result(): SegmentationResult {
    const cm = this.confusion;
    return {
      globalAccuracy: globalAccuracy(cm), meanIoU: meanIoU(cm), perClassIoU: perClassIoU(cm),
      pixels: cm.total(), confusion: cm,
    };
  }
}
