// The IDX format of MNIST and Fashion-MNIST: a 4-byte magic number (0, 0, element type,
// number of dimensions), the dimensions as big-endian uint32, then the elements. Files may
// be gzipped; gzip is recognised by its magic bytes, not by the file name.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { dataError } from './errors';

/** Largest IDX data unpacked from gzip (Fashion-MNIST's training images are 47 MB): a corrupt or crafted gzip stops here. */
export const MAX_IDX_BYTES = 2 ** 30;

/** Element type code of unsigned bytes, the only one these datasets use. */
const UBYTE = 0x08;

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

function hex32(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0');
}

function isGzip(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

/** Parses an IDX byte array that must have `ndims` dimensions; `file` names it in errors. */
export function decodeIdx(bytes: Uint8Array, file: string, ndims: number): IdxArray {
  let buf = bytes;
  if (isGzip(buf)) {
    try {
      buf = gunzipSync(buf, { maxOutputLength: MAX_IDX_BYTES });
    } catch (err) {
      throw dataError(file, `gzip data is truncated or corrupt (${(err as Error).message})`);
    }
  }
  const expectedMagic = (UBYTE << 8) | ndims;
  if (buf.length < 4) {
    throw dataError(file, `is ${buf.length} bytes long, too short for an IDX header (magic number ${hex32(expectedMagic)})`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const magic = view.getUint32(0);
  if (magic !== expectedMagic) {
    throw dataError(file, `wrong magic number ${hex32(magic)}; expected ${hex32(expectedMagic)} (IDX, unsigned bytes, ${ndims} dimension${ndims > 1 ? 's' : ''})`);
  }
  const headerBytes = 4 + 4 * ndims;
  if (buf.length < headerBytes) {
    throw dataError(file, `is truncated: its header needs ${headerBytes} bytes, the file has ${buf.length}`);
  }
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i));
  const expectedBytes = dims.reduce((a, b) => a * b, 1);
  const found = buf.length - headerBytes;
  if (found < expectedBytes) {
    throw dataError(file, `is truncated: header says ${dims.join('x')} = ${expectedBytes} bytes of data, the file has ${found}`);
  }
  if (found > expectedBytes) {
    throw dataError(file, `has ${found - expectedBytes} bytes more than its header (${dims.join('x')}) says`);
  }
  return { dims, data: buf.subarray(headerBytes) };
}

export function readIdxFile(file: string, ndims: number): IdxArray {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw dataError(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return decodeIdx(bytes, file, ndims);
}

/** Writes an IDX file's bytes (tests and fixtures make small real-format files with it). */
export function encodeIdx(dims: number[], data: Uint8Array): Uint8Array {
  const header = new DataView(new ArrayBuffer(4 + 4 * dims.length));
  header.setUint32(0, (UBYTE << 8) | dims.length);
  dims.forEach((d, i) => header.setUint32(4 + 4 * i, d));
  const out = new Uint8Array(header.byteLength + data.length);
  out.set(new Uint8Array(header.buffer), 0);
  out.set(data, header.byteLength);
  return out;
}
