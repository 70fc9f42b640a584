// Segmentation folders (DIR/images + DIR/masks, same stems): colour masks through a palette file,
// class-id masks, the ignore index, the class frequencies reported on opening, clear errors, and
// training + eval of a small FC-DenseNet through the CLI.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDataset, readPaletteFile, SegmentationFolder } from '../src/data';
import { readCheckpointState } from '../src/train/checkpoint';
import { labelPng, rgbPng, tempDir } from './data-fixtures';
import { runCli, stderrErrorLines } from './train-fixtures';

const tmp = tempDir('segmentation-folder');
after(() => tmp.cleanup());

const RAW = { mean: [0, 0, 0], std: [1 / 255, 1 / 255, 1 / 255] };
const PALETTE = [
  { color: [0, 0, 0], id: 0, name: 'background' },
  { color: '#ff0000', id: 1, name: 'disc' },
  { color: [0, 255, 0], id: 2, name: 'bar' },
  { color: [255, 255, 255], id: 11, name: 'void' },
];
const COLORS: Array<[number, number, number]> = [[0, 0, 0], [255, 0, 0], [0, 255, 0]];
const VOID: [number, number, number] = [255, 255, 255];

/** Label of pixel (y, x) of sample i: a disc, a bar, a void border row, background elsewhere. */
function label(i: number, y: number, x: number, size: number): number {
  if (y === 0) return 11;
  if ((y - size / 2) ** 2 + (x - (8 + i * 3)) ** 2 < 36) return 1;
  if (x >= size - 10 && x < size - 4) return 2;
  return 0;
}

function writeFolder(dir: string, count: number, size: number, split?: string): void {
  const sub = (kind: string) => (split ? join(dir, kind, split) : join(dir, kind));
  mkdirSync(sub('images'), { recursive: true });
  mkdirSync(sub('masks'), { recursive: true });
  for (let i = 0; i < count; i++) {
    const l = (y: number, x: number) => label(i, y, x, size);
    writeFileSync(join(sub('images'), `s${i}.png`), rgbPng(size, size, (y, x) => [40 + 150 * Number(l(y, x) === 1), 40 + 150 * Number(l(y, x) === 2), (x * 4) % 256]));
    writeFileSync(join(sub('masks'), `s${i}.png`), rgbPng(size, size, (y, x) => (l(y, x) === 11 ? VOID : COLORS[l(y, x)])));
  }
}

const dir = join(tmp.dir, 'shapes');
writeFolder(dir, 4, 32, 'train');
writeFolder(dir, 2, 32, 'test');
const paletteFile = join(tmp.dir, 'palette.json');
writeFileSync(paletteFile, JSON.stringify(PALETTE));

test('palette masks: classes and colours from the palette file, void ignored, frequencies reported once', async () => {
  const notes: string[] = [];
  const ds = openDataset('segmentation-folder', { dir, normalization: RAW, folder: { palette: readPaletteFile(paletteFile), ignoreIndex: 11 }, note: (l) => notes.push(l) }) as SegmentationFolder;
  assert.deepEqual(ds.classNames, ['background', 'disc', 'bar']);
  assert.deepEqual(ds.palette, COLORS);
  assert.deepEqual([ds.numClasses, ds.ignoreLabel, ds.imageShape], [3, 11, [32, 32, 3]]);
  assert.deepEqual(ds.splits, ['train', 'test']);
  const expected = [0, 0, 0, 0];
  for (let i = 0; i < 4; i++) for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) { const l = label(i, y, x, 32); expected[l === 11 ? 3 : l]++; }
  assert.deepEqual(ds.pixelCounts.get('train'), expected);
  assert.equal(notes.length, 1);
  assert.match(notes[0], /shapes: 3 classes, train 4, test 2 images of 32x32; pixels of train: background \d+\.\d%, disc \d+\.\d%, bar \d+\.\d%; ignored \(11\) 3\.1%$/);
  const [batch] = await (async () => { const out = []; for await (const b of ds.batches('test', { batchSize: 2 })) out.push(b); return out; })();
  assert.deepEqual(batch.shape, [2, 32, 32, 3]);
  for (const [y, x] of [[0, 5], [16, 11], [16, 24], [20, 2]]) {
    assert.equal(batch.labels[32 * 32 + y * 32 + x], label(1, y, x, 32), `pixel ${y},${x}`);
  }
  assert.equal(Math.round(batch.images[(16 * 32 + 11) * 3]), 190);
});

test('grey masks hold class ids; the class count is the largest id seen + 1', () => {
  const grey = join(tmp.dir, 'grey');
  mkdirSync(join(grey, 'images'), { recursive: true });
  mkdirSync(join(grey, 'masks'), { recursive: true });
  for (let i = 0; i < 5; i++) {
    writeFileSync(join(grey, 'images', `p${i}.png`), rgbPng(8, 6, () => [i, i, i]));
    writeFileSync(join(grey, 'masks', `p${i}.png`), labelPng(8, 6, (y, x) => (y === 0 ? 255 : (x + i) % 4)));
  }
  const ds = new SegmentationFolder({ dir: grey, ignoreIndex: 255, valFraction: 0.2 });
  assert.deepEqual([ds.numClasses, ds.classNames[3], ds.size('train'), ds.size('val')], [4, 'class 3', 4, 1]);
  assert.equal(ds.pixelCounts.get('train')![4], 4 * 8);
  // Class-id masks read as colours: the first grey level the palette lacks is named.
  assert.throws(() => new SegmentationFolder({ dir: grey, ignoreIndex: 11, palette: readPaletteFile(paletteFile) }), /p0\.png: colour \(1, 1, 1\) at pixel \(1, 1\) is not in the palette/);
});

test('bad folders, masks and palettes: one error that names the file and what was expected', () => {
  const bad = join(tmp.dir, 'bad');
  writeFolder(bad, 2, 16);
  writeFileSync(join(bad, 'images', 'extra.jpg'), rgbPng(16, 16, () => [0, 0, 0]));
  assert.throws(() => new SegmentationFolder({ dir: bad }), /images[/\\]extra\.jpg: has no mask; expected .*masks[/\\]extra\.png/);
  const sized = join(tmp.dir, 'sized');
  writeFolder(sized, 2, 16);
  writeFileSync(join(sized, 'masks', 's1.png'), labelPng(8, 16, () => 0));
  assert.throws(() => new SegmentationFolder({ dir: sized, ignoreIndex: 11, palette: readPaletteFile(paletteFile) }), /s1\.png: is 8x16 but its image .*s1\.png is 16x16; expected the same size/);
  const pal = join(tmp.dir, 'bad-palette.json');
  writeFileSync(pal, JSON.stringify([{ color: [1, 2], id: 0, name: 'a' }]));
  assert.throws(() => readPaletteFile(pal), /bad-palette\.json: entry 0: color \[1,2\]; expected \[r, g, b\]/);
  writeFileSync(pal, JSON.stringify([{ color: [1, 2, 3], id: 1, name: 'a' }]));
  assert.throws(() => new SegmentationFolder({ dir, palette: readPaletteFile(pal) }), /palette: class ids must be 0\.\.n-1 apart from the ignore index; missing 0/);
  assert.throws(() => openDataset('segmentation-folder', { dir, folder: { inputShape: [32, 32] } }), /takes no inputShape option/);
});

test('CLI: a small FC-DenseNet trains on the palette folder and evaluates; the checkpoint keeps palette and void', () => {
  const run = join(tmp.dir, 'run');
  const args = ['train', 'fc-densenet56', '--block-layers', '1,1,1,1,1', '--growth', '2', '--stem-channels', '4', '--dataset', 'segmentation-folder',
    '--data', dir, '--palette', paletteFile, '--ignore-index', '11', '--batch', '2', '--max-steps', '2', '--epochs', '1', '--log-every', '1', '--out', run];
  const r = runCli(args);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /shapes: 3 classes, train 4, test 2 images of 32x32; pixels of train: background/);
  assert.match(r.stdout, /^eval test at step 2 \(epoch 1\): .*meanIoU/m);
  const { state } = readCheckpointState(run);
  assert.deepEqual(state.data.classNames, ['background', 'disc', 'bar']);
  assert.equal(state.data.ignoreLabel, 11);
  assert.deepEqual(state.data.palette, COLORS);
  const evaluated = runCli(['eval', 'fc-densenet56', '--weights', run, '--dataset', 'segmentation-folder', '--json']);
  assert.equal(evaluated.status, 0, evaluated.stderr);
  const out = JSON.parse(evaluated.stdout);
  assert.equal(out.count, 2);
  assert.ok(out.metrics.meanIoU >= 0 && out.metrics.meanIoU <= 1);
  const wrong = runCli([...args.slice(0, -2), '--out', join(tmp.dir, 'run2'), '--input', '32x32']);
  assert.notEqual(wrong.status, 0);
  assert.match(stderrErrorLines(wrong.stderr)[0], /--input and --decoder apply to --dataset image-folder/);
});
