// An RGBA picture built on a pureimage Bitmap. Rectangles and images are
// written straight into the bitmap's byte buffer (pureimage's per-pixel path
// compositing is far slower); only text goes through pureimage, which is the
// part that needs a font rasteriser.
import * as PImage from 'pureimage';
import { PNG } from 'pngjs';
import { Rgb, WHITE, TEXT } from './color';
import { ensureFont } from './font';

export type TextAlign = 'left' | 'center' | 'right';

export interface TextOptions {
  /** Font size in pixels (default 13). */
  size?: number;
  color?: Rgb;
  /** Horizontal anchor at x (default 'left'). */
  align?: TextAlign;
  /** Rotate by -90 degrees (text reads bottom to top); x, y then name the anchor on the baseline. */
  vertical?: boolean;
}

/** Pixel layout of a plain RGB or RGBA byte array handed to Raster.blit. */
export interface PixelBlock {
  /** Row-major bytes, `channels` per pixel. */
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3 | 4;
}

export class Raster {
  readonly bitmap: PImage.Bitmap;

  constructor(readonly width: number, readonly height: number, background: Rgb = WHITE) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
      throw new Error(`Raster: width and height must be positive integers, got ${width}x${height}`);
    }
    // pureimage allocates the buffer; 16k x 16k is already 1 GiB.
    if (width * height > 64e6) {
      throw new Error(`Raster: ${width}x${height} is too large to draw (over 64 megapixels)`);
    }
    this.bitmap = PImage.make(width, height);
    this.fillRect(0, 0, width, height, background);
  }

  /** The RGBA bytes, row-major. */
  get data(): Uint8Array {
    return this.bitmap.data;
  }

  /** Opaque rectangle, clipped to the raster. */
  fillRect(x: number, y: number, w: number, h: number, color: Rgb): void {
    this.blendRect(x, y, w, h, color, 1);
  }

  /** Rectangle mixed over what is there with opacity `alpha` in [0, 1]. */
  blendRect(x: number, y: number, w: number, h: number, color: Rgb, alpha: number): void {
    const x0 = Math.max(0, Math.round(x));
    const y0 = Math.max(0, Math.round(y));
    const x1 = Math.min(this.width, Math.round(x + w));
    const y1 = Math.min(this.height, Math.round(y + h));
    const d = this.bitmap.data;
    const a = Math.max(0, Math.min(1, alpha));
    for (let yy = y0; yy < y1; yy++) {
      let o = (yy * this.width + x0) * 4;
      for (let xx = x0; xx < x1; xx++, o += 4) {
        if (a === 1) {
          d[o] = color[0];
          d[o + 1] = color[1];
          d[o + 2] = color[2];
        } else {
          d[o] = Math.round(d[o] * (1 - a) + color[0] * a);
          d[o + 1] = Math.round(d[o + 1] * (1 - a) + color[1] * a);
          d[o + 2] = Math.round(d[o + 2] * (1 - a) + color[2] * a);
        }
        d[o + 3] = 255;
      }
    }
  }

  /** One-pixel outline just inside the rectangle. */
  strokeRect(x: number, y: number, w: number, h: number, color: Rgb): void {
    this.fillRect(x, y, w, 1, color);
    this.fillRect(x, y + h - 1, w, 1, color);
    this.fillRect(x, y, 1, h, color);
    this.fillRect(x + w - 1, y, 1, h, color);
  }

  /**
   * Copies `src` scaled by nearest neighbour to the rectangle (x, y, outW, outH),
   * clipped to the raster. Alpha in an RGBA source is composited over white-or-
   * whatever is underneath.
   */
  blit(src: PixelBlock, x: number, y: number, outW = src.width, outH = src.height): void {
    const d = this.bitmap.data;
    const s = src.data;
    const ch = src.channels;
    if (s.length < src.width * src.height * ch) {
      throw new Error(`Raster.blit: source has ${s.length} bytes, expected ${src.width}x${src.height}x${ch}`);
    }
    const x0 = Math.round(x);
    const y0 = Math.round(y);
    for (let oy = 0; oy < outH; oy++) {
      const ty = y0 + oy;
      if (ty < 0 || ty >= this.height) continue;
      const sy = Math.min(src.height - 1, Math.floor((oy * src.height) / outH));
      for (let ox = 0; ox < outW; ox++) {
        const tx = x0 + ox;
        if (tx < 0 || tx >= this.width) continue;
        const sx = Math.min(src.width - 1, Math.floor((ox * src.width) / outW));
        const si = (sy * src.width + sx) * ch;
        const o = (ty * this.width + tx) * 4;
        if (ch === 4 && s[si + 3] < 255) {
          const a = s[si + 3] / 255;
          d[o] = Math.round(d[o] * (1 - a) + s[si] * a);
          d[o + 1] = Math.round(d[o + 1] * (1 - a) + s[si + 1] * a);
          d[o + 2] = Math.round(d[o + 2] * (1 - a) + s[si + 2] * a);
        } else {
          d[o] = s[si];
          d[o + 1] = s[si + 1];
          d[o + 2] = s[si + 2];
        }
        d[o + 3] = 255;
      }
    }
  }

  /** Pastes another raster at (x, y), unscaled. */
  paste(src: Raster, x: number, y: number): void {
    this.blit({ data: src.data, width: src.width, height: src.height, channels: 4 }, x, y);
  }

  /** The RGB colour at (x, y). */
  pixel(x: number, y: number): Rgb {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) {
      throw new Error(`Raster.pixel: (${x}, ${y}) is outside the ${this.width}x${this.height} raster`);
    }
    const o = (y * this.width + x) * 4;
    const d = this.bitmap.data;
    return [d[o], d[o + 1], d[o + 2]];
  }

  /**
   * Draws text with its baseline at y and returns its width in pixels.
   * Glyphs are rasterised once per size by pureimage and then stamped from a
   * cache, which keeps label-heavy figures (confusion matrices, tile indices)
   * fast; kerning is ignored.
   */
  text(str: string, x: number, y: number, options: TextOptions = {}): number {
    const size = options.size ?? 13;
    const color = options.color ?? TEXT;
    const width = measureText(str, size);
    const shift = options.align === 'center' ? -width / 2 : options.align === 'right' ? -width : 0;
    let pen = shift;
    for (const ch of str) {
      const g = glyph(ch, size);
      if (options.vertical) this.stampVertical(g, x, y, pen, color);
      else this.stamp(g, Math.round(x + pen) - g.originX, Math.round(y) - g.baseline, color);
      pen += g.advance;
    }
    return width;
  }

  /** Width of `str` at `size` pixels. */
  measure(str: string, size = 13): number {
    return measureText(str, size);
  }

  /** `str` shortened with an ellipsis so that it fits in `maxWidth` pixels. */
  fit(str: string, maxWidth: number, size = 13): string {
    return fitText(str, maxWidth, size);
  }

  private stamp(g: Glyph, left: number, top: number, color: Rgb): void {
    for (let gy = 0; gy < g.height; gy++) {
      const ty = top + gy;
      if (ty < 0 || ty >= this.height) continue;
      for (let gx = 0; gx < g.width; gx++) {
        const cov = g.mask[gy * g.width + gx];
        const tx = left + gx;
        if (cov === 0 || tx < 0 || tx >= this.width) continue;
        this.mix((ty * this.width + tx) * 4, color, cov / 255);
      }
    }
  }

  // Rotated -90 degrees about the anchor (x, y): the pen runs upwards.
  private stampVertical(g: Glyph, x: number, y: number, pen: number, color: Rgb): void {
    const penPx = Math.round(pen);
    for (let gy = 0; gy < g.height; gy++) {
      for (let gx = 0; gx < g.width; gx++) {
        const cov = g.mask[gy * g.width + gx];
        if (cov === 0) continue;
        // Glyph coordinates relative to its origin on the baseline.
        const u = gx - g.originX + penPx;
        const v = gy - g.baseline;
        const tx = Math.round(x) + v;
        const ty = Math.round(y) - u;
        if (tx < 0 || ty < 0 || tx >= this.width || ty >= this.height) continue;
        this.mix((ty * this.width + tx) * 4, color, cov / 255);
      }
    }
  }

  private mix(o: number, color: Rgb, a: number): void {
    const d = this.bitmap.data;
    d[o] = Math.round(d[o] * (1 - a) + color[0] * a);
    d[o + 1] = Math.round(d[o + 1] * (1 - a) + color[1] * a);
    d[o + 2] = Math.round(d[o + 2] * (1 - a) + color[2] * a);
    d[o + 3] = 255;
  }

  /** PNG file bytes. */
  toPng(): Buffer {
    const png = new PNG({ width: this.width, height: this.height });
    const d = this.bitmap.data;
    png.data = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    return PNG.sync.write(png);
  }

}

/** A glyph's coverage mask (0..255), rasterised once per size. */
interface Glyph {
  mask: Uint8Array;
  width: number;
  height: number;
  /** Pixel column of the pen origin inside the mask. */
  originX: number;
  /** Pixel row of the baseline inside the mask. */
  baseline: number;
  advance: number;
}

const glyphs = new Map<string, Glyph>();
let measureBitmap: PImage.Bitmap | undefined;

function fontContext(bitmap: PImage.Bitmap, size: number): PImage.Context {
  const family = ensureFont();
  const ctx = bitmap.getContext('2d');
  ctx.font = `${size}px ${family}`;
  return ctx;
}

function glyph(ch: string, size: number): Glyph {
  const key = `${size}:${ch}`;
  const cached = glyphs.get(key);
  if (cached) return cached;
  measureBitmap ??= PImage.make(1, 1);
  const advance = fontContext(measureBitmap, size).measureText(ch).width;
  // Room for overhangs on both sides and for descenders.
  const pad = Math.ceil(size * 0.3) + 1;
  const width = Math.ceil(advance) + 2 * pad;
  const height = Math.ceil(size * 1.35) + 2;
  const baseline = Math.ceil(size * 1.02) + 1;
  const bmp = PImage.make(width, height);
  const ctx = fontContext(bmp, size);
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, width, height);
  ctx.fillStyle = '#000000';
  if (ch.trim() !== '') ctx.fillText(ch, pad, baseline);
  const mask = new Uint8Array(width * height);
  for (let i = 0; i < mask.length; i++) mask[i] = 255 - bmp.data[i * 4];
  const g = { mask, width, height, originX: pad, baseline, advance };
  glyphs.set(key, g);
  return g;
}

/** Width of `str` in pixels at `size` (sum of glyph advances). */
export function measureText(str: string, size = 13): number {
  let w = 0;
  for (const ch of str) w += glyph(ch, size).advance;
  return w;
}

/** `str` shortened with an ellipsis so that it fits in `maxWidth` pixels. */
export function fitText(str: string, maxWidth: number, size = 13): string {
  if (measureText(str, size) <= maxWidth) return str;
  const chars = Array.from(str);
  let lo = 0;
  let hi = chars.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (measureText(chars.slice(0, mid).join('') + '…', size) <= maxWidth) lo = mid;
    else hi = mid - 1;
  }
  return lo === 0 ? '' : chars.slice(0, lo).join('') + '…';
}
