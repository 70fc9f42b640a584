// Image folders (DIR/<class>/*.png|jpg): listing, splits, decoding on workers bit for bit like the
// main thread, augmentation styles, clear errors for bad files, and training + eval + predict
// through the CLI on a folder made here (odd sizes, grey and RGBA PNGs, JPEGs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import * as jpeg from 'jpeg-js';
import { closeDecodePools, ImageFolder, openDataset } from '../src/data';
import type { Batch } from '../src/data/dataset';
import { cropBox, decodeWithJs, loadSharp, resample } from '../src/data/image-decoder';
import { readCheckpointState } from '../src/train/checkpoint';
import { tempDir } from './data-fixtures';
import { runCli, stderrErrorLines, TINY_ARGS, TINY_MODEL, TINY_SPEC_OPTIONS } from './train-fixtures';
import * as zoo from '../src/zoo';
import { init } from '../src/backend';

const tmp = tempDir('image-folder');
before(async () => {
  await init('cpu', { log: null });
});
after(async () => {
  await closeDecodePools();
  tmp.cleanup();
});

const RAW = { mean: [0, 0, 0], std: [1 / 255, 1 / 255, 1 / 255] };
type Pixel = (y: number, x: number) => [number, number, number];

function pngBytes(w: number, h: number, pixel: Pixel, opts: { grey?: boolean; alpha?: boolean } = {}): Buffer {
  const png = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = 4 * (y * w + x);
      png.data.set([...pixel(y, x), opts.alpha ? (x * 37) % 256 : 255], o);
    }
  }
  return PNG.sync.write(png, opts.grey ? { colorType: 0 } : opts.alpha ? { colorType: 6 } : { colorType: 2 });
}

function jpegBytes(w: number, h: number, pixel: Pixel): Buffer {
  const data = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set([...pixel(y, x), 255], 4 * (y * w + x));
  return jpeg.encode({ data, width: w, height: h }, 95).data;
}

/** Three classes a tiny net can tell apart by colour; odd sizes, grey, RGBA, PNG and JPEG. */
function writeFolder(dir: string, perClass = 6): void {
  const colors: Record<string, [number, number, number]> = { red: [220, 30, 30], green: [30, 200, 40], blue: [20, 40, 230] };
  for (const [name, [r, g, b]] of Object.entries(colors)) {
    mkdirSync(join(dir, name), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const [w, h] = [23 + 7 * i, 31 + 5 * ((i * 3) % 4)];
      const pixel: Pixel = (y, x) => [(r + x + i) % 256, (g + y) % 256, b];
      const file = join(dir, name, `img${i}.${i % 2 ? 'jpg' : 'png'}`);
      writeFileSync(file, i % 2 ? jpegBytes(w, h, pixel) : pngBytes(w, h, pixel, { alpha: i === 2 }));
    }
  }
  writeFileSync(join(dir, 'green', 'grey.png'), pngBytes(17, 19, (y, x) => [(x * 9) % 256, (x * 9) % 256, (x * 9) % 256], { grey: true }));
  writeFileSync(join(dir, 'blue', 'notes.txt'), 'not an image: ignored');
}

async function collect(ds: ImageFolder, split: 'train' | 'val' | 'test', opts: { batchSize: number; augment?: boolean; seed?: number; epoch?: number }): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of ds.batches(split, opts)) out.push(b);
  return out;
}

const flat = join(tmp.dir, 'flat');
writeFolder(flat);

test('class names are the sorted folder names; a seeded held-out fraction per class is the val split', () => {
  const ds = openDataset('image-folder', { dir: flat, folder: { inputShape: [16, 16], valFraction: 0.34, workers: 0 } }) as ImageFolder;
  assert.deepEqual(ds.classNames, ['blue', 'green', 'red']);
  assert.deepEqual(ds.splits, ['train', 'val']);
  assert.deepEqual(ds.imageShape, [16, 16, 3]);
  // 6 blue, 7 green (with grey.png), 6 red: round(0.34 n) = 2 of each held out.
  assert.deepEqual([ds.size('train'), ds.size('val')], [13, 6]);
  const again = new ImageFolder({ dir: flat, inputShape: [16, 16], valFraction: 0.34, workers: 0 });
  assert.deepEqual(Array.from({ length: 6 }, (_, i) => again.file('val', i).file), Array.from({ length: 6 }, (_, i) => ds.file('val', i).file));
  assert.ok(Array.from({ length: 13 }, (_, i) => ds.file('train', i).file).every((f) => !/notes\.txt/.test(f)));
});

test('train/, val/ and test/ folders are the splits; a class the training split lacks is refused', () => {
  const dir = join(tmp.dir, 'split');
  writeFolder(join(dir, 'train'), 2);
  writeFolder(join(dir, 'test'), 1);
  const ds = new ImageFolder({ dir, inputShape: [8, 8], workers: 0 });
  assert.deepEqual(ds.splits, ['train', 'test']);
  assert.deepEqual([ds.size('train'), ds.size('test')], [7, 4]);
  mkdirSync(join(dir, 'test', 'yellow'));
  writeFileSync(join(dir, 'test', 'yellow', 'a.png'), pngBytes(4, 4, () => [250, 250, 0]));
  assert.throws(() => new ImageFolder({ dir, workers: 0 }), /split[/\\]test: has class folders the training split lacks \(yellow\)/);
});

test('resampling: a constant image stays constant at any crop; boxes follow the plans', () => {
  const src = new Uint8Array(37 * 23 * 3).fill(77);
  assert.ok(resample(src, 37, 23, 3, 10, 14, true).every((v) => v === 77));
  assert.deepEqual(Array.from(resample(Uint8Array.from([0, 255]), 2, 1, 1, 4, 1, false)), [0, 64, 191, 255]);
  assert.deepEqual(cropBox({ kind: 'center', resizeShorter: 256 }, 500, 375, 224, 224), { x: 86, y: 23, w: 328, h: 328 });
  assert.deepEqual(cropBox({ kind: 'whole' }, 500, 375, 224, 224), { x: 0, y: 0, w: 500, h: 375 });
  const box = cropBox({ kind: 'random-resized', area: 1, logRatio: 0.2, fx: 0.99, fy: 0.5 }, 50, 40, 8, 8);
  assert.ok(box.x + box.w <= 50 && box.y + box.h <= 40 && box.w >= 1 && box.h >= 1, JSON.stringify(box));
  const solid = join(tmp.dir, 'solid.png');
  writeFileSync(solid, pngBytes(29, 13, () => [10, 120, 240]));
  const out = decodeWithJs({ file: solid, crop: { kind: 'random-resized', area: 0.3, logRatio: -0.2, fx: 0.4, fy: 0.7 }, flip: true, height: 5, width: 6, channels: 3 });
  assert.deepEqual(Array.from(out.subarray(0, 6)), [10, 120, 240, 10, 120, 240]);
  const grey = decodeWithJs({ file: solid, crop: { kind: 'whole' }, flip: false, height: 2, width: 2, channels: 1 });
  assert.deepEqual(Array.from(grey), Array(4).fill(Math.round(0.299 * 10 + 0.587 * 120 + 0.114 * 240)));
});

for (const decoder of ['js', 'sharp'] as const) {
  test(`${decoder}: batches decoded on 2 workers equal those decoded in this thread, bit for bit, for both augmentation styles`, { skip: decoder === 'sharp' && !loadSharp() ? 'sharp is not installed' : false }, async () => {
    for (const augmentation of ['imagenet', 'cifar'] as const) {
      const opts = { dir: flat, inputShape: [12, 20], valFraction: 0.2, augmentation, decoder, normalization: RAW };
      const inThread = new ImageFolder({ ...opts, workers: 0 });
      const pooled = new ImageFolder({ ...opts, workers: 2, prefetch: 3 });
      for (const augment of [true, false]) {
        const a = await collect(inThread, 'train', { batchSize: 5, augment, seed: 3, epoch: 1 });
        const b = await collect(pooled, 'train', { batchSize: 5, augment, seed: 3, epoch: 1 });
        assert.equal(a.length, 4); // 16 training images: 19 less one held out per class
        assert.deepEqual(b.map((x) => x.shape), a.map((x) => x.shape));
        a.forEach((x, i) => {
          assert.ok(Buffer.from(x.images.buffer).equals(Buffer.from(b[i].images.buffer)), `${augmentation} augment=${augment} batch ${i}`);
          assert.deepEqual(Array.from(b[i].labels), Array.from(x.labels));
        });
      }
      const other = await collect(pooled, 'train', { batchSize: 5, augment: true, seed: 4, epoch: 1 });
      assert.ok(!Buffer.from(other[0].images.buffer).equals(Buffer.from((await collect(pooled, 'train', { batchSize: 5, augment: true, seed: 3, epoch: 1 }))[0].images.buffer)));
    }
  });
}

test('evaluation batches: a solid image gives its colour, normalised; labels follow the folder', async () => {
  const dir = join(tmp.dir, 'solid');
  for (const [name, color] of [['a', [200, 0, 0]], ['b', [0, 0, 200]]] as const) {
    mkdirSync(join(dir, 'test', name), { recursive: true });
    mkdirSync(join(dir, 'train', name), { recursive: true });
    writeFileSync(join(dir, 'test', name, 'x.png'), pngBytes(31, 17, () => [...color]));
    writeFileSync(join(dir, 'train', name, 'x.png'), pngBytes(9, 9, () => [...color]));
  }
  const ds = new ImageFolder({ dir, inputShape: [4, 4], normalization: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }, workers: 1 });
  const [batch] = await collect(ds, 'test', { batchSize: 2 });
  assert.deepEqual(batch.shape, [2, 4, 4, 3]);
  assert.deepEqual(Array.from(batch.labels), [0, 1]);
  const px = (i: number, c: number) => batch.images[i * 48 + c];
  assert.deepEqual([px(0, 0), px(0, 2), px(1, 0), px(1, 2)].map((v) => Math.round(v * 1000) / 1000), [0.569, -1, -1, 0.569]);
});

test('a corrupt image fails its batch with an error naming the file; links out of the folder are refused', async () => {
  const dir = join(tmp.dir, 'corrupt');
  mkdirSync(join(dir, 'a'), { recursive: true });
  writeFileSync(join(dir, 'a', 'good.png'), pngBytes(5, 5, () => [1, 2, 3]));
  writeFileSync(join(dir, 'a', 'bad.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 1, 2, 3]));
  for (const workers of [0, 1]) {
    const ds = new ImageFolder({ dir, inputShape: [4, 4], valFraction: 0, workers, decoder: 'js' });
    await assert.rejects(collect(ds, 'train', { batchSize: 2 }), (err: Error) => {
      assert.match(err.message, /corrupt[/\\]a[/\\]bad\.jpg: not a readable JPEG image/);
      return true;
    });
  }
  const outside = join(tmp.dir, 'outside.png');
  writeFileSync(outside, pngBytes(3, 3, () => [0, 0, 0]));
  symlinkSync(outside, join(dir, 'a', 'link.png'));
  assert.throws(() => new ImageFolder({ dir, workers: 0 }), /link\.png: links to .*outside\.png, outside .*corrupt; data files must stay inside the data folder/);
});

test('CLI: train a tiny DenseNet-BC on the folder, evaluate it, predict with the folder\'s class names', () => {
  const run = join(tmp.dir, 'run');
  const r = runCli(['train', TINY_MODEL, ...TINY_ARGS, '--dataset', 'image-folder', '--data', flat, '--input', '32x32', '--val-fraction', '0.2',
    '--batch', '4', '--max-steps', '3', '--epochs', '1', '--log-every', '1', '--mean', '0.5,0.5,0.5', '--std', '0.25,0.25,0.25', '--out', run]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^eval val at step 3 \(epoch 0\.75\): loss \d+\.\d+ top1 \d+\.\d+% top5 100\.00% \(3 images, \S+\)$/m);
  const { state } = readCheckpointState(run);
  assert.deepEqual(state.data.classNames, ['blue', 'green', 'red']);
  assert.deepEqual(state.model.inputShape, [32, 32, 3]);
  assert.deepEqual(state.data.folder, { inputShape: [32, 32], valFraction: 0.2, augmentation: 'cifar' });
  assert.equal(state.data.evalSplit, 'val');
  assert.deepEqual(state.data.normalization, { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
  const evaluated = runCli(['eval', TINY_MODEL, '--weights', run, '--dataset', 'image-folder', '--json']);
  assert.equal(evaluated.status, 0, evaluated.stderr);
  const out = JSON.parse(evaluated.stdout);
  assert.deepEqual([out.split, out.count], ['val', 3]);
  const predicted = runCli(['predict', TINY_MODEL, join(flat, 'red', 'img0.png'), '--weights', join(run, 'last'), '--top', '3', '--json']);
  assert.equal(predicted.status, 0, predicted.stderr);
  const names = JSON.parse(predicted.stdout).top.map((t: { name: string }) => t.name).sort();
  assert.deepEqual(names, ['blue', 'green', 'red']);
});

test('zoo.load: normalization sets the card\'s preprocessing, and must fit the input channels', async () => {
  const weights = join(tmp.dir, 'run', 'last', 'model.json');
  const options = { ...TINY_SPEC_OPTIONS, inputShape: [32, 32, 3] as [number, number, number], numClasses: 3, weights };
  const model = await zoo.load(TINY_MODEL, { ...options, normalization: { mean: [0.1, 0.2, 0.3], std: [0.4, 0.5, 0.6] } });
  assert.deepEqual([model.card.preprocessing.mean, model.card.preprocessing.std], [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]);
  model.dispose();
  await assert.rejects(zoo.load(TINY_MODEL, { ...options, normalization: { mean: [0.5], std: [0.5] } }), /normalization needs 3 means and 3 stds/);
});

test('CLI: bad flags and bad files are one clear error line', () => {
  const base = ['train', TINY_MODEL, ...TINY_ARGS, '--dataset', 'image-folder', '--input', '32x32', '--max-steps', '1', '--batch', '4', '--out', join(tmp.dir, 'bad-run')];
  const cases: Array<[string[], RegExp]> = [
    [[...base, '--data', join(tmp.dir, 'corrupt')], /link\.png: links to .* outside/],
    [[...base, '--data', flat, '--palette', 'p.json'], /--palette and --ignore-index apply to --dataset segmentation-folder/],
    [[...base, '--data', flat, '--mean', '0.5,0.5', '--std', '0.2,0.2'], /--mean and --std need 3 values each/],
    [[...base, '--data', join(tmp.dir, 'nowhere')], /nowhere: no such directory; expected DIR\/<class>/],
  ];
  for (const [args, pattern] of cases) {
    const r = runCli(args);
    assert.notEqual(r.status, 0, args.join(' '));
    const lines = stderrErrorLines(r.stderr);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], pattern);
  }
});
