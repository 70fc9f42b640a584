// Fuzzing the parsers of files the project does not control: seeded truncations and random byte
// flips of a valid safetensors file, PyTorch checkpoint, model.json (with its shard), IDX file (raw and gzipped), CIFAR
// batch, PNG and JPEG. Each case must either parse or fail with the project's own one-line error
// naming the file (no TypeError, RangeError or stack from deep inside), none may hang, and the
// process's peak memory may not grow past a bound: no header can make a parser allocate at will.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import * as jpeg from 'jpeg-js';
import { init } from '../src/backend';
import { Rng } from '../src/random/prng';
import { encodeSafetensors, parseSafetensors } from '../src/weights/safetensors';
import { parsePytorchCheckpoint } from '../src/weights/pytorch';
import { readTfjsWeights } from '../src/weights/tfjs-weights';
import { sha256Hex } from '../src/weights/digest';
import { decodeIdx, encodeIdx } from '../src/data/idx';
import { Cifar } from '../src/data/cifar';
import { decodeLabelPng, readPngHeader } from '../src/data/camvid';
import { decodeImageFile, jpegHeader } from '../src/data/image-file';
import { cifarRecord, concatBytes, rgbPng, tempDir } from './data-fixtures';
import { FIXTURES } from './helpers';

const SEED = 0x5eed;
const CASES = 2500;
/** Growth of the process's peak resident memory allowed over one parser's cases. */
const MAX_PEAK_GROWTH_MB = 256;

const tmp = tempDir('fuzz');
before(async () => {
  await init('cpu', { log: null });
});
after(() => tmp.cleanup());

/** A truncation (half the cases) or 1-4 random bytes overwritten, half of them in the first 64 bytes where headers are. */
function mutate(base: Uint8Array, rng: Rng): Uint8Array {
  if (rng.int(2) === 0) return base.slice(0, rng.int(base.length));
  const out = base.slice();
  const flips = 1 + rng.int(4);
  for (let i = 0; i < flips; i++) {
    const at = rng.int(2) === 0 ? rng.int(Math.min(64, out.length)) : rng.int(out.length);
    out[at] = rng.int(256);
  }
  return out;
}

const peakMb = () => process.resourceUsage().maxRSS / 1024;

/**
 * Runs `parse` on CASES mutations of `base`: every failure must be an Error of the project's
 * (not a TypeError or RangeError), of one line, starting with `source` (the file it names).
 */
async function fuzz(base: Uint8Array, source: string, parse: (bytes: Uint8Array) => unknown, seed: number): Promise<{ parsed: number; refused: number }> {
  const rng = Rng.from(SEED, seed);
  const startPeak = peakMb();
  const counts = { parsed: 0, refused: 0 };
  for (let i = 0; i < CASES; i++) {
    const bytes = mutate(base, rng);
    try {
      await parse(bytes);
      counts.parsed++;
    } catch (err) {
      const e = err as Error;
      const where = `case ${i} (${bytes.length} bytes)`;
      assert.ok(e instanceof Error && !(e instanceof TypeError) && !(e instanceof RangeError), `${where}: ${e?.name}: ${e?.message}`);
      assert.ok(!e.message.includes('\n'), `${where}: a one-line error, got ${JSON.stringify(e.message)}`);
      assert.ok(e.message.startsWith(source), `${where}: the error names ${source}: ${e.message}`);
      counts.refused++;
    }
  }
  assert.ok(peakMb() - startPeak < MAX_PEAK_GROWTH_MB, `peak memory grew ${(peakMb() - startPeak).toFixed(0)} MB`);
  assert.ok(counts.refused > CASES / 4, `most mutations are refused (${counts.refused} of ${CASES})`);
  return counts;
}

test('safetensors: truncations and byte flips give SafetensorsErrors naming the file', async () => {
  const base = encodeSafetensors({ a: { shape: [2, 3], data: new Float32Array(6).fill(1.5) }, b: { shape: [4], data: new Float32Array(4) } }, { metadata: { format: 'pt' } });
  await fuzz(base, 'fuzz.safetensors', (bytes) => {
    const file = parseSafetensors(bytes, 'fuzz.safetensors');
    for (const n of file.names()) file.read(n);
  }, 1);
});

test('PyTorch checkpoints (zip + pickle): errors naming the file', async () => {
  const base = new Uint8Array(fs.readFileSync(path.join(FIXTURES, 'pytorch', 'tensors.pth')));
  await fuzz(base, 'fuzz.pth', (bytes) => {
    const file = parsePytorchCheckpoint(bytes, 'fuzz.pth');
    for (const n of file.names()) file.read(n);
  }, 9);
});

test('model.json: mutated weight lists fail naming the file (or its shard), before reading past their size', async () => {
  const dir = path.join(tmp.dir, 'model');
  fs.mkdirSync(dir);
  const weights = [{ name: 'a', shape: [2, 2], dtype: 'float32' }, { name: 'b', shape: [3], dtype: 'float32' }];
  const data = new Float32Array([1, 2, 3, 4, 5, 6, 7]);
  const shard = `weights.${sha256Hex(new Uint8Array(data.buffer)).slice(0, 12)}.bin`; // named by its content, as checkpoints are
  fs.writeFileSync(path.join(dir, shard), Buffer.from(data.buffer));
  const base = Buffer.from(JSON.stringify({ modelTopology: { class_name: 'Model' }, format: 'layers-model', weightsManifest: [{ paths: [shard], weights }] }));
  const modelJson = path.join(dir, 'model.json');
  await fuzz(base, dir, async (bytes) => {
    fs.writeFileSync(modelJson, bytes);
    const source = await readTfjsWeights(modelJson);
    for (const n of source.names()) source.read(n);
  }, 2);
});

test('IDX, raw and gzipped: DataErrors naming the file', async () => {
  const pixels = Uint8Array.from({ length: 10 * 4 * 4 }, (_, i) => i % 251);
  const raw = encodeIdx([10, 4, 4], pixels);
  await fuzz(raw, 'fuzz.idx', (bytes) => decodeIdx(bytes, 'fuzz.idx', 3), 3);
  await fuzz(gzipSync(raw), 'fuzz.idx.gz', (bytes) => decodeIdx(bytes, 'fuzz.idx.gz', 3), 4);
});

test('CIFAR-10 batches: DataErrors naming the file', { timeout: 60_000 }, async () => {
  const dir = path.join(tmp.dir, 'cifar');
  fs.mkdirSync(dir);
  for (let f = 1; f <= 5; f++) fs.writeFileSync(path.join(dir, `data_batch_${f}.bin`), cifarRecord([f], () => f));
  const base = concatBytes([0, 1, 2].map((t) => cifarRecord([t], (y, x, c) => (t + y + x + c) % 256)));
  const testFile = path.join(dir, 'test_batch.bin');
  await fuzz(base, dir, async (bytes) => {
    fs.writeFileSync(testFile, bytes);
    for await (const b of new Cifar('cifar10', { dir }).batches('test', { batchSize: 3 })) void b;
  }, 5);
});

test('PNG: header reader and decoder give DataErrors naming the file', async () => {
  const base = rgbPng(8, 6, (y, x) => [y * 30, x * 20, 100]);
  await fuzz(base, 'fuzz.png', (bytes) => {
    readPngHeader('fuzz.png', bytes);
    decodeLabelPng('fuzz.png', bytes);
  }, 6);
});

test('PNG and JPEG files through decodeImageFile (headers checked before decoding)', async () => {
  const rgba = new Uint8Array(16 * 12 * 4).fill(128);
  const jpegBytes = jpeg.encode({ data: rgba, width: 16, height: 12 }, 80).data;
  assert.deepEqual(jpegHeader(jpegBytes), { width: 16, height: 12 });
  const file = path.join(tmp.dir, 'fuzz-image');
  for (const [base, seed] of [[rgbPng(8, 6, () => [1, 2, 3]), 7], [new Uint8Array(jpegBytes), 8]] as const) {
    await fuzz(base, file, (bytes) => {
      fs.writeFileSync(file, bytes);
      decodeImageFile(file);
    }, seed);
  }
});
