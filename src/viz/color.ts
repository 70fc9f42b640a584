// Colours for the raster figures: two sequential colour maps (for feature maps
// and confusion matrices) and a fixed categorical palette for class labels.
// A fixed palette means class 3 has the same colour in every figure of a
// notebook, so the reader learns it once.

/** An sRGB colour with 0..255 channels. */
export type Rgb = readonly [number, number, number];

export const WHITE: Rgb = [255, 255, 255];
export const BLACK: Rgb = [0, 0, 0];
export const TEXT: Rgb = [34, 34, 34];
export const MUTED: Rgb = [110, 110, 110];

/** Parses '#rrggbb'. */
export function hexToRgb(hex: string): Rgb {
  const m = /^#([0-9a-f]{6})$/i.exec(hex);
  if (!m) throw new Error(`hexToRgb: expected a colour like '#1a2b3c', got ${JSON.stringify(hex)}`);
  const v = parseInt(m[1], 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

export function rgbToCss(c: Rgb): string {
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/**
 * Categorical palette for class labels, picked by hand so that neighbouring
 * entries differ in hue and lightness. Classes past the end get colours from
 * a golden-angle walk around the hue circle (see classColor).
 */
export const CLASS_PALETTE: readonly Rgb[] = [
  '#d9453d', // red
  '#2f7fd8', // blue
  '#3aa655', // green
  '#f2a531', // orange
  '#8a4fc9', // purple
  '#2bbfc4', // cyan
  '#e25fb6', // pink
  '#8c6a3f', // brown
  '#b8c23a', // olive
  '#7a7a7a', // grey
  '#1c3f8c', // navy
  '#f7e04b', // yellow
  '#7fd39c', // mint
  '#a8201a', // dark red
  '#c9a3f0', // lavender
  '#0f6b5c', // dark teal
].map(hexToRgb);

/** The colour of class `index`: the fixed palette first, then generated hues. */
export function classColor(index: number): Rgb {
  if (!Number.isInteger(index) || index < 0) {
    throw new Error(`classColor: class index must be a non-negative integer, got ${index}`);
  }
  if (index < CLASS_PALETTE.length) return CLASS_PALETTE[index];
  const k = index - CLASS_PALETTE.length;
  const hue = (k * 137.508 + 20) % 360;
  const light = k % 2 === 0 ? 0.45 : 0.62;
  return hslToRgb(hue, 0.65, light);
}

function hslToRgb(h: number, s: number, l: number): Rgb {
  const c = (1 - Math.abs(2 * l - 1)) * s;
  const hp = h / 60;
  const x = c * (1 - Math.abs((hp % 2) - 1));
  const [r1, g1, b1] =
    hp < 1 ? [c, x, 0] : hp < 2 ? [x, c, 0] : hp < 3 ? [0, c, x] : hp < 4 ? [0, x, c] : hp < 5 ? [x, 0, c] : [c, 0, x];
  const m = l - c / 2;
  return [Math.round((r1 + m) * 255), Math.round((g1 + m) * 255), Math.round((b1 + m) * 255)];
}

/** A sequential colour map: t in [0, 1] to a colour, tabulated for speed. */
export interface Colormap {
  readonly name: string;
  /** 256 entries, RGB interleaved. */
  readonly table: Uint8Array;
}

export type ColormapName = 'viridis' | 'gray' | 'blues';

// Control points, evenly spaced in t; linear interpolation between them is
// close enough for display. viridis: perceptually uniform, readable in grey.
const CONTROL_POINTS: Record<ColormapName, string[]> = {
  viridis: ['#440154', '#472d7b', '#3b528b', '#2c728e', '#21918c', '#28ae80', '#5ec962', '#addc30', '#fde725'],
  gray: ['#000000', '#ffffff'],
  blues: ['#f7fbff', '#deebf7', '#c6dbef', '#9ecae1', '#6baed6', '#4292c6', '#2171b5', '#08519c', '#08306b'],
};

const tables = new Map<ColormapName, Colormap>();

export function colormap(name: ColormapName): Colormap {
  const cached = tables.get(name);
  if (cached) return cached;
  const points = CONTROL_POINTS[name];
  if (!points) {
    throw new Error(`colormap: unknown colour map ${JSON.stringify(name)}; use one of ${Object.keys(CONTROL_POINTS).join(', ')}`);
  }
  const rgb = points.map(hexToRgb);
  const table = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const pos = (i / 255) * (rgb.length - 1);
    const lo = Math.min(Math.floor(pos), rgb.length - 2);
    const f = pos - lo;
    for (let ch = 0; ch < 3; ch++) {
      table[i * 3 + ch] = Math.round(rgb[lo][ch] * (1 - f) + rgb[lo + 1][ch] * f);
    }
  }
  const map = { name, table };
  tables.set(name, map);
  return map;
}

/** The colour at t in [0, 1] (clamped). */
export function sampleColormap(map: Colormap, t: number): Rgb {
  const i = Math.max(0, Math.min(255, Math.round((Number.isFinite(t) ? t : 0) * 255)));
  return [map.table[i * 3], map.table[i * 3 + 1], map.table[i * 3 + 2]];
}

/** Relative luminance in [0, 1]; picks black or white text over a colour. */
export function luminance(c: Rgb): number {
  return (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255;
}
