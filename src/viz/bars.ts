// A grouped bar chart drawn as a raster (PNG), for reports and READMEs that
// want a picture rather than an interactive Plotly chart. Bars start at zero;
// the y axis gets round tick values; one colour per series.
import { MUTED, TEXT, Rgb } from './color';
import { Raster, fitText, measureText } from './raster';
import {
  LABEL_SIZE, PAD, defaultFormat, drawLegend, drawTitle, drawYAxis, legendLayout, requireAxisTitles,
  roundAxis, seriesColors, squareKey, titleHeight, titleWidth, yAxisGutter, yPixel,
} from './chart-frame';

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

const VALUE_SIZE = 10;

function checkInputs(categories: readonly string[], series: readonly BarSeries[], o: BarChartImageOptions): void {
  if (categories.length === 0) throw new Error('barChartImage: no categories given');
  if (series.length === 0) throw new Error('barChartImage: no series given');
  requireAxisTitles(o, 'barChartImage');
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
 * per series, coloured with SERIES_COLORS (or options.colors) in series order.
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
  // Bars start at zero; the top is the first round tick at or above the largest value.
  const axis = roundAxis(0, maxValue > 0 ? maxValue : 1);

  const widestValue = Math.max(...series.flatMap((s) => Array.from(s.values, (v) => measureText(fmt(v), VALUE_SIZE))));
  const barW = options.barWidth ?? Math.max(nSeries <= 2 ? 28 : 18, valueLabels ? Math.ceil(widestValue) + 6 : 0);
  // Values are written only where they fit over their bar with a gap, so neighbours never run together.
  const showValues = valueLabels && widestValue <= barW - 4;
  const colorOf = seriesColors(options.colors, 'barChartImage');
  const groupGap = Math.max(14, barW);
  const groupW = nSeries * barW;
  const plotW = categories.length * groupW + (categories.length + 1) * groupGap;
  const plotH = options.plotHeight ?? 260;

  const left = yAxisGutter(axis, fmt);
  const plotTop = PAD + titleHeight(options.title) + (showValues ? VALUE_SIZE + 4 : 6);
  const box = { left, top: plotTop, width: plotW, height: plotH };
  const catLabelH = LABEL_SIZE + 8;
  const xTitleH = LABEL_SIZE + 10;
  const legend = legendLayout(series.map((s) => s.name), Math.max(plotW, 320));
  const width = Math.ceil(
    Math.max(left + plotW + PAD, titleWidth(options.title), left + legend.width + PAD),
  );
  const height = plotTop + plotH + catLabelH + xTitleH + legend.height + PAD;
  const r = new Raster(width, height);

  drawTitle(r, options.title);
  drawYAxis(r, box, axis, fmt, options.yTitle);

  categories.forEach((cat, c) => {
    const gx = left + groupGap + c * (groupW + groupGap);
    series.forEach((s, k) => {
      const v = s.values[c];
      const x = gx + k * barW;
      const y = yPixel(box, axis, v);
      r.fillRect(x + 1, y, barW - 2, plotTop + plotH - y, colorOf(k));
      if (showValues) r.text(fmt(v), x + barW / 2, y - 3, { size: VALUE_SIZE, align: 'center', color: TEXT });
    });
    r.text(fitText(cat, groupW + groupGap - 4, LABEL_SIZE), gx + groupW / 2, plotTop + plotH + LABEL_SIZE + 4, {
      size: LABEL_SIZE,
      align: 'center',
    });
  });
  r.text(options.xTitle, left + plotW / 2, plotTop + plotH + catLabelH + LABEL_SIZE + 2, { size: LABEL_SIZE, align: 'center', color: MUTED });
  drawLegend(r, legend, left, plotTop + plotH + catLabelH + xTitleH, squareKey(colorOf));
  return r;
}
