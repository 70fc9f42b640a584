// A line chart drawn as a raster (PNG): learning curves (accuracy or loss per
// epoch), memory against depth, and the like. Both axes are numeric with round
// ticks; one colour per series in Plotly's order, so a PNG and the Plotly
// chart of the same runs agree. Lines are plain 2-pixel strokes in the exact
// series colour (no anti-aliasing), which keeps them crisp and testable.
import { MUTED, Rgb } from './color';
import { Raster, measureText } from './raster';
import {
  Axis, LABEL_SIZE, GRID, LegendKey, PAD, PlotBox, SWATCH, defaultFormat, drawLegend, drawTitle, drawYAxis, legendLayout,
  requireAxisTitles, roundAxis, seriesColors, ticksBetween, titleHeight, titleWidth, yAxisGutter, yPixel,
} from './chart-frame';

export interface LineSeries {
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  /** Draw the line dashed (e.g. training curves next to solid validation curves). */
  dash?: boolean;
}

export interface LineChartImageOptions {
  title?: string;
  xTitle: string;
  yTitle: string;
  /** Width of the plotting area in pixels (default 480). */
  plotWidth?: number;
  /** Height of the plotting area in pixels (default 260). */
  plotHeight?: number;
  /**
   * Bottom of the y axis. Default: 0 when every value is >= 0 and the smallest
   * is at most half the largest (a loss falling to 0.2, an accuracy rising
   * from 0.1: zero is a meaningful baseline and costs at most half the plot);
   * otherwise the round tick at or below the smallest value, so curves that
   * sit in a narrow band (accuracy 0.86 to 0.95) fill the plot. Mirrored for
   * all-negative data.
   */
  yMin?: number;
  /** Top of the y axis. Default: the round tick at or above the largest value. */
  yMax?: number;
  /** A dot at every point (default: when no series has more than 40 points). */
  markers?: boolean;
  /** Colour per series, cycled (default SERIES_COLORS). */
  colors?: readonly Rgb[];
  /** How y tick values are written (default: thousands separators, up to 2 decimals). */
  format?: (v: number) => string;
  /** How x tick values are written (default: thousands separators, up to 2 decimals; not `format`, which is for y). */
  xFormat?: (v: number) => string;
}

const FN = 'lineChartImage';
const MARKER_RADIUS = 3;
const MAX_AUTO_MARKERS = 40;
const DASH_ON = 6;
const DASH_PERIOD = 10;
const LEGEND_KEY_WIDTH = 24;
const MIN_PLOT = 50;

function checkInputs(series: readonly LineSeries[], o: LineChartImageOptions): void {
  if (series.length === 0) throw new Error(`${FN}: no series given`);
  requireAxisTitles(o, FN);
  for (const s of series) {
    if (s.x.length !== s.y.length) {
      throw new Error(`${FN}: series '${s.name}' has ${s.x.length} x values and ${s.y.length} y values; they must pair up`);
    }
    if (s.x.length === 0) throw new Error(`${FN}: series '${s.name}' has no points`);
    for (const axis of ['x', 'y'] as const) {
      const a = s[axis];
      for (let i = 0; i < a.length; i++) {
        if (!Number.isFinite(a[i])) throw new Error(`${FN}: series '${s.name}' ${axis}[${i}] is ${a[i]}; lines need finite numbers`);
      }
    }
  }
  for (const k of ['yMin', 'yMax'] as const) {
    const v = o[k];
    if (v !== undefined && !Number.isFinite(v)) throw new Error(`${FN}: ${k} is ${v}; it must be a finite number`);
  }
  if (o.yMin !== undefined && o.yMax !== undefined && !(o.yMin < o.yMax)) {
    throw new Error(`${FN}: yMin (${o.yMin}) must be below yMax (${o.yMax})`);
  }
  for (const k of ['plotWidth', 'plotHeight'] as const) {
    const v = o[k];
    if (v !== undefined && !(Number.isInteger(v) && v >= MIN_PLOT)) {
      throw new Error(`${FN}: ${k} is ${v}; it must be an integer of at least ${MIN_PLOT} pixels`);
    }
  }
}

function extent(series: readonly LineSeries[], axis: 'x' | 'y'): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of series) {
    const a = s[axis];
    for (let i = 0; i < a.length; i++) {
      lo = Math.min(lo, a[i]);
      hi = Math.max(hi, a[i]);
    }
  }
  return [lo, hi];
}

/** The y axis: the documented default range, with either end replaceable by yMin / yMax. */
function yAxisFor(series: readonly LineSeries[], o: LineChartImageOptions): Axis {
  let [lo, hi] = extent(series, 'y');
  if (lo >= 0 && lo <= hi / 2) lo = 0;
  else if (hi <= 0 && hi >= lo / 2) hi = 0;
  const auto = roundAxis(o.yMin ?? lo, o.yMax ?? hi);
  const min = o.yMin ?? auto.min;
  const max = o.yMax ?? auto.max;
  if (!(min < max)) {
    const which = o.yMin !== undefined ? `yMin (${min}) is not below the data's top (${max})` : `yMax (${max}) is not above the data's bottom (${min})`;
    throw new Error(`${FN}: ${which}; give both yMin and yMax or neither`);
  }
  return { min, max, step: auto.step, ticks: ticksBetween(min, max, auto.step) };
}

/**
 * The x axis spans the data's range (x need not start at 0), each end pushed
 * out to the next round tick when that costs at most a tenth of the range:
 * epochs 1..30 get 0..30, but depths 40..250 keep 40 rather than waste a
 * fifth of the plot on 0..40.
 */
function xAxisRange(lo: number, hi: number, target: number): Axis {
  const round = roundAxis(lo, hi, target);
  if (lo === hi) return round;
  const slack = (hi - lo) / 10;
  const min = lo - round.min <= slack ? round.min : lo;
  const max = round.max - hi <= slack ? round.max : hi;
  return { min, max, step: round.step, ticks: ticksBetween(min, max, round.step) };
}

/** As many x ticks as fit: fewer when the labels are wide. */
function xAxisFor(series: readonly LineSeries[], plotW: number, fmt: (v: number) => string): Axis {
  const [lo, hi] = extent(series, 'x');
  let axis = xAxisRange(lo, hi, 2);
  for (let target = Math.max(2, Math.floor(plotW / 60)); target >= 2; target--) {
    const a = xAxisRange(lo, hi, target);
    const spacing = (a.step / (a.max - a.min)) * plotW;
    const widest = Math.max(...a.ticks.map((t) => measureText(fmt(t), LABEL_SIZE)));
    if (widest + 12 <= spacing) {
      axis = a;
      break;
    }
  }
  return axis;
}

function xPixel(box: PlotBox, axis: Axis, v: number): number {
  return box.left + ((v - axis.min) / (axis.max - axis.min)) * box.width;
}

/** A 2x2 pixel dab centred on (x, y), dropped outside the clip box. */
function dab(r: Raster, x: number, y: number, color: Rgb, clip: PlotBox): void {
  const px = Math.round(x - 0.5);
  const py = Math.round(y - 0.5);
  if (px < clip.left || py < clip.top || px + 1 > clip.left + clip.width || py + 1 > clip.top + clip.height) return;
  r.fillRect(px, py, 2, 2, color);
}

/**
 * A polyline as dabs spaced at most one pixel apart. With `dash`, the pen is
 * down for DASH_ON of every DASH_PERIOD pixels of path length, counted along
 * the whole line so that dashes run on across the points.
 */
function polyline(r: Raster, pts: readonly [number, number][], color: Rgb, dash: boolean, clip: PlotBox): void {
  let travelled = 0;
  for (let i = 1; i < pts.length; i++) {
    const [x0, y0] = pts[i - 1];
    const [x1, y1] = pts[i];
    const len = Math.hypot(x1 - x0, y1 - y0);
    const steps = Math.max(1, Math.ceil(len));
    for (let j = 0; j <= steps; j++) {
      const t = j / steps;
      if (!dash || (travelled + t * len) % DASH_PERIOD < DASH_ON) dab(r, x0 + t * (x1 - x0), y0 + t * (y1 - y0), color, clip);
    }
    travelled += len;
  }
}

/** A filled disc of MARKER_RADIUS, drawn as horizontal spans. */
function marker(r: Raster, x: number, y: number, color: Rgb): void {
  const cx = Math.round(x);
  const cy = Math.round(y);
  for (let dy = -MARKER_RADIUS; dy <= MARKER_RADIUS; dy++) {
    const half = Math.floor(Math.sqrt(MARKER_RADIUS * MARKER_RADIUS + 1 - dy * dy));
    r.fillRect(cx - half, cy + dy, 2 * half + 1, 1, color);
  }
}

function inside(box: PlotBox, x: number, y: number, margin: number): boolean {
  return x >= box.left - margin && x <= box.left + box.width + margin && y >= box.top - margin && y <= box.top + box.height + margin;
}

/**
 * One line per series over numeric x and y axes with round ticks and grid
 * lines; a legend below the plot when there are two or more series.
 */
export function lineChartImage(series: readonly LineSeries[], options: LineChartImageOptions): Raster {
  checkInputs(series, options);
  const fmt = options.format ?? defaultFormat;
  const xFmt = options.xFormat ?? defaultFormat;
  const colorOf = seriesColors(options.colors, FN);
  const markers = options.markers ?? series.every((s) => s.x.length <= MAX_AUTO_MARKERS);
  const plotW = options.plotWidth ?? 480;
  const plotH = options.plotHeight ?? 260;
  const yAxis = yAxisFor(series, options);
  const xAxis = xAxisFor(series, plotW, xFmt);

  const left = yAxisGutter(yAxis, fmt);
  // Room above the plot for the top tick label, which is centred on its grid line.
  const top = PAD + titleHeight(options.title) + 8;
  const box: PlotBox = { left, top, width: plotW, height: plotH };
  const xLabelH = LABEL_SIZE + 8;
  const xTitleH = LABEL_SIZE + 10;
  const legend = legendLayout(series.map((s) => s.name), Math.max(plotW, 320), LEGEND_KEY_WIDTH);
  // The last tick label is centred on its grid line and may stick out past the plot.
  const lastTick = xAxis.ticks[xAxis.ticks.length - 1];
  const overhang = lastTick === undefined ? 0 : xPixel(box, xAxis, lastTick) - left - plotW + measureText(xFmt(lastTick), LABEL_SIZE) / 2;
  const width = Math.ceil(
    Math.max(left + plotW + Math.max(PAD, overhang + 4), titleWidth(options.title), left + legend.width + PAD),
  );
  const height = top + plotH + xLabelH + xTitleH + legend.height + PAD;
  const r = new Raster(width, height);

  drawTitle(r, options.title);
  for (const t of xAxis.ticks) {
    const x = Math.round(xPixel(box, xAxis, t));
    r.fillRect(x, top, 1, plotH, GRID);
    r.text(xFmt(t), x, top + plotH + LABEL_SIZE + 4, { size: LABEL_SIZE, align: 'center', color: MUTED });
  }
  drawYAxis(r, box, yAxis, fmt, options.yTitle);
  r.text(options.xTitle, left + plotW / 2, top + plotH + xLabelH + LABEL_SIZE + 2, { size: LABEL_SIZE, align: 'center', color: MUTED });

  // Strokes may overhang the plot by their own width, so points on its edge draw in full; values outside a fixed yMin / yMax are cut off.
  const clip: PlotBox = { left: left - 1, top: top - 1, width: plotW + 3, height: plotH + 3 };
  series.forEach((s, k) => {
    const pts = Array.from({ length: s.x.length }, (_, i): [number, number] => [xPixel(box, xAxis, s.x[i]), yPixel(box, yAxis, s.y[i])]);
    polyline(r, pts, colorOf(k), s.dash ?? false, clip);
    // A lone point has no line, so it always gets its dot.
    if (markers || pts.length === 1) {
      for (const [x, y] of pts) if (inside(box, x, y, 0.5)) marker(r, x, y, colorOf(k));
    }
  });

  const key: LegendKey = (rr, k, x, y, w) => {
    const mid = y + SWATCH / 2;
    polyline(rr, [[x, mid], [x + w, mid]], colorOf(k), series[k].dash ?? false, { left: x, top: y, width: w, height: SWATCH });
    if (markers) marker(rr, x + w / 2, mid, colorOf(k));
  };
  drawLegend(r, legend, left, top + plotH + xLabelH + xTitleH, key);
  return r;
}
