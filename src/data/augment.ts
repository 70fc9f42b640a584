// Preprocessing and augmentation on raw 8-bit HWC samples.
//
// Every geometric transform here is one "window": inside the view (y < viewH, x < viewW) the
// output pixel (y, x) comes from the source pixel (y + offY, x' + offX), where x' = viewW-1-x
// when flipped, else x; pixels outside the source or the view get a fill value. Padding + random crop (classification), random
// crop (segmentation) and padding to a multiple all are windows, and images and labels go
// through the same window, so they cannot drift apart.
import type { Normalization } from './dataset';
import type { Rng } from '../random/prng';

export interface Window {
  outH: number;
  outW: number;
  /** The part of the output that shows the source; the rest (bottom/right) is padding. */
  viewH: number;
  viewW: number;
  /** Source row of output row 0 (negative = padding above). */
  offY: number;
  /** Source column of output column 0 before the flip (negative = padding on the left). */
  offX: number;
  flip: boolean;
}

/** Per-channel lookup table byte -> normalised float, laid out [channel * 256 + value]. */
export function normalizationTable(norm: Normalization, channels: number): Float32Array {
  const { mean, std } = norm;
  if (mean.length !== channels || std.length !== channels) {
    throw new Error(`normalisation needs ${channels} means and stds, got ${mean.length} and ${std.length}`);
  }
  const table = new Float32Array(channels * 256);
  for (let c = 0; c < channels; c++) {
    if (!(std[c] > 0)) throw new Error(`normalisation std of channel ${c} must be > 0, got ${std[c]}`);
    for (let v = 0; v < 256; v++) table[c * 256 + v] = (v / 255 - mean[c]) / std[c];
  }
  return table;
}

export function identityWindow(h: number, w: number): Window {
  return { outH: h, outW: w, viewH: h, viewW: w, offY: 0, offX: 0, flip: false };
}

/**
 * Classification augmentation: zero-pad by `pad` pixels, take a random crop of the original
 * size, flip horizontally with probability 1/2. Draws three numbers from rng, in that order.
 */
export function randomPadCropFlip(h: number, w: number, pad: number, rng: Rng): Window {
  const offY = rng.int(2 * pad + 1) - pad;
  const offX = rng.int(2 * pad + 1) - pad;
  return { outH: h, outW: w, viewH: h, viewW: w, offY, offX, flip: rng.bool() };
}

/** Segmentation augmentation: a random cropH x cropW crop inside the image, flipped with probability 1/2. */
export function randomCropFlip(h: number, w: number, cropH: number, cropW: number, rng: Rng): Window {
  if (cropH > h || cropW > w) {
    throw new Error(`crop ${cropH}x${cropW} is larger than the ${h}x${w} images`);
  }
  const offY = rng.int(h - cropH + 1);
  const offX = rng.int(w - cropW + 1);
  return { outH: cropH, outW: cropW, viewH: cropH, viewW: cropW, offY, offX, flip: rng.bool() };
}

/**
 * Writes one window of an HWC uint8 image, normalised, into dst at dstOffset.
 * Padding is black: raw value 0, normalised like any other pixel.
 */
export function windowImage(
  src: Uint8Array, srcOffset: number, h: number, w: number, c: number,
  win: Window, table: Float32Array, dst: Float32Array, dstOffset: number,
): void {
  let o = dstOffset;
  for (let y = 0; y < win.outH; y++) {
    for (let x = 0; x < win.outW; x++) {
      const p = sourcePixel(win, h, w, y, x);
      let s = srcOffset + p * c;
      for (let ch = 0; ch < c; ch++) dst[o++] = table[ch * 256 + (p < 0 ? 0 : src[s++])];
    }
  }
}

/** Same window over an HW label map; pixels outside the source get `fill` (the ignore label). */
export function windowLabels(
  src: ArrayLike<number>, srcOffset: number, h: number, w: number,
  win: Window, fill: number, dst: Int32Array, dstOffset: number,
): void {
  let o = dstOffset;
  for (let y = 0; y < win.outH; y++) {
    for (let x = 0; x < win.outW; x++) {
      const p = sourcePixel(win, h, w, y, x);
      dst[o++] = p < 0 ? fill : src[srcOffset + p];
    }
  }
}

/** Index (row-major, in pixels) of the source pixel shown at output (y, x), or -1 for padding. */
function sourcePixel(win: Window, h: number, w: number, y: number, x: number): number {
  const sy = y + win.offY;
  const sx = (win.flip ? win.viewW - 1 - x : x) + win.offX;
  return y < win.viewH && x < win.viewW && sy >= 0 && sy < h && sx >= 0 && sx < w ? sy * w + sx : -1;
}
