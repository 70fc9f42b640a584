import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { AddressInfo } from 'net';
import {
  encodeSafetensors, parseSafetensors, readSafetensors, writeSafetensors, SafetensorsError,
} from '../src/weights/safetensors';

const FIXTURES = path.resolve(__dirname, '../../test/fixtures');

async function tempDir(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'densenet-safetensors-'));
}

const sample = {
  'a.weight': { shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, -0, 1e-30]) },
  'b': { shape: [5], data: Float32Array.from([Infinity, -Infinity, 7, 8, 9]) },
  'empty': { shape: [0, 4], data: new Float32Array(0) },
  'scalar': { shape: [], data: Float32Array.from([42]) },
};

/** A file with a hand-written header, for corruptions the encoder would never produce. */
function rawFile(header: unknown, dataBytes: number, headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  return out;
}

test('encode then parse gives back names, shapes, values and metadata', () => {
  const bytes = encodeSafetensors(sample, { metadata: { format: 'pt', note: 'hi' } });
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(headerLen % 8, 0, 'header padded to 8 bytes');
  const f = parseSafetensors(bytes, 'mem');
  assert.deepEqual(f.names(), Object.keys(sample));
  assert.deepEqual(f.metadata, { format: 'pt', note: 'hi' });
  for (const [name, t] of Object.entries(sample)) {
    assert.deepEqual(f.shape(name), t.shape);
    assert.deepEqual(f.read(name), t.data, name);
    assert.equal(f.info(name).dtype, 'F32');
  }
  assert.throws(() => f.read('nope'), /mem: no tensor named 'nope'/);
});

test('parse works on an unaligned view of a larger buffer', () => {
  const bytes = encodeSafetensors(sample);
  const big = new Uint8Array(bytes.byteLength + 3);
  big.set(bytes, 3);
  const f = parseSafetensors(big.subarray(3), 'shifted');
  assert.deepEqual(f.read('a.weight'), sample['a.weight'].data);
});

test('writeSafetensors/readSafetensors round trip through a file, leaving no temp files', async () => {
  const dir = await tempDir();
  const file = path.join(dir, 'sub', 'w.safetensors');
  await writeSafetensors(file, sample, { metadata: { k: 'v' } });
  const f = await readSafetensors(file);
  assert.equal(f.source, file);
  assert.deepEqual(f.read('b'), sample.b.data);
  assert.deepEqual(await fsp.readdir(path.dirname(file)), ['w.safetensors']);
  const viaUrl = await readSafetensors('file://' + file);
  assert.deepEqual(viaUrl.read('a.weight'), sample['a.weight'].data);
});

test('F64, F16, BF16 and I64 decode to what PyTorch reads back (fixture written by torch)', async () => {
  const f = await readSafetensors(path.join(FIXTURES, 'dtypes.safetensors'));
  for (const [name, dtype] of [['f32', 'F32'], ['f64', 'F64'], ['f16', 'F16'], ['bf16', 'BF16'], ['i64', 'I64']]) {
    assert.equal(f.info(name).dtype, dtype);
    assert.deepEqual(f.shape(name), f.shape(`${name}_as_f32`));
    assert.deepEqual(f.read(name), f.read(`${name}_as_f32`), `${dtype} decodes bit-exactly like torch's .float()`);
  }
  const f16 = f.read('f16');
  assert.ok(f16.some((v) => v !== 0 && Math.abs(v) < 6.2e-5), 'the F16 fixture holds a subnormal');
  assert.ok(f16.includes(Infinity) && f16.includes(-Infinity));
});

test('too short to hold the header length: says truncated and names the file', () => {
  assert.throws(() => parseSafetensors(new Uint8Array(5), 'x.safetensors'),
    (e: Error) => e instanceof SafetensorsError && /x\.safetensors: truncated safetensors file: 5 bytes/.test(e.message));
});

test('header longer than the file: truncated', () => {
  const bytes = encodeSafetensors(sample);
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.throws(() => parseSafetensors(bytes.subarray(0, 8 + headerLen - 10), 'cut.safetensors'),
    /cut\.safetensors: truncated safetensors file: header says \d+ header bytes but only \d+ follow/);
});

test('data cut short: the tensor whose offsets run past the end is named', () => {
  const bytes = encodeSafetensors(sample);
  assert.throws(() => parseSafetensors(bytes.subarray(0, bytes.byteLength - 4), 'short.safetensors'),
    /short\.safetensors: tensor 'scalar': data_offsets \[\d+,\d+\] run past the end of the data .*truncated or corrupt/);
});

test('an absurd header length (not a safetensors file) is refused', () => {
  const bytes = new Uint8Array(64);
  new DataView(bytes.buffer).setBigUint64(0, 0x7fffffffffffn, true);
  assert.throws(() => parseSafetensors(bytes, 'junk.bin'), /junk\.bin: not a safetensors file: header length/);
});

test('bad header JSON', () => {
  assert.throws(() => parseSafetensors(rawFile(null, 0, '{"a": {"dtype": "F32", '), 'bad.safetensors'),
    /bad\.safetensors: corrupt safetensors header: not valid JSON/);
  assert.throws(() => parseSafetensors(rawFile([1, 2], 0), 'arr.safetensors'), /arr\.safetensors: corrupt safetensors header: expected a JSON object/);
});

test('malformed entries: shape, offsets, size mismatch, overlap, metadata', () => {
  const cases: Array<[unknown, number, RegExp]> = [
    [{ t: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, 8, /tensor 't': shape \[2,-1\] is not a list of non-negative integers/],
    [{ t: { dtype: 'F32', shape: [2], data_offsets: [8] } }, 8, /tensor 't': data_offsets \[8\] is not a pair/],
    [{ t: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, 8, /data_offsets \[8,0\] are reversed/],
    [{ t: { dtype: 'F32', shape: [2], data_offsets: [0, 16] } }, 8, /tensor 't': data_offsets \[0,16\] run past the end of the data \(8 bytes\)/],
    [{ t: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8, /shape \[3\] of F32 needs 12 bytes but data_offsets \[0,8\] hold 8/],
    [{ t: { shape: [2], data_offsets: [0, 8] } }, 8, /tensor 't': missing dtype/],
    [{ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12, /tensors 'a' and 'b' overlap/],
    [{ __metadata__: { n: 3 } }, 0, /__metadata__\.n is not a string/],
  ];
  for (const [header, dataBytes, re] of cases) {
    assert.throws(() => parseSafetensors(rawFile(header, dataBytes), 'm.safetensors'),
      (e: Error) => e.message.startsWith('m.safetensors: ') && re.test(e.message), JSON.stringify(header));
  }
});

test('unsupported dtype: the file opens, reading that tensor names file, tensor and dtype', () => {
  const f = parseSafetensors(rawFile({
    ok: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
    odd: { dtype: 'C64', shape: [1], data_offsets: [4, 12] },
  }, 12), 'dt.safetensors');
  assert.deepEqual(f.read('ok'), new Float32Array(1));
  assert.throws(() => f.read('odd'), /dt\.safetensors: tensor 'odd' has dtype C64, which cannot be read; supported: F32, F16, BF16, F64/);
});

test('a missing file and a directory are named in the error', async () => {
  const dir = await tempDir();
  await assert.rejects(readSafetensors(path.join(dir, 'none.safetensors')), /none\.safetensors: cannot read safetensors file: no such file/);
  await assert.rejects(readSafetensors(dir), /is a directory/);
});

test('reads from an http URL; HTTP errors name the URL and status', async () => {
  const bytes = encodeSafetensors(sample);
  const server = http.createServer((req, res) => {
    if (req.url === '/w.safetensors') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(Buffer.from(bytes));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const f = await readSafetensors(`${base}/w.safetensors`);
    assert.equal(f.source, `${base}/w.safetensors`);
    assert.deepEqual(f.read('b'), sample.b.data);
    await assert.rejects(readSafetensors(`${base}/missing.safetensors`), new RegExp(`${base}/missing\\.safetensors: download failed: HTTP 404`));
  } finally {
    server.close();
  }
});

test('encode refuses inconsistent tensors and the reserved name', () => {
  assert.throws(() => encodeSafetensors({ t: { shape: [3], data: new Float32Array(2) } }), /tensor 't' has 2 values but shape \[3\] needs 3/);
  assert.throws(() => encodeSafetensors({ __metadata__: { shape: [1], data: new Float32Array(1) } }), /reserved/);
});
