// The parts of a raster chart that do not depend on what is plotted: round
// axis ticks, the y axis with its grid, the title and the legend. Shared by
// the bar chart (bars.ts) and the line chart (lines.ts) so both look alike.
import { MUTED, Rgb, hexToRgb } from './color';
import { Raster, fitText, measureText } from './raster';

/**
 * Series colours in Plotly's default order (its 'colorway'), so that a PNG
 * and a Plotly chart of the same series show each one in the same colour.
 */
export const SERIES_COLORS: readonly Rgb[] = [
  '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf',
].map(hexToRgb);

export const PAD = 12;
export const TITLE_SIZE = 15;
export const LABEL_SIZE = 12;
export const GRID: Rgb = [229, 229, 229];
export const AXIS: Rgb = [120, 120, 120];

export function defaultFormat(v: number): string {
  return v.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

/** Round tick step (1, 2 or 5 times a power of ten) giving about `target` ticks over `span`. */
export function niceStep(span: number, target = 5): number {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const m = raw / pow;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * pow;
}

/** A linear axis from min to max with tick values at multiples of step. */
export interface Axis {
  min: number;
  max: number;
  step: number;
  ticks: number[];
}

// Multiples of a fractional step pick up float noise (0.6000000000000001);
// twelve significant digits remove it without moving any real tick.
function clean(v: number): number {
  return Number(v.toPrecision(12));
}

/** Multiples of `step` inside [min, max] (with a little tolerance for rounding). */
export function ticksBetween(min: number, max: number, step: number): number[] {
  const eps = step * 1e-9;
  const first = Math.ceil((min - eps) / step);
  const last = Math.floor((max + eps) / step);
  const ticks: number[] = [];
  for (let k = first; k <= last; k++) ticks.push(clean(k * step));
  return ticks;
}

/** Axis covering [lo, hi] whose ends are round: both are multiples of the tick step. */
export function roundAxis(lo: number, hi: number, target = 5): Axis {
  let a = lo;
  let b = hi;
  if (a === b) {
    // A flat series still needs a span; give it a band around its value.
    const half = a === 0 ? 1 : Math.abs(a) * 0.1;
    a -= half;
    b += half;
  }
  const step = niceStep(b - a, target);
  const min = clean(Math.floor(a / step + 1e-9) * step);
  const max = clean(Math.ceil(b / step - 1e-9) * step);
  return { min, max, step, ticks: ticksBetween(min, max, step) };
}

/** The plotting area, in raster pixels. */
export interface PlotBox {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Pixels left of the plot taken by the y title and the tick labels. */
export function yAxisGutter(axis: Axis, fmt: (v: number) => string): number {
  const tickW = Math.max(0, ...axis.ticks.map((t) => measureText(fmt(t), LABEL_SIZE)));
  return PAD + LABEL_SIZE + 8 + Math.ceil(tickW) + 8;
}

/** Height above the plot taken by the title (zero without one). */
export function titleHeight(title: string | undefined): number {
  return title ? TITLE_SIZE + 14 : 0;
}

/** Raster width the title needs (zero without one). */
export function titleWidth(title: string | undefined): number {
  return title ? measureText(title, TITLE_SIZE) + 2 * PAD : 0;
}

export function drawTitle(r: Raster, title: string | undefined): void {
  if (title) r.text(fitText(title, r.width - 2 * PAD, TITLE_SIZE), PAD, PAD + TITLE_SIZE, { size: TITLE_SIZE });
}

/** Row of a value on the y axis (top of the plot is axis.max). */
export function yPixel(box: PlotBox, axis: Axis, v: number): number {
  return box.top + box.height - ((v - axis.min) / (axis.max - axis.min)) * box.height;
}

/**
 * Horizontal grid lines with their tick labels, the axis lines at the left and
 * bottom of the plot, and the rotated y title.
 */
export function drawYAxis(r: Raster, box: PlotBox, axis: Axis, fmt: (v: number) => string, title: string): void {
  for (const t of axis.ticks) {
    const y = Math.round(yPixel(box, axis, t));
    r.fillRect(box.left, y, box.width, 1, GRID);
    r.text(fmt(t), box.left - 6, y + 4, { size: LABEL_SIZE, align: 'right', color: MUTED });
  }
  r.fillRect(box.left, box.top + box.height, box.width + 1, 1, AXIS);
  r.fillRect(box.left, box.top, 1, box.height + 1, AXIS);
  r.text(fitText(title, box.height, LABEL_SIZE), PAD + LABEL_SIZE, box.top + box.height / 2, {
    size: LABEL_SIZE,
    align: 'center',
    vertical: true,
  });
}

/** Checks that both axis titles are given: a chart must say what it shows. */
export function requireAxisTitles(o: { xTitle?: unknown; yTitle?: unknown }, fn: string): void {
  for (const k of ['xTitle', 'yTitle'] as const) {
    const v = o[k];
    if (typeof v !== 'string' || v.trim() === '') throw new Error(`${fn}: ${k} is required so that the axes say what they show`);
  }
}

/** Colour of series k, cycling through `colors` (default SERIES_COLORS). */
export function seriesColors(colors: readonly Rgb[] | undefined, fn: string): (k: number) => Rgb {
  const list = colors ?? SERIES_COLORS;
  if (list.length === 0) throw new Error(`${fn}: colors is empty`);
  return (k) => list[k % list.length];
}

// ---------------------------------------------------------------- legend

export interface Legend {
  items: { name: string; x: number; y: number }[];
  /** Width of each entry's key (the coloured mark before its name). */
  keyWidth: number;
  width: number;
  height: number;
}

/** Height of a legend key and of one legend row's text band. */
export const SWATCH = 12;

/**
 * Legend entries laid out in rows that wrap at maxWidth. Only drawn for two
 * or more series: with one, the axis title already says what the line is.
 */
export function legendLayout(names: readonly string[], maxWidth: number, keyWidth = SWATCH): Legend {
  if (names.length < 2) return { items: [], keyWidth, width: 0, height: 0 };
  const items: Legend['items'] = [];
  let x = 0;
  let y = 0;
  let width = 0;
  for (const name of names) {
    const label = fitText(name, maxWidth - keyWidth - 6, LABEL_SIZE);
    const w = keyWidth + 5 + measureText(label, LABEL_SIZE) + 16;
    if (x > 0 && x + w > maxWidth) {
      x = 0;
      y += SWATCH + 8;
    }
    items.push({ name: label, x, y });
    x += w;
    width = Math.max(width, x);
  }
  return { items, keyWidth, width, height: y + SWATCH + 8 };
}

/** Draws the key of entry k into the box (x, y, keyWidth, SWATCH). */
export type LegendKey = (r: Raster, k: number, x: number, y: number, width: number) => void;

/** The default key: a filled square in the series colour. */
export function squareKey(colorOf: (k: number) => Rgb): LegendKey {
  return (r, k, x, y, width) => r.fillRect(x, y, width, SWATCH, colorOf(k));
}

export function drawLegend(r: Raster, legend: Legend, x0: number, y0: number, key: LegendKey): void {
  legend.items.forEach((it, k) => {
    key(r, k, x0 + it.x, y0 + it.y, legend.keyWidth);
    r.text(it.name, x0 + it.x + legend.keyWidth + 5, y0 + it.y + SWATCH - 1, { size: LABEL_SIZE });
  });
}
