import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import {
  argmax, ClassificationMeter, ConfusionMatrix, globalAccuracy, meanIoU, perClassIoU, SegmentationMeter,
  topKAccuracy,
} from '../src/train/metrics';
import { pixelCrossEntropy, softmaxCrossEntropy } from '../src/train/losses';

const close = (a: number, b: number, tol = 1e-5) => assert.ok(Math.abs(a - b) < tol, `${a} != ${b}`);

// Six classes, four rows: right at top 1; second place; sixth place; all tied (first index wins).
const SCORES = [
  0.1, 0.5, 0.2, 0.05, 0.1, 0.05,
  0.3, 0.1, 0.25, 0.2, 0.1, 0.05,
  0.05, 0.1, 0.15, 0.2, 0.25, 0.25,
  0, 0, 0, 0, 0, 0,
];
const LABELS = [1, 2, 0, 3];

test('top-1 and top-5 accuracy by hand', () => {
  assert.deepEqual(Array.from(argmax(SCORES, 6)), [1, 0, 4, 0]);
  assert.equal(topKAccuracy(SCORES, LABELS, 6, 1), 1 / 4);
  assert.equal(topKAccuracy(SCORES, LABELS, 6, 5), 3 / 4);
  assert.equal(topKAccuracy(SCORES, LABELS, 6, 6), 1);
  const meter = new ClassificationMeter(6);
  meter.update(SCORES.slice(0, 12), LABELS.slice(0, 2));
  meter.update(SCORES.slice(12), LABELS.slice(2));
  const r = meter.result();
  assert.deepEqual([r.top1, r.top5, r.count], [0.25, 0.75, 4]);
  assert.equal(r.confusion.at(2, 0), 1);
  assert.equal(r.confusion.at(1, 1), 1);
  assert.equal(r.confusion.total(), 4);
  assert.throws(() => topKAccuracy(SCORES, [1, 2, 0, 6], 6, 1), /label 6 at position 3 is out of range; expected 0..5/);
  assert.throws(() => topKAccuracy(SCORES, [1, 2], 6, 1), /4 rows but there are 2 labels/);
  assert.throws(() => argmax([1, 2, 3], 2), /3 values, not a whole number of rows of 2 classes/);
});

test('confusion matrix, global accuracy and IoU by hand, ignore label skipped', () => {
  const truth = [0, 0, 1, 1, 2, 255, 0, 1];
  const pred = [0, 1, 1, 1, 0, 2, 0, 2];
  const cm = new ConfusionMatrix(3, 255).add(truth, pred);
  assert.deepEqual(cm.toRows(), [[2, 1, 0], [0, 2, 1], [1, 0, 0]]);
  close(globalAccuracy(cm), 4 / 7);
  assert.deepEqual(perClassIoU(cm), [0.5, 0.5, 0]);
  close(meanIoU(cm), 1 / 3);
  // A fourth class that occurs nowhere is NaN and left out of the mean.
  const cm4 = new ConfusionMatrix(4, 255).add(truth, pred);
  const iou4 = perClassIoU(cm4);
  assert.ok(Number.isNaN(iou4[3]));
  close(meanIoU(cm4), 1 / 3);
  // Predicted but never true: IoU 0, and it counts.
  const cmFalse = new ConfusionMatrix(4).add([0, 0], [0, 3]);
  assert.deepEqual(perClassIoU(cmFalse).map((x) => (Number.isNaN(x) ? 'NaN' : x)), [0.5, 'NaN', 'NaN', 0]);
  close(meanIoU(cmFalse), 0.25);
  assert.throws(() => new ConfusionMatrix(3, 255).add([0, 7], [0, 0]), /label 7 at position 1 is out of range; expected 0..2 or the ignore label 255/);
  assert.throws(() => new ConfusionMatrix(3).add([0], [3]), /prediction 3 at position 0 is out of range/);
});

test('segmentation meter from per-pixel scores', () => {
  const meter = new SegmentationMeter(2, 11);
  // 2x2 image, scores per pixel [c0, c1]; predictions 1, 0, 0, 1; truth 1, 1, 11, 0.
  meter.update([0, 1, 3, 2, 5, 0, -1, 4], [1, 1, 11, 0]);
  const r = meter.result();
  assert.equal(r.pixels, 3);
  close(r.globalAccuracy, 1 / 3);
  assert.deepEqual(r.perClassIoU, [0, 1 / 3]);
  close(r.meanIoU, 1 / 6);
});

test('softmax cross entropy by hand, from logits and from probabilities', async () => {
  await init('cpu', { log: null });
  const loss = softmaxCrossEntropy(tf.tensor2d([[1, 2, 3], [0, 0, 0]]), tf.tensor1d([2, 1], 'int32'));
  const expected = (Math.log(1 + Math.exp(-1) + Math.exp(-2)) + Math.log(3)) / 2;
  close((await loss.data())[0], expected);
  const fromProbs = softmaxCrossEntropy(tf.tensor2d([[0.2, 0.3, 0.5]]), tf.tensor1d([2], 'int32'), { fromProbabilities: true });
  close((await fromProbs.data())[0], Math.log(2));
  assert.throws(() => softmaxCrossEntropy(tf.tensor2d([[1, 2]]), tf.tensor1d([0, 1], 'int32')), /labels have shape \[2\]; expected \[1\]/);
});

test('pixel cross entropy: ignore label, class weights, mean over counted pixels, gradients', async () => {
  await init('cpu', { log: null });
  // One 1x3 image, two classes; the third pixel is void (11).
  const logits = tf.tensor4d([0, 0, 2, 0, 5, -5], [1, 1, 3, 2]);
  const labels = tf.tensor3d([0, 1, 11], [1, 1, 3], 'int32');
  const a = Math.log(2);
  const b = Math.log(1 + Math.exp(2));
  close((await pixelCrossEntropy(logits, labels, { ignoreLabel: 11 }).data())[0], (a + b) / 2);
  close((await pixelCrossEntropy(logits, labels, { ignoreLabel: 11, classWeights: [1, 3] }).data())[0], (a + 3 * b) / 2);
  const allVoid = tf.tensor3d([11, 11, 11], [1, 1, 3], 'int32');
  assert.equal((await pixelCrossEntropy(logits, allVoid, { ignoreLabel: 11 }).data())[0], 0);
  const grad = tf.grad((x: tf.Tensor) => pixelCrossEntropy(x, labels, { ignoreLabel: 11 }))(logits);
  const g = Array.from(await grad.data());
  assert.ok(g[4] === 0 && g[5] === 0, 'a void pixel gets no gradient');
  close(g[0], (0.5 - 1) / 2);
  close(g[1], 0.5 / 2);
  assert.ok(g.every(Number.isFinite));
  assert.throws(() => pixelCrossEntropy(logits, labels, { classWeights: [1, 2, 3] }), /3 class weights for 2 classes/);
});
