import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import { LineSeries, Raster, Rgb, SERIES_COLORS, lineChartImage } from '../src/viz';

const AXIS: Rgb = [120, 120, 120];

function same(a: Rgb, b: Rgb): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2];
}

interface Box { x0: number; y0: number; x1: number; y1: number; n: number }

/** Bounding box of the pixels of colour c inside the region (whole raster by default), or undefined if none. */
function box(r: Raster, c: Rgb, region = { x0: 0, y0: 0, x1: r.width - 1, y1: r.height - 1 }): Box | undefined {
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1, n = 0;
  for (let y = Math.max(0, region.y0); y <= Math.min(r.height - 1, region.y1); y++) {
    for (let x = Math.max(0, region.x0); x <= Math.min(r.width - 1, region.x1); x++) {
      if (!same(r.pixel(x, y), c)) continue;
      x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); n++;
    }
  }
  return n ? { x0, y0, x1, y1, n } : undefined;
}

/**
 * The plot area, found from its axis lines: the left axis is the column with
 * the most pixels of the axis colour, the bottom axis the row with the most.
 * Counting (rather than taking the longest run) copes with lines drawn over
 * the axes; the tests keep the top left and bottom right corners free of lines.
 */
function plotArea(r: Raster): { left: number; right: number; top: number; bottom: number } {
  const cols = new Array<number>(r.width).fill(0);
  const rows = new Array<number>(r.height).fill(0);
  for (let y = 0; y < r.height; y++) {
    for (let x = 0; x < r.width; x++) {
      if (same(r.pixel(x, y), AXIS)) { cols[x]++; rows[y]++; }
    }
  }
  const left = cols.indexOf(Math.max(...cols));
  const bottom = rows.indexOf(Math.max(...rows));
  let top = 0;
  while (!same(r.pixel(left, top), AXIS)) top++;
  let right = r.width - 1;
  while (!same(r.pixel(right, bottom), AXIS)) right--;
  return { left, right, top, bottom };
}

/** Rows of colour c in column x. */
function rowsAt(r: Raster, x: number, c: Rgb): number[] {
  const rows: number[] = [];
  for (let y = 0; y < r.height; y++) if (same(r.pixel(x, y), c)) rows.push(y);
  return rows;
}

const range = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));

test('lineChartImage encodes to a PNG with the same pixels', () => {
  const r = lineChartImage([{ name: 'acc', x: [1, 2, 3], y: [0.2, 0.5, 0.7] }], { title: 'run', xTitle: 'epoch', yTitle: 'accuracy' });
  const png = PNG.sync.read(r.toPng());
  assert.equal(png.width, r.width);
  assert.equal(png.height, r.height);
  assert.deepEqual(Buffer.from(png.data), Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength));
});

test('a rising line runs from the bottom left to the top right of the plot', () => {
  // x 0..10 and y 0..10 are already round, so the axes end exactly at the data.
  const r = lineChartImage([{ name: 'up', x: range(11, (i) => i), y: range(11, (i) => i) }], {
    xTitle: 'x', yTitle: 'y', plotWidth: 300, plotHeight: 200, markers: false,
  });
  const p = plotArea(r);
  assert.equal(p.right - p.left, 300);
  assert.equal(p.bottom - p.top, 200);
  const c = SERIES_COLORS[0];
  const line = box(r, c);
  assert.ok(line, 'the series is drawn in the first series colour');
  assert.ok(Math.abs(line.x0 - p.left) <= 2 && Math.abs(line.y1 - p.bottom) <= 2, `starts at the bottom left: ${JSON.stringify(line)} vs ${JSON.stringify(p)}`);
  assert.ok(Math.abs(line.x1 - p.right) <= 2 && Math.abs(line.y0 - p.top) <= 2, `ends at the top right: ${JSON.stringify(line)} vs ${JSON.stringify(p)}`);
  // Half way across it is half way up, and 2 pixels thick.
  const mid = rowsAt(r, p.left + 150, c);
  assert.ok(mid.length >= 2 && mid.length <= 4, `stroke width at the middle: ${mid.length}`);
  assert.ok(Math.abs(mid[0] - (p.bottom - 100)) <= 2, `middle row ${mid[0]}, expected ~${p.bottom - 100}`);
  // Nothing in the top left or bottom right corners.
  assert.equal(box(r, c, { x0: p.left + 5, y0: p.top, x1: p.left + 100, y1: p.top + 60 }), undefined);
  assert.equal(box(r, c, { x0: p.right - 100, y0: p.bottom - 60, x1: p.right - 5, y1: p.bottom - 3 }), undefined);
});

test('the y axis starts at zero for data that reach down towards it, and fits narrow bands otherwise', () => {
  const plotHeight = 200;
  const opts = { xTitle: 'epoch', yTitle: 'v', plotHeight, markers: false };
  const x = range(5, (i) => i + 1);
  // 3..7.7: the smallest is under half the largest, so the axis is 0..8 (ticks of 2).
  let r = lineChartImage([{ name: 'a', x, y: [3, 4, 5, 6, 7.7] }], opts);
  let p = plotArea(r);
  let line = box(r, SERIES_COLORS[0])!;
  assert.ok(Math.abs(line.y0 - (p.bottom - (7.7 / 8) * plotHeight)) <= 2, `top of the line ${line.y0}`);
  assert.ok(Math.abs(line.y1 - (p.bottom - (3 / 8) * plotHeight)) <= 2, `bottom of the line ${line.y1}`);
  // 0.86..0.95: a narrow band high above zero gets the axis 0.86..0.96 (ticks of 0.02).
  r = lineChartImage([{ name: 'a', x, y: [0.86, 0.9, 0.93, 0.94, 0.95] }], opts);
  p = plotArea(r);
  line = box(r, SERIES_COLORS[0])!;
  assert.ok(Math.abs(line.y1 - p.bottom) <= 2, `lowest value on the bottom axis: ${line.y1} vs ${p.bottom}`);
  assert.ok(Math.abs(line.y0 - (p.bottom - 0.9 * plotHeight)) <= 2, `top of the line ${line.y0}`);
  // Negative values: the axis reaches below the minimum and above the maximum.
  r = lineChartImage([{ name: 'a', x, y: [-3.3, -1, 0.5, 2, 4.1] }], opts);
  p = plotArea(r);
  line = box(r, SERIES_COLORS[0])!;
  assert.ok(line.y0 > p.top && line.y1 < p.bottom, `line ${JSON.stringify(line)} inside the plot ${JSON.stringify(p)}`);
});

test('a fixed yMin and yMax cut the line off at the plot edges', () => {
  const r = lineChartImage([{ name: 'a', x: [0, 1, 2, 3], y: [-5, 0.5, 0.6, 5] }], {
    xTitle: 'x', yTitle: 'y', yMin: 0, yMax: 1, plotHeight: 100, markers: true,
  });
  const p = plotArea(r);
  const line = box(r, SERIES_COLORS[0])!;
  assert.ok(line.y0 >= p.top - 1 && line.y1 <= p.bottom + 2, `line ${JSON.stringify(line)} stays in the plot ${JSON.stringify(p)}`);
  // The in-range points are drawn where they belong: 0.5 is half way up.
  const xMid = p.left + Math.round((1 / 3) * (p.right - p.left));
  const rows = rowsAt(r, xMid, SERIES_COLORS[0]);
  assert.ok(rows.some((y) => Math.abs(y - (p.bottom - 50)) <= 3), `rows at x=${xMid}: ${rows}`);
});

test('x need not start at zero: the axis spans the data, rounded out only when that is cheap', () => {
  const plotWidth = 420;
  const opts = { xTitle: 'layers', yTitle: 'MB', plotWidth, markers: false };
  // 40..250: rounding out to 0 would waste a fifth of the plot, so the line starts at the left axis.
  let r = lineChartImage([{ name: 'm', x: [40, 100, 250], y: [1, 2, 3] }], opts);
  let p = plotArea(r);
  let line = box(r, SERIES_COLORS[0])!;
  assert.ok(Math.abs(line.x0 - p.left) <= 2 && Math.abs(line.x1 - p.right) <= 2, `line ${JSON.stringify(line)} spans ${JSON.stringify(p)}`);
  // Epochs 101..130 round out to 100..130: the line starts a thirtieth of the way in.
  r = lineChartImage([{ name: 'm', x: range(30, (i) => 101 + i), y: range(30, (i) => i) }], opts);
  p = plotArea(r);
  line = box(r, SERIES_COLORS[0])!;
  assert.ok(Math.abs(line.x0 - (p.left + plotWidth / 30)) <= 2, `line starts at ${line.x0}, expected ~${p.left + plotWidth / 30}`);
});

test('one colour per series in Plotly order, or from options.colors; legend only for two or more series', () => {
  const x = [0, 1, 2];
  const flat = (v: number, name: string): LineSeries => ({ name, x, y: [v, v, v] });
  const one = lineChartImage([flat(1, 'only')], { xTitle: 'x', yTitle: 'y' });
  const p1 = plotArea(one);
  assert.equal(box(one, SERIES_COLORS[0], { x0: 0, y0: p1.bottom + 3, x1: one.width, y1: one.height }), undefined, 'no legend for one series');

  const two = lineChartImage([flat(1, 'low'), flat(2, 'high')], { xTitle: 'x', yTitle: 'y', yMax: 3 });
  const p2 = plotArea(two);
  const below = { x0: 0, y0: p2.bottom + 3, x1: two.width, y1: two.height };
  const key0 = box(two, SERIES_COLORS[0], below);
  const key1 = box(two, SERIES_COLORS[1], below);
  assert.ok(key0 && key1, 'legend keys under the plot in both series colours');
  assert.ok(key0.x1 < key1.x0, 'legend entries in series order, left to right');
  assert.ok(two.height > one.height);
  // Within the plot, the higher series is drawn above the lower one.
  const inPlot = { x0: p2.left, y0: p2.top, x1: p2.right, y1: p2.bottom };
  assert.ok(box(two, SERIES_COLORS[1], inPlot)!.y1 < box(two, SERIES_COLORS[0], inPlot)!.y0);

  const colors: Rgb[] = [[200, 10, 10], [10, 10, 200]];
  const custom = lineChartImage([flat(1, 'a'), flat(2, 'b'), flat(3, 'c')], { xTitle: 'x', yTitle: 'y', colors });
  assert.ok(box(custom, colors[0]) && box(custom, colors[1]));
  assert.equal(box(custom, SERIES_COLORS[0]), undefined);
});

test('dashed lines leave gaps; markers put a dot on every point', () => {
  const x = [0, 10];
  const opts = { xTitle: 'x', yTitle: 'y', plotWidth: 300, yMin: 0, yMax: 2 };
  const count = (r: Raster, c: Rgb) => box(r, c)?.n ?? 0;
  const solid = lineChartImage([{ name: 's', x, y: [1, 1] }], { ...opts, markers: false });
  const dashed = lineChartImage([{ name: 's', x, y: [1, 1], dash: true }], { ...opts, markers: false });
  const ratio = count(dashed, SERIES_COLORS[0]) / count(solid, SERIES_COLORS[0]);
  assert.ok(ratio > 0.5 && ratio < 0.7, `a dash pattern of 6 on, 4 off keeps ~60% of the pixels, got ${ratio}`);

  const plain = box(solid, SERIES_COLORS[0])!;
  assert.ok(plain.y1 - plain.y0 + 1 <= 3, 'a flat line is 2 pixels thick');
  const dotted = box(lineChartImage([{ name: 's', x, y: [1, 1] }], { ...opts, markers: true }), SERIES_COLORS[0])!;
  assert.equal(dotted.y1 - dotted.y0 + 1, 7, 'markers are 7 pixels across');
  // Auto: markers for short series only.
  const long = range(41, (i) => i);
  const auto = box(lineChartImage([{ name: 's', x: long, y: long.map(() => 1) }], { ...opts }), SERIES_COLORS[0])!;
  assert.ok(auto.y1 - auto.y0 + 1 <= 3, 'no markers for a series of more than 40 points');
  // A lone point is drawn as a dot even without markers.
  assert.ok(box(lineChartImage([{ name: 's', x: [3], y: [1] }], { ...opts, markers: false }), SERIES_COLORS[0]));
});

test('lineChartImage names the series and value when the input is bad', () => {
  const ok = { xTitle: 'epoch', yTitle: 'loss' };
  assert.throws(() => lineChartImage([], ok), /lineChartImage: no series given/);
  assert.throws(() => lineChartImage([{ name: 'train', x: [1, 2], y: [1] }], ok), /series 'train' has 2 x values and 1 y values/);
  assert.throws(() => lineChartImage([{ name: 'train', x: [], y: [] }], ok), /series 'train' has no points/);
  assert.throws(() => lineChartImage([{ name: 'val', x: [1, 2], y: [0.5, NaN] }], ok), /series 'val' y\[1\] is NaN/);
  assert.throws(() => lineChartImage([{ name: 'val', x: [1, Infinity], y: [0.5, 1] }], ok), /series 'val' x\[1\] is Infinity/);
  assert.throws(() => lineChartImage([{ name: 'a', x: [1], y: [1] }], { xTitle: 'epoch', yTitle: ' ' }), /yTitle is required/);
  assert.throws(() => lineChartImage([{ name: 'a', x: [1], y: [1] }], { xTitle: '', yTitle: 'y' }), /xTitle is required/);
  assert.throws(() => lineChartImage([{ name: 'a', x: [1], y: [1] }], { ...ok, yMin: 2, yMax: 1 }), /yMin \(2\) must be below yMax \(1\)/);
  assert.throws(() => lineChartImage([{ name: 'a', x: [1, 2], y: [1, 3] }], { ...ok, yMin: 5 }), /yMin \(5\) is not below/);
  assert.throws(() => lineChartImage([{ name: 'a', x: [1], y: [1] }], { ...ok, plotWidth: 10 }), /plotWidth is 10/);
  assert.throws(() => lineChartImage([{ name: 'a', x: [1], y: [1] }], { ...ok, colors: [] }), /colors is empty/);
});
