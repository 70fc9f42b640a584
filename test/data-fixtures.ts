// Small datasets in the real on-disk formats, written by the tests themselves.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { encodeIdx } from '../src/data/idx';

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `densenet-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface IdxSplit {
  /** count * h * w bytes. */
  images: Uint8Array;
  labels: number[];
  h: number;
  w: number;
}

/** Writes the four Fashion-MNIST IDX files (gzipped or not). */
export function writeFashionMnist(dir: string, splits: { train: IdxSplit; test: IdxSplit }, gzip: boolean): void {
  const prefixes = { train: 'train', test: 't10k' } as const;
  for (const split of ['train', 'test'] as const) {
    const s = splits[split];
    const n = s.labels.length;
    const images = encodeIdx([n, s.h, s.w], s.images);
    const labels = encodeIdx([n], Uint8Array.from(s.labels));
    const ext = gzip ? '.gz' : '';
    writeFileSync(join(dir, `${prefixes[split]}-images-idx3-ubyte${ext}`), gzip ? gzipSync(images) : images);
    writeFileSync(join(dir, `${prefixes[split]}-labels-idx1-ubyte${ext}`), gzip ? gzipSync(labels) : labels);
  }
}

/**
 * A split of n images whose every pixel says where it came from: pixel (y, x) of image i
 * is (i * 7 + y * w + x) % 256, so any crop, flip or shuffle can be traced back.
 */
export function tracedSplit(n: number, h: number, w: number, numClasses = 10): IdxSplit {
  const images = new Uint8Array(n * h * w);
  for (let i = 0; i < n; i++) for (let p = 0; p < h * w; p++) images[i * h * w + p] = (i * 7 + p) % 256;
  return { images, labels: Array.from({ length: n }, (_, i) => i % numClasses), h, w };
}

/** One CIFAR record: label byte(s) then the R, G, B planes of a 32x32 image. */
export function cifarRecord(labels: number[], pixel: (y: number, x: number, c: number) => number): Uint8Array {
  const rec = new Uint8Array(labels.length + 3072);
  rec.set(labels, 0);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) rec[labels.length + c * 1024 + y * 32 + x] = pixel(y, x, c);
  }
  return rec;
}

export function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function rgbPng(w: number, h: number, pixel: (y: number, x: number) => [number, number, number]): Buffer {
  const png = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [r, g, b] = pixel(y, x);
      png.data.set([r, g, b, 255], 4 * (y * w + x));
    }
  }
  return PNG.sync.write(png, { colorType: 2 });
}

/** An 8-bit grey PNG whose grey levels are the class indices. */
export function labelPng(w: number, h: number, label: (y: number, x: number) => number): Buffer {
  const png = new PNG({ width: w, height: h, colorType: 0, inputColorType: 0, bitDepth: 8, inputHasAlpha: false } as never);
  const data = Buffer.alloc(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[y * w + x] = label(y, x);
  png.data = data;
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8 });
}

export interface CamVidSample {
  name: string;
  image: Buffer;
  label: Buffer;
}

export function writeCamVid(dir: string, splits: Partial<Record<'train' | 'val' | 'test', CamVidSample[]>>): void {
  for (const [split, samples] of Object.entries(splits)) {
    mkdirSync(join(dir, split), { recursive: true });
    mkdirSync(join(dir, `${split}annot`), { recursive: true });
    for (const s of samples!) {
      writeFileSync(join(dir, split, s.name), s.image);
      writeFileSync(join(dir, `${split}annot`, s.name), s.label);
    }
  }
}

function pngChunk(type: string, data: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'ascii'), Buffer.from(data)]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** An 8-bit palette PNG (pngjs cannot write these) whose palette positions are the class indices. */
export function palettePng(w: number, h: number, palette: [number, number, number][], index: (y: number, x: number) => number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 3, 0, 0, 0], 8); // depth 8, colour type 3 (palette), no interlace
  const rows = Buffer.alloc(h * (w + 1));
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) rows[y * (w + 1) + 1 + x] = index(y, x);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('PLTE', Uint8Array.from(palette.flat())),
    pngChunk('IDAT', deflateSync(rows)),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}
