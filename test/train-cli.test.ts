// The train, eval, predict and report commands end to end on small files in the real formats,
// and every kind of bad input as one clear error line that names the file, with a non-zero exit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { encodeIdx } from '../src/data/idx';
import { readCheckpointState } from '../src/train/checkpoint';
import { cifarRecord, concatBytes, labelPng, rgbPng, tempDir, writeCamVid } from './data-fixtures';
import { runCli, stderrErrorLines, TINY_ARGS, TINY_MODEL, writeTinyFashion } from './train-fixtures';

const tmp = tempDir('train-cli');
const data = join(tmp.dir, 'data');
const run = join(tmp.dir, 'run');

before(() => {
  mkdirSync(data);
  writeTinyFashion(data, 24, 10, 8);
});
after(() => tmp.cleanup());

const tinyTrain = (out: string, extra: string[] = [], dir = data) => [
  'train', TINY_MODEL, ...TINY_ARGS, '--dataset', 'fashion-mnist', '--data', dir, '--batch', '4', '--epochs', '1',
  '--log-every', '2', '--out', out, ...extra,
];

/** Runs the CLI, expects failure with exactly one error line matching `pattern`. */
function expectError(args: string[], pattern: RegExp): void {
  const r = runCli(args);
  assert.notEqual(r.status, 0, `should fail: ${args.join(' ')}\n${r.stdout}`);
  const lines = stderrErrorLines(r.stderr);
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], pattern);
  assert.ok(!/\n\s+at /.test(r.stderr), `no stack trace:\n${r.stderr}`);
}

test('train: plain progress lines when not a terminal, recipe overridden by flags, options recorded, last/ and best/', () => {
  const r = runCli(tinyTrain(run, ['--lr', '0.05', '--schedule', 'cosine', '--eval-limit', '6']));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^epoch 1\/1 step 2\/6 loss \d+\.\d{4} acc \d+\.\d{2}% lr 0\.0\d+ [\d.]+ img\/s ETA \S+$/m);
  assert.match(r.stdout, /^eval test at step 6 \(epoch 1\): loss \d+\.\d+ top1 \d+\.\d+% top5 \d+\.\d+% \(6 images, \S+\)$/m);
  assert.match(r.stdout, /^time \S+, peak memory \d+ MiB, backend wasm; checkpoint /m);
  const { state } = readCheckpointState(run);
  assert.equal(state.config.recipe, 'densenet-cifar');
  assert.deepEqual([state.config.lr, state.config.schedule, state.config.batchSize, state.config.momentum], [0.05, 'cosine', 4, 0.9]);
  assert.deepEqual(state.model.inputShape, [8, 8, 1]);
  assert.equal(state.data.dataset, 'fashion-mnist');
  assert.ok(existsSync(join(run, 'best', 'checkpoint.json')));
  const lines = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.filter((l) => l.type === 'train').map((l) => l.step), [2, 4, 6]);
  for (const l of lines.filter((x) => x.type !== 'summary')) {
    for (const key of ['step', 'epoch', 'loss', 'lr', 'metrics']) assert.ok(key in l, `${key} in ${JSON.stringify(l)}`);
  }
});

test('eval: rebuilds the recorded model from a checkpoint folder, the run folder or best/; text and --json', () => {
  const json = runCli(['eval', TINY_MODEL, '--weights', join(run, 'last'), '--dataset', 'fashion-mnist', '--data', data, '--json']);
  assert.equal(json.status, 0, json.stderr);
  const out = JSON.parse(json.stdout);
  assert.equal(out.split, 'test');
  assert.equal(out.count, 10);
  assert.ok(out.metrics.top1 >= 0 && out.metrics.top1 <= 1 && out.metrics.top5 >= out.metrics.top1);
  assert.equal(out.confusion.length, 10);
  assert.equal(out.confusion.flat().reduce((a: number, b: number) => a + b, 0), 10);
  const text = runCli(['eval', TINY_MODEL, '--weights', run, '--dataset', 'fashion-mnist', '--split', 'train', '--limit', '8']);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /densenet-bc-100-k12 \(depth 10, k 4\) 8x8x1 -> 10 classes on fashion-mnist train \(8 images\): top1 \d+\.\d+% top5/);
  // The tfjs model.json inside a checkpoint is a plain tfjs model too.
  const tfjs = runCli(['eval', TINY_MODEL, '--weights', join(run, 'best', 'model.json'), '--dataset', 'fashion-mnist', '--data', data]);
  assert.notEqual(tfjs.status, 0, 'the zoo architecture (depth 100) does not fit depth-10 weights');
  assert.match(stderrErrorLines(tfjs.stderr)[0], /model\.json: the weights do not fit the model/);
});

test('predict: a trained classification checkpoint classifies a PNG with the dataset\'s class names', () => {
  const png = new PNG({ width: 8, height: 8 });
  png.data.fill(255);
  const file = join(tmp.dir, 'garment.png');
  writeFileSync(file, PNG.sync.write(png));
  const r = runCli(['predict', TINY_MODEL, file, '--weights', join(run, 'best'), '--top', '3', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.top.length, 3);
  assert.ok(out.top.every((t: { name: string }) => ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'].includes(t.name)));
  expectError(['predict', TINY_MODEL, file, '--weights', join(run, 'best'), '--out', join(tmp.dir, 'x.png')], /--out writes segmentation overlays/);
});

test('segmentation: FC-DenseNet trains on fashion mosaics, evaluates mean IoU, and predict writes a colour overlay PNG', () => {
  const out = join(tmp.dir, 'seg');
  const args = ['train', 'fc-densenet56', '--growth', '2', '--dataset', 'fashion-mosaics', '--data', data, '--mosaic-size', '32',
    '--mosaic-train', '4', '--mosaic-test', '2', '--batch', '2', '--epochs', '1', '--log-every', '1', '--out', out];
  const r = runCli(args);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /recipe tiramisu|tiramisu recipe/);
  assert.match(r.stdout, /eval test at step 2 \(epoch 1\): loss \d+\.\d+ globalAccuracy \d+\.\d+% meanIoU \d+\.\d+%/);
  const { state } = readCheckpointState(out);
  assert.deepEqual(state.model.inputShape, [32, 32, 1], 'images smaller than the 224 crop are used whole');
  assert.equal(state.config.optimizer, 'rmsprop');
  const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const ev = metrics.find((m) => m.type === 'eval');
  assert.equal(ev.perClassIoU.length, 11);

  const img = new PNG({ width: 40, height: 36 }); // not a multiple of 32: padded for the network, cut back after
  for (let i = 0; i < 40 * 36; i++) img.data.set(i % 40 < 20 ? [220, 220, 220, 255] : [0, 0, 0, 255], i * 4);
  const file = join(tmp.dir, 'mosaic.png');
  writeFileSync(file, PNG.sync.write(img));
  const overlay = join(tmp.dir, 'overlay.png');
  const p = runCli(['predict', 'fc-densenet56', file, '--weights', out, '--out', overlay, '--json']);
  assert.equal(p.status, 0, p.stderr);
  const res = JSON.parse(p.stdout);
  assert.deepEqual([res.height, res.width], [36, 40]);
  assert.ok(Math.abs(res.classes.reduce((a: number, c: { fraction: number }) => a + c.fraction, 0) - 1) < 1e-9);
  const drawn = PNG.sync.read(readFileSync(overlay));
  assert.ok(drawn.width > 3 * 40 && drawn.height > 36, 'input, prediction and overlay panels with a legend');
});

test('CIFAR-10 (binary version): DenseNet-BC is built for 32x32x3 and 10 classes', () => {
  const dir = join(tmp.dir, 'cifar');
  mkdirSync(dir);
  let r = 0;
  const rec = () => cifarRecord([r % 10], (y, x, c) => (r++ * 31 + y * 8 + x * 3 + c * 50) % 256);
  for (let i = 1; i <= 5; i++) writeFileSync(join(dir, `data_batch_${i}.bin`), concatBytes([rec(), rec()]));
  writeFileSync(join(dir, 'test_batch.bin'), concatBytes([rec(), rec(), rec(), rec()]));
  const out = join(tmp.dir, 'cifar-run');
  const t = runCli(['train', TINY_MODEL, ...TINY_ARGS, '--dataset', 'cifar10', '--data', dir, '--batch', '5', '--epochs', '1', '--out', out]);
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /eval test at step 2 \(epoch 1\): .* \(4 images/);
  const { state } = readCheckpointState(out);
  assert.deepEqual([state.model.inputShape, state.model.numClasses, state.data.classNames[0]], [[32, 32, 3], 10, 'airplane']);
});

test('CamVid: random 32x32 training crops, whole 40x48 images (padded to 64x64, void ignored) for evaluation', () => {
  const dir = join(tmp.dir, 'camvid');
  const sample = (name: string, seed: number) => ({
    name,
    image: rgbPng(48, 40, (y, x) => [(seed * 40 + y) % 256, (x * 5) % 256, seed * 20]),
    label: labelPng(48, 40, (y, x) => (y < 4 ? 11 : (seed + Math.floor(x / 12)) % 11)),
  });
  writeCamVid(dir, { train: [sample('a.png', 1), sample('b.png', 2)], test: [sample('c.png', 3)] });
  const out = join(tmp.dir, 'camvid-run');
  const t = runCli(['train', 'fc-densenet56', '--growth', '2', '--dataset', 'camvid', '--data', dir, '--crop', '32', '--batch', '2',
    '--epochs', '1', '--out', out]);
  assert.equal(t.status, 0, t.stderr);
  const { state } = readCheckpointState(out);
  assert.deepEqual(state.model.inputShape, [32, 32, 3], 'built for the crop');
  assert.equal(state.data.ignoreLabel, 11);
  const ev = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).find((m) => m.type === 'eval');
  const counted = (ev.confusion as number[][]).flat().reduce((a, b) => a + b, 0);
  assert.equal(counted, 36 * 48, 'every pixel but the void rows (and the padding) is counted');
  const e = runCli(['eval', 'fc-densenet56', '--weights', out, '--dataset', 'camvid', '--json']);
  assert.equal(e.status, 0, e.stderr);
  assert.equal(JSON.parse(e.stdout).perClassIoU.length, 11);
});

test('report: report.md with accuracy, time, memory, the learning curve and the confusion matrix', () => {
  const r = runCli(['report', run, '--command', 'densenet train ...']);
  assert.equal(r.status, 0, r.stderr);
  const md = readFileSync(join(run, 'report.md'), 'utf8');
  assert.match(md, /test split at the end of training \(6 images\): \*\*top1 \d+\.\d+%\*\*/);
  assert.match(md, /- time: \S+ wall clock/);
  assert.match(md, /- peak memory \(resident set of the training process\): \d+ MiB/);
  assert.match(md, /\[learning-curve\.html\]\(learning-curve\.html\)/);
  assert.match(md, /!\[confusion matrix\]\(confusion-matrix\.png\)/);
  assert.ok(readFileSync(join(run, 'learning-curve.html'), 'utf8').includes('training loss'));
  assert.ok(PNG.sync.read(readFileSync(join(run, 'confusion-matrix.png'))).width > 100);
});

/** A copy of the tiny data with one file replaced. */
function brokenCopy(name: string, file: string, bytes: Uint8Array): string {
  const dir = join(tmp.dir, `broken-${name}`);
  cpSync(data, dir, { recursive: true });
  writeFileSync(join(dir, file), bytes);
  return dir;
}

const idxGz = (dims: number[], values: Uint8Array) => gzipSync(encodeIdx(dims, values));

test('bad data: each is one error line naming the file, and a non-zero exit', () => {
  const out = join(tmp.dir, 'never');
  expectError(tinyTrain(out, [], join(tmp.dir, 'no-such-dir')), /no-such-dir: no such directory; expected the Fashion-MNIST IDX files/);

  const noLabels = join(tmp.dir, 'broken-missing');
  cpSync(data, noLabels, { recursive: true });
  rmSync(join(noLabels, 't10k-labels-idx1-ubyte.gz'));
  expectError(tinyTrain(out, [], noLabels), /broken-missing: has no Fashion-MNIST test labels file; expected one of t10k-labels-idx1-ubyte\.gz/);

  const magic = encodeIdx([24, 8, 8], new Uint8Array(24 * 64));
  magic[3] = 1; // says 1 dimension
  expectError(tinyTrain(out, [], brokenCopy('magic', 'train-images-idx3-ubyte.gz', gzipSync(magic))),
    /train-images-idx3-ubyte\.gz: wrong magic number 0x00000801; expected 0x00000803/);

  const full = encodeIdx([10, 8, 8], new Uint8Array(10 * 64));
  expectError(tinyTrain(out, [], brokenCopy('truncated', 't10k-images-idx3-ubyte.gz', gzipSync(full.subarray(0, full.length - 5)))),
    /t10k-images-idx3-ubyte\.gz: is truncated: header says 10x8x8 = 640 bytes of data, the file has 635/);

  expectError(tinyTrain(out, [], brokenCopy('label', 't10k-labels-idx1-ubyte.gz', idxGz([10], Uint8Array.from([0, 1, 2, 12, 0, 0, 0, 0, 0, 0])))),
    /t10k-labels-idx1-ubyte\.gz: label 12 at index 3 is out of range; expected 0\.\.9/);

  expectError(tinyTrain(out, [], brokenCopy('count', 't10k-labels-idx1-ubyte.gz', idxGz([9], new Uint8Array(9)))),
    /t10k-labels-idx1-ubyte\.gz: holds 9 labels but .*t10k-images-idx3-ubyte\.gz holds 10 images/);

  expectError(tinyTrain(out, [], brokenCopy('size', 't10k-images-idx3-ubyte.gz', idxGz([10, 9, 9], new Uint8Array(10 * 81)))),
    /images-idx3-ubyte\.gz: holds (9x9|8x8) images; expected (8x8|9x9) like the other split/);

  expectError(['train', TINY_MODEL, '--dataset', 'cifar10'], /dataset cifar10 has no default location; pass --data DIR/);
  assert.ok(!existsSync(out), 'nothing was written for failed runs');
});

test('bad runs and options: each is one clear error line', () => {
  expectError(tinyTrain(run), /already holds a run .*; pass --resume to continue it, or choose another --out/);
  expectError(tinyTrain(join(tmp.dir, 'nothing'), ['--resume']), /nothing: no checkpoint here/);
  expectError(tinyTrain(run, ['--resume', '--batch', '8']), /--batch 8 differs from the run's 4/);
  expectError(tinyTrain(join(tmp.dir, 'x'), ['--lr', 'fast']), /--lr 'fast': expected a positive number/);
  expectError(tinyTrain(join(tmp.dir, 'x'), ['--depth', '11']), /depth 11 does not give whole blocks; DenseNet-BC depth is 6 x \(layers per block\) \+ 4/);
  expectError(['train', 'fc-densenet56', '--dataset', 'fashion-mnist', '--data', data], /fc-densenet56 is a segmentation model but dataset fashion-mnist is a classification dataset/);
  expectError(['train', 'nosuchnet', '--dataset', 'fashion-mnist'], /unknown model 'nosuchnet'/);
  expectError(['eval', TINY_MODEL, '--weights', join(tmp.dir, 'nowhere'), '--dataset', 'fashion-mnist', '--data', data], /nowhere: no such file or folder; expected a checkpoint folder/);
});
