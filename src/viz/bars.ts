// A grouped bar chart drawn as a raster (PNG), for reports and READMEs that
// want a picture rather than an interactive Plotly chart. Bars start at zero;
// the y axis gets round tick values; one colour per series.
import { MUTED, TEXT, Rgb, hexToRgb } from './color';
import { Raster, fitText, measureText } from './raster';

/**
 * Series colours in Plotly's default order (its 'colorway'), so that a PNG
 * and a Plotly chart of the same series show each one in the same colour.
 */
export const SERIES_COLORS: readonly Rgb[] = [
  '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf',
].map(hexToRgb);

export interface BarSeries {
  name: string;
  values: ArrayLike<number>;
}

export interface BarChartImageOptions {
  title?: string;
  xTitle: string;
  yTitle: string;
  /** Height of the plotting area in pixels (default 260). */
  plotHeight?: number;
  /** Width of one bar in pixels (default: wide enough for its value label, at least 18). */
  barWidth?: number;
  /** Colour per series, cycled (default SERIES_COLORS). */
  colors?: readonly Rgb[];
  /** Write each value above its bar when it fits (default true). */
  valueLabels?: boolean;
  /** How values are written on the bars and the y axis (default: thousands separators, up to 2 decimals). */
  format?: (v: number) => string;
}

const PAD = 12;
const TITLE_SIZE = 15;
const LABEL_SIZE = 12;
const VALUE_SIZE = 10;
const GRID: Rgb = [229, 229, 229];
const AXIS: Rgb = [120, 120, 120];

function defaultFormat(v: number): string {
  return v.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

/** Round tick step (1, 2 or 5 times a power of ten) giving about `target` ticks up to `max`. */
export function niceStep(max: number, target = 5): number {
  if (!(max > 0)) return 1;
  const raw = max / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const m = raw / pow;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * pow;
}

function checkInputs(categories: readonly string[], series: readonly BarSeries[], o: BarChartImageOptions): void {
  if (categories.length === 0) throw new Error('barChartImage: no categories given');
  if (series.length === 0) throw new Error('barChartImage: no series given');
  for (const k of ['xTitle', 'yTitle'] as const) {
    if (typeof o[k] !== 'string' || o[k].trim() === '') throw new Error(`barChartImage: ${k} is required so that the axes say what they show`);
  }
  for (const s of series) {
    if (s.values.length !== categories.length) {
      throw new Error(`barChartImage: series '${s.name}' has ${s.values.length} values for ${categories.length} categories`);
    }
    for (let i = 0; i < s.values.length; i++) {
      const v = s.values[i];
      if (!Number.isFinite(v) || v < 0) {
        throw new Error(`barChartImage: series '${s.name}' value for '${categories[i]}' is ${v}; bars need finite values >= 0`);
      }
    }
  }
}

/**
 * Grouped vertical bars: one group per category, one bar (and legend entry)
 * per series, coloured with the fixed class palette in series order.
 */
export function barChartImage(
  categories: readonly string[],
  series: readonly BarSeries[],
  options: BarChartImageOptions,
): Raster {
  checkInputs(categories, series, options);
  const fmt = options.format ?? defaultFormat;
  const valueLabels = options.valueLabels ?? true;
  const nSeries = series.length;
  const maxValue = Math.max(...series.flatMap((s) => Array.from(s.values)));
  const step = niceStep(maxValue);
  const top = Math.max(step, Math.ceil(maxValue / step) * step);
  const ticks = Array.from({ length: Math.round(top / step) + 1 }, (_, i) => i * step);

  const widestValue = Math.max(...series.flatMap((s) => Array.from(s.values, (v) => measureText(fmt(v), VALUE_SIZE))));
  const barW = options.barWidth ?? Math.max(nSeries <= 2 ? 28 : 18, valueLabels ? Math.ceil(widestValue) + 6 : 0);
  // Values are written only where they fit over their bar with a gap, so neighbours never run together.
  const showValues = valueLabels && widestValue <= barW - 4;
  const colors = options.colors ?? SERIES_COLORS;
  if (colors.length === 0) throw new Error('barChartImage: colors is empty');
  const colorOf = (k: number) => colors[k % colors.length];
  const groupGap = Math.max(14, barW);
  const groupW = nSeries * barW;
  const plotW = categories.length * groupW + (categories.length + 1) * groupGap;
  const plotH = options.plotHeight ?? 260;

  const tickW = Math.max(...ticks.map((t) => measureText(fmt(t), LABEL_SIZE)));
  const left = PAD + LABEL_SIZE + 8 + Math.ceil(tickW) + 8;
  const plotTop = PAD + (options.title ? TITLE_SIZE + 14 : 0) + (showValues ? VALUE_SIZE + 4 : 6);
  const catLabelH = LABEL_SIZE + 8;
  const xTitleH = LABEL_SIZE + 10;
  const legend = legendLayout(series.map((s) => s.name), Math.max(plotW, 320));
  const width = Math.ceil(
    Math.max(left + plotW + PAD, options.title ? measureText(options.title, TITLE_SIZE) + 2 * PAD : 0, left + legend.width + PAD),
  );
  const height = plotTop + plotH + catLabelH + xTitleH + legend.height + PAD;
  const r = new Raster(width, height);

  if (options.title) r.text(fitText(options.title, width - 2 * PAD, TITLE_SIZE), PAD, PAD + TITLE_SIZE, { size: TITLE_SIZE });
  const yOf = (v: number) => plotTop + plotH - (v / top) * plotH;
  for (const t of ticks) {
    const y = Math.round(yOf(t));
    r.fillRect(left, y, plotW, 1, t === 0 ? AXIS : GRID);
    r.text(fmt(t), left - 6, y + 4, { size: LABEL_SIZE, align: 'right', color: MUTED });
  }
  r.fillRect(left, plotTop, 1, plotH + 1, AXIS);
  r.text(fitText(options.yTitle, plotH, LABEL_SIZE), PAD + LABEL_SIZE, plotTop + plotH / 2, {
    size: LABEL_SIZE,
    align: 'center',
    vertical: true,
  });

  categories.forEach((cat, c) => {
    const gx = left + groupGap + c * (groupW + groupGap);
    series.forEach((s, k) => {
      const v = s.values[c];
      const x = gx + k * barW;
      const y = yOf(v);
      r.fillRect(x + 1, y, barW - 2, plotTop + plotH - y, colorOf(k));
      if (showValues) r.text(fmt(v), x + barW / 2, y - 3, { size: VALUE_SIZE, align: 'center', color: TEXT });
    });
    r.text(fitText(cat, groupW + groupGap - 4, LABEL_SIZE), gx + groupW / 2, plotTop + plotH + LABEL_SIZE + 4, {
      size: LABEL_SIZE,
      align: 'center',
    });
  });
  r.text(options.xTitle, left + plotW / 2, plotTop + plotH + catLabelH + LABEL_SIZE + 2, { size: LABEL_SIZE, align: 'center', color: MUTED });
  drawLegend(r, legend, left, plotTop + plotH + catLabelH + xTitleH, colorOf);
  return r;
}

interface Legend {
  items: { name: string; x: number; y: number }[];
  width: number;
  height: number;
}

const SWATCH = 12;

function legendLayout(names: readonly string[], maxWidth: number): Legend {
  if (names.length < 2) return { items: [], width: 0, height: 0 };
  const items: Legend['items'] = [];
  let x = 0;
  let y = 0;
  let width = 0;
  for (const name of names) {
    const label = fitText(name, maxWidth - SWATCH - 6, LABEL_SIZE);
    const w = SWATCH + 5 + measureText(label, LABEL_SIZE) + 16;
    if (x > 0 && x + w > maxWidth) {
      x = 0;
      y += SWATCH + 8;
    }
    items.push({ name: label, x, y });
    x += w;
    width = Math.max(width, x);
  }
  return { items, width, height: y + SWATCH + 8 };
}

function drawLegend(r: Raster, legend: Legend, x0: number, y0: number, colorOf: (k: number) => Rgb): void {
  legend.items.forEach((it, k) => {
    r.fillRect(x0 + it.x, y0 + it.y, SWATCH, SWATCH, colorOf(k));
    r.text(it.name, x0 + it.x + SWATCH + 5, y0 + it.y + SWATCH - 1, { size: LABEL_SIZE });
  });
}
