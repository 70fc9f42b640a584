// What zoo.load hands out: a tf.LayersModel that knows how its weights want images (size,
// normalisation, classes) and classifies or segments a PNG file, decoded pixels or a tensor.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { PNG } from 'pngjs';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import * as zoo from '../src/zoo';
import { decodeImageFile } from '../src/data/image-file';
import { saveLayersModelToFile } from '../src/weights/file-io';
import { tempDir } from './data-fixtures';

const tmp = tempDir('densenet-zoo-model-');
before(async () => {
  await init('cpu', { log: null });
});
after(() => tmp.cleanup());

/** A grey PNG of a bright rectangle on a dark ground (a garment-like blob). */
function writeBlobPng(file: string, w: number, h: number): string {
  const png = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const inside = x > w * 0.25 && x < w * 0.75 && y > h * 0.1 && y < h * 0.9;
      const v = inside ? 200 - ((x * 7 + y * 3) % 40) : 10;
      png.data.set([v, v, v, 255], (y * w + x) * 4);
    }
  }
  fs.writeFileSync(file, PNG.sync.write(png));
  return file;
}

test('a loaded model carries its card: spec, preprocessing, class names and where the weights came from', async () => {
  const model = await zoo.load('densenet-bc-100-k12', { weights: 'fashion-mnist' });
  try {
    assert.ok(model instanceof tf.LayersModel, 'still a tf.LayersModel');
    assert.equal(model.card.task, 'classification');
    assert.deepEqual(model.card.spec.inputShape, [28, 28, 1]);
    assert.deepEqual(model.card.preprocessing, { inputShape: [28, 28, 1], mean: [0.286], std: [0.353] });
    assert.equal(model.card.classNames[9], 'Ankle boot');
    assert.equal(model.card.weights?.source, 'fashion-mnist');
    assert.equal(model.card.weights?.headLoaded, true);
    assert.match(model.card.weights?.sha256 ?? '', /^[0-9a-f]{64}$/);
  } finally {
    model.dispose();
  }
});

test('classify: a PNG file, its decoded pixels and a pixel tensor give the same top classes, named and sorted', async () => {
  const model = await zoo.load('densenet-bc-100-k12', { weights: 'fashion-mnist' });
  const file = writeBlobPng(path.join(tmp.dir, 'blob.png'), 40, 56);
  const decoded = decodeImageFile(file);
  const pixels = tf.tensor3d(decoded.rgba, [decoded.height, decoded.width, 4], 'int32');
  try {
    const fromFile = await model.classify(file, { topK: 3 });
    assert.equal(fromFile.length, 3);
    for (let i = 1; i < 3; i++) assert.ok(fromFile[i - 1].probability >= fromFile[i].probability, 'most probable first');
    fromFile.forEach((c) => assert.equal(c.name, model.card.classNames[c.class]));
    assert.deepEqual(await model.classify(decoded, { topK: 3 }), fromFile);
    const fromTensor = await model.classify(pixels, { topK: 3 });
    assert.deepEqual(fromTensor.map((c) => c.class), fromFile.map((c) => c.class));
    fromTensor.forEach((c, i) => assert.ok(Math.abs(c.probability - fromFile[i].probability) < 1e-5));
    const all = await model.classify(file, { topK: 10 });
    assert.ok(Math.abs(all.reduce((s, c) => s + c.probability, 0) - 1) < 1e-4, 'probabilities of all classes sum to 1');
    await assert.rejects(model.segment(file), /classification model cannot segment; use classify\(\)/);
    await assert.rejects(model.classify(tf.zeros([2, 4, 4, 3]) as tf.Tensor4D), /image tensor of shape \[2,4,4,3\]: expected \[H, W, C\]/);
  } finally {
    pixels.dispose();
    model.dispose();
  }
});

test('segment: a label per pixel at the image\'s own size (not a multiple of 32), the same from a file and a tensor', async () => {
  const start = tf.memory().numTensors;
  const model = await zoo.load('fc-densenet56', { weights: 'fashion-mosaics' });
  const file = writeBlobPng(path.join(tmp.dir, 'scene.png'), 70, 50);
  const decoded = decodeImageFile(file);
  const pixels = tf.tensor3d(decoded.rgba, [decoded.height, decoded.width, 4], 'int32');
  try {
    const seg = await model.segment(file);
    assert.deepEqual([seg.height, seg.width, seg.labels.length], [50, 70, 50 * 70]);
    assert.equal(seg.classNames, model.card.classNames);
    assert.equal(seg.colors.length, seg.classNames.length);
    assert.ok(Math.abs(seg.fractions.reduce((a, b) => a + b, 0) - 1) < 1e-9);
    assert.ok(seg.fractions[0] > 0.2, `the dark ground is mostly background (class 0): ${seg.fractions[0]}`);
    const cached = tf.memory().numTensors; // the model and its copy for 64x96, kept until dispose
    const again = await model.segment(pixels);
    assert.deepEqual(again.labels, seg.labels);
    assert.equal(tf.memory().numTensors, cached, 'a second image of that size leaves no tensor behind');
    await assert.rejects(model.classify(file), /segmentation model; use segment\(\)/);
  } finally {
    pixels.dispose();
    model.dispose();
  }
  assert.equal(tf.memory().numTensors, start, 'dispose frees the model and its copies');
});

test('a failed load disposes the model it built', async () => {
  const dir = path.join(tmp.dir, 'wrong');
  const other = zoo.create('densenet-bc-100-k12', { depth: 10, growthRate: 4 });
  await saveLayersModelToFile(other, dir);
  other.dispose();
  const before = tf.memory().numTensors;
  await assert.rejects(zoo.load('densenet-bc-100-k12', { weights: path.join(dir, 'model.json') }), /./);
  assert.equal(tf.memory().numTensors, before);
});
