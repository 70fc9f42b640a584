// Reading and writing the safetensors format (https://github.com/huggingface/safetensors):
//   8 bytes   little-endian u64 N, the header length
//   N bytes   UTF-8 JSON: { "<tensor>": { "dtype", "shape", "data_offsets": [begin, end] }, "__metadata__"?: {..} }
//   rest      the tensor bytes; offsets are relative to the end of the header.
// The header is validated when a file is opened; tensors are decoded to Float32Array on demand,
// so a file holding a tensor of an exotic dtype (that nobody reads) still opens.
import { promises as fsp } from 'fs';
import * as path from 'path';
import { fileURLToPath } from 'url';
import { writeFileAtomic } from './atomic';
import { jsonErrorReason } from '../json-error';
import { DownloadError, downloadBytes } from './download';
import { checkDigest, ExpectedDigest, sha256Hex } from './digest';

/** Bytes per element of each dtype we know the size of (decodable or not). */
export const DTYPE_BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2,
  I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
  F8_E4M3: 1, F8_E5M2: 1,
};

/** Dtypes `SafetensorsFile.read` converts to float32. Integer types are exact up to 2^24. */
export const DECODABLE_DTYPES = ['F32', 'F16', 'BF16', 'F64', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'] as const;

/** Largest header we accept (the reference implementation's limit is 100 MB). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface TensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  /** Byte range inside the data section (after the header). */
  begin: number;
  end: number;
}

/** A float tensor in row-major order, as written or decoded. */
export interface FloatTensor {
  shape: number[];
  data: Float32Array;
}

export class SafetensorsError extends Error {
  constructor(readonly source: string, detail: string) {
    super(`${source}: ${detail}`);
    this.name = 'SafetensorsError';
  }
}

export function numElements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** An opened safetensors file: a validated header over the raw bytes. */
export class SafetensorsFile {
  private readonly infos: Map<string, TensorInfo>;

  constructor(
    /** File name or URL, used in every error message. */
    readonly source: string,
    private readonly bytes: Uint8Array,
    private readonly dataStart: number,
    infos: TensorInfo[],
    readonly metadata: Record<string, string>,
  ) {
    this.infos = new Map(infos.map((t) => [t.name, t]));
  }

  /** Tensor names in file order (by data offset). */
  names(): string[] {
    return [...this.infos.values()].sort((a, b) => a.begin - b.begin).map((t) => t.name);
  }

  has(name: string): boolean {
    return this.infos.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.infos.get(name);
    if (!t) throw new SafetensorsError(this.source, `no tensor named '${name}'`);
    return t;
  }

  shape(name: string): number[] {
    return [...this.info(name).shape];
  }

  /** Decodes one tensor to float32. */
  read(name: string): Float32Array {
    const t = this.info(name);
    const start = this.dataStart + t.begin;
    const raw = this.bytes.subarray(start, this.dataStart + t.end);
    const decoded = decodeToFloat32(t.dtype, raw, numElements(t.shape));
    if (!decoded) {
      throw new SafetensorsError(
        this.source,
        `tensor '${name}' has dtype ${t.dtype}, which cannot be read; supported: ${DECODABLE_DTYPES.join(', ')}`,
      );
    }
    return decoded;
  }

  tensor(name: string): FloatTensor {
    return { shape: this.shape(name), data: this.read(name) };
  }
}

// ---------------------------------------------------------------------------------------------
// Parsing

function readHeaderLength(bytes: Uint8Array, source: string): number {
  if (bytes.byteLength < 8) {
    throw new SafetensorsError(source, `truncated safetensors file: ${bytes.byteLength} bytes, shorter than the 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(source, `not a safetensors file: header length ${n} is larger than ${MAX_HEADER_BYTES} bytes`);
  }
  const len = Number(n);
  if (8 + len > bytes.byteLength) {
    throw new SafetensorsError(
      source,
      `truncated safetensors file: header says ${len} header bytes but only ${bytes.byteLength - 8} follow`,
    );
  }
  return len;
}

function parseHeaderJson(bytes: Uint8Array, len: number, source: string): Record<string, unknown> {
  const text = new TextDecoder('utf-8').decode(bytes.subarray(8, 8 + len));
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    throw new SafetensorsError(source, `corrupt safetensors header: not valid JSON (${jsonErrorReason(err)})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new SafetensorsError(source, 'corrupt safetensors header: expected a JSON object');
  }
  return header as Record<string, unknown>;
}

function isNonNegInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function parseEntry(name: string, entry: unknown, dataBytes: number, source: string): TensorInfo {
  const bad = (what: string) => new SafetensorsError(source, `corrupt safetensors header: tensor '${name}': ${what}`);
  if (entry === null || typeof entry !== 'object') throw bad('entry is not an object');
  const e = entry as Record<string, unknown>;
  if (typeof e.dtype !== 'string') throw bad('missing dtype');
  if (!Array.isArray(e.shape) || !e.shape.every(isNonNegInt)) throw bad(`shape ${JSON.stringify(e.shape)} is not a list of non-negative integers`);
  const off = e.data_offsets;
  if (!Array.isArray(off) || off.length !== 2 || !off.every(isNonNegInt)) {
    throw bad(`data_offsets ${JSON.stringify(off)} is not a pair of non-negative integers`);
  }
  const [begin, end] = off as number[];
  if (begin > end) throw bad(`data_offsets [${begin},${end}] are reversed`);
  if (end > dataBytes) {
    throw new SafetensorsError(
      source,
      `tensor '${name}': data_offsets [${begin},${end}] run past the end of the data (${dataBytes} bytes); the file is truncated or corrupt`,
    );
  }
  const shape = e.shape as number[];
  const width = DTYPE_BYTES[e.dtype];
  if (width !== undefined && (end - begin) !== numElements(shape) * width) {
    throw bad(`shape ${formatShape(shape)} of ${e.dtype} needs ${numElements(shape) * width} bytes but data_offsets [${begin},${end}] hold ${end - begin}`);
  }
  return { name, dtype: e.dtype, shape, begin, end };
}

function parseMetadata(value: unknown, source: string): Record<string, string> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new SafetensorsError(source, 'corrupt safetensors header: __metadata__ is not an object');
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new SafetensorsError(source, `corrupt safetensors header: __metadata__.${k} is not a string`);
    out[k] = v;
  }
  return out;
}

/** Tensors may not overlap (the format forbids it, and overlap means corruption). */
function checkNoOverlap(infos: TensorInfo[], source: string): void {
  const sorted = [...infos].sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].begin < sorted[i - 1].end) {
      throw new SafetensorsError(
        source,
        `corrupt safetensors header: tensors '${sorted[i - 1].name}' and '${sorted[i].name}' overlap`,
      );
    }
  }
}

/** Validates the header of `bytes` and returns a file whose tensors decode on demand. */
export function parseSafetensors(bytes: Uint8Array, source = '<buffer>'): SafetensorsFile {
  const len = readHeaderLength(bytes, source);
  const header = parseHeaderJson(bytes, len, source);
  const dataStart = 8 + len;
  const dataBytes = bytes.byteLength - dataStart;
  const infos: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    infos.push(parseEntry(name, entry, dataBytes, source));
  }
  checkNoOverlap(infos, source);
  const metadata = parseMetadata(header.__metadata__, source);
  return new SafetensorsFile(source, bytes, dataStart, infos, metadata);
}

function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/** Opens a safetensors file from a local path, a file:// URL or an http(s) URL; refused unless it hashes to `expected`, when given. */
export async function readSafetensors(pathOrUrl: string, expected?: ExpectedDigest): Promise<SafetensorsFile> {
  if (isUrl(pathOrUrl)) return parseChecked(await fetchBytes(pathOrUrl), pathOrUrl, expected);
  const file = pathOrUrl.startsWith('file://') ? fileURLToPath(pathOrUrl) : pathOrUrl;
  let bytes: Buffer;
  try {
    bytes = await fsp.readFile(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'is a directory, expected a .safetensors file' : e.message;
    throw new SafetensorsError(file, `cannot read safetensors file: ${why}`);
  }
  return parseChecked(bytes, file, expected);
}

/** Parses the very bytes whose hash was checked (read once: the file cannot change in between). */
function parseChecked(bytes: Uint8Array, source: string, expected?: ExpectedDigest): SafetensorsFile {
  if (expected) checkDigest(source, 'the file', sha256Hex(bytes), expected);
  return parseSafetensors(bytes, source);
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  try {
    return await downloadBytes(url);
  } catch (err) {
    if (err instanceof DownloadError) throw new SafetensorsError(url, `download failed: ${err.detail}`);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero or subnormal
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Converts `count` elements of `dtype` to float32; undefined when the dtype is not decodable. */
export function decodeToFloat32(dtype: string, raw: Uint8Array, count: number): Float32Array | undefined {
  // `raw` may sit at any byte offset, so read through a DataView (or copy for the F32 fast path).
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Float32Array(count);
  switch (dtype) {
    case 'F32':
      if (LITTLE_ENDIAN_HOST) {
        new Uint8Array(out.buffer).set(raw);
      } else {
        for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      }
      return out;
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
      return out;
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
      return out;
    case 'BF16': {
      // bfloat16 is the top half of a float32.
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      return out;
    }
    case 'I64':
      for (let i = 0; i < count; i++) out[i] = Number(view.getBigInt64(8 * i, true));
      return out;
    case 'I32':
      for (let i = 0; i < count; i++) out[i] = view.getInt32(4 * i, true);
      return out;
    case 'I16':
      for (let i = 0; i < count; i++) out[i] = view.getInt16(2 * i, true);
      return out;
    case 'I8':
      for (let i = 0; i < count; i++) out[i] = view.getInt8(i);
      return out;
    case 'U8':
    case 'BOOL':
      for (let i = 0; i < count; i++) out[i] = raw[i];
      return out;
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

export interface EncodeOptions {
  metadata?: Record<string, string>;
}

/**
 * Encodes float32 tensors (in the given order) as a safetensors file. Tensors are stored as F32;
 * the header is padded with spaces to a multiple of 8 bytes so the data section stays aligned.
 */
export function encodeSafetensors(
  tensors: Record<string, FloatTensor> | Map<string, FloatTensor>,
  options: EncodeOptions = {},
): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (options.metadata && Object.keys(options.metadata).length > 0) header.__metadata__ = options.metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new Error(`safetensors: '__metadata__' is reserved and cannot name a tensor`);
    if (t.data.length !== numElements(t.shape)) {
      throw new Error(`safetensors: tensor '${name}' has ${t.data.length} values but shape ${formatShape(t.shape)} needs ${numElements(t.shape)}`);
    }
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + 4 * t.data.length] };
    offset += 4 * t.data.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded !== json.byteLength) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  const view = new DataView(out.buffer);
  let pos = 8 + padded;
  for (const [, t] of entries) {
    if (LITTLE_ENDIAN_HOST) {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
      pos += t.data.byteLength;
    } else {
      for (let i = 0; i < t.data.length; i++, pos += 4) view.setFloat32(pos, t.data[i], true);
    }
  }
  return out;
}

/** Writes a safetensors file atomically (a temporary file in the same folder, then a rename). */
export async function writeSafetensors(
  file: string,
  tensors: Record<string, FloatTensor> | Map<string, FloatTensor>,
  options: EncodeOptions = {},
): Promise<void> {
  await fsp.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  await writeFileAtomic(file, encodeSafetensors(tensors, options));
}
