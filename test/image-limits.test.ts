// Images whose header claims more pixels than MAX_IMAGE_PIXELS are refused before decoding (a
// 157-byte PNG can claim 20000x20000), and segmentation of a large image runs on a downsized copy.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { init } from '../src/backend';
import * as zoo from '../src/zoo';
import { jpegHeader, MAX_IMAGE_PIXELS, pngHeader } from '../src/data/image-file';
import { segment, segmentationInputSize } from '../src/inference/predict';
import type { ModelForShape } from '../src/inference/model-for-shape';
import { tempDir } from './data-fixtures';

const tmp = tempDir('image-limits');

function chunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(8 + data.length + 4);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(zlib.crc32(body), 8 + data.length);
  return out;
}

/** A valid PNG claiming width x height RGB pixels: a comment and a few compressed zeros, 157 bytes as in the issue. */
function claimingPng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('tEXt', Buffer.from(`Comment\0${'x'.repeat(68)}`, 'latin1')), chunk('IDAT', zlib.deflateSync(Buffer.alloc(64))), chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The start of a baseline JPEG whose frame header claims width x height. */
function claimingJpeg(width: number, height: number): Buffer {
  const app0 = Buffer.from([0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]);
  const sof = Buffer.from([0xff, 0xc0, 0x00, 0x11, 0x08, height >> 8, height & 0xff, width >> 8, width & 0xff, 0x03,
    0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01]);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app0, sof, Buffer.from([0xff, 0xd9])]);
}

before(async () => {
  await init('cpu', { log: null });
});

test('header sizes are read without decoding', () => {
  assert.deepEqual(pngHeader(claimingPng(20000, 20000)), { width: 20000, height: 20000 });
  assert.deepEqual(jpegHeader(claimingJpeg(640, 480)), { width: 640, height: 480 });
  assert.equal(pngHeader(Buffer.from('not a png')), undefined);
});

/** Runs `code` in a fresh node (the compiled tests' folder as cwd) and returns its output and peak RSS in MB. */
function inChild(code: string): { stdout: string; peakMb: number } {
  const r = spawnSync(process.execPath, ['-e', `${code}; process.stdout.write('\\nrss ' + process.resourceUsage().maxRSS)`], {
    cwd: path.join(__dirname, '..'), encoding: 'utf8', timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return { stdout: r.stdout, peakMb: Number(/rss (\d+)/.exec(r.stdout)![1]) / 1024 };
}

test('the 157-byte PNG claiming 20000x20000 is refused before decoding, in under 200 MB', () => {
  const file = path.join(tmp.dir, 'giant.png');
  fs.writeFileSync(file, claimingPng(20000, 20000));
  assert.equal(fs.statSync(file).size, 157);
  const camvidLabel = path.join(tmp.dir, 'giant-label.png');
  fs.copyFileSync(file, camvidLabel);
  const { stdout, peakMb } = inChild(`
    const { decodeImageFile } = require('./src/data/image-file');
    const { decodeLabelPng } = require('./src/data/camvid');
    const fs = require('fs');
    for (const run of [() => decodeImageFile(${JSON.stringify(file)}), () => decodeLabelPng(${JSON.stringify(camvidLabel)}, fs.readFileSync(${JSON.stringify(camvidLabel)}))]) {
      try { run(); console.log('decoded'); } catch (e) { console.log(e.message); }
    }`);
  assert.match(stdout, new RegExp(`giant\\.png: PNG image not decoded: its header gives 20000x20000 pixels \\(400 megapixels\\); the limit is ${MAX_IMAGE_PIXELS / 1e6} megapixels`));
  assert.match(stdout, /giant-label\.png: is not decoded: its header gives 20000x20000 pixels/);
  assert.doesNotMatch(stdout, /decoded\n/);
  assert.ok(peakMb < 200, `peak RSS ${peakMb.toFixed(0)} MB`);
});

test('a JPEG whose frame header claims 20000x20000 is refused before decoding', () => {
  const file = path.join(tmp.dir, 'giant.jpg');
  fs.writeFileSync(file, claimingJpeg(20000, 20000));
  const { stdout } = inChild(`try { require('./src/data/image-file').decodeImageFile(${JSON.stringify(file)}); } catch (e) { console.log(e.message); }`);
  assert.match(stdout, /giant\.jpg: JPEG image not decoded: its header gives 20000x20000 pixels/);
});

test('segmentation of an image larger than maxPixels runs downsized and gives labels at the full size', async () => {
  const model = zoo.create('fc-densenet56', { blockLayers: [1, 1, 1, 1, 1], growthRate: 2, stemChannels: 4, numClasses: 3, inputShape: [64, 64, 3], seed: 1 });
  const models = zoo.modelsBySize(model);
  const seen: number[][] = [];
  const spy = { get: (shape: [number, number, number]) => (seen.push(shape), models.get(shape)) } as unknown as ModelForShape;
  try {
    const image = { width: 130, height: 100, rgba: new Uint8Array(130 * 100 * 4).fill(90) };
    assert.deepEqual(segmentationInputSize(100, 130, 64 * 64), [56, 72]);
    const seg = await segment(spy, model.card, image, { maxPixels: 64 * 64 });
    assert.deepEqual(seen, [[56, 72, 3]], 'the network saw the 56x72 copy (FC-DenseNet takes any size from 32)');
    assert.equal(seg.height, 100);
    assert.equal(seg.width, 130);
    assert.equal(seg.labels.length, 100 * 130);
    assert.ok(Math.abs(seg.fractions.reduce((a, b) => a + b, 0) - 1) < 1e-9);
  } finally {
    models.dispose();
    model.dispose();
  }
});
