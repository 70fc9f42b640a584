import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Raster, Rgb, SERIES_COLORS, barChartImage, niceStep } from '../src/viz';

/** Bounding box of the pixels of colour c, or undefined if there are none. */
function box(r: Raster, c: Rgb): { x0: number; y0: number; x1: number; y1: number; n: number } | undefined {
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1, n = 0;
  const d = r.data;
  for (let i = 0; i < r.width * r.height; i++) {
    if (d[i * 4] !== c[0] || d[i * 4 + 1] !== c[1] || d[i * 4 + 2] !== c[2]) continue;
    const x = i % r.width, y = Math.floor(i / r.width);
    x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); n++;
  }
  return n ? { x0, y0, x1, y1, n } : undefined;
}

test('niceStep picks 1, 2 or 5 times a power of ten', () => {
  assert.equal(niceStep(342), 100);
  assert.equal(niceStep(2688), 1000);
  assert.equal(niceStep(0.8), 0.2);
  assert.equal(niceStep(27.2), 10);
  assert.equal(niceStep(0), 1);
});

test('barChartImage draws bar heights proportional to the values, one colour per series', () => {
  const plotHeight = 200;
  const r = barChartImage(['a', 'b'], [{ name: 'one', values: [100, 50] }, { name: 'two', values: [25, 0] }], {
    xTitle: 'category',
    yTitle: 'value',
    plotHeight,
    valueLabels: false,
  });
  // Height of the first run of colour c in column x, from the top (bars sit above the legend swatches).
  const run = (x: number, c: Rgb) => {
    let y = 0;
    const is = (yy: number) => {
      const p = r.pixel(x, yy);
      return p[0] === c[0] && p[1] === c[1] && p[2] === c[2];
    };
    while (y < r.height && !is(y)) y++;
    let n = 0;
    while (y + n < r.height && is(y + n)) n++;
    return n;
  };
  const s0 = box(r, SERIES_COLORS[0]);
  const s1 = box(r, SERIES_COLORS[1]);
  assert.ok(s0 && s1, 'both series are drawn');
  // Bar runs of series 0 left to right: 100 (the axis top, ticks of 20) fills the plot; 50 is half.
  const heights0: number[] = [];
  const heights1: number[] = [];
  for (let x = 0; x < r.width; x++) {
    const h0 = run(x, SERIES_COLORS[0]);
    const h1 = run(x, SERIES_COLORS[1]);
    if (h0 > 12 && heights0[heights0.length - 1] !== h0) heights0.push(h0);
    if (h1 > 12 && heights1[heights1.length - 1] !== h1) heights1.push(h1);
  }
  assert.deepEqual(heights0, [plotHeight, plotHeight / 2]);
  // Series 1: the 25 bar is a quarter of the plot; the zero bar has no height.
  assert.deepEqual(heights1, [plotHeight / 4]);
});

test('barChartImage takes series colours from options.colors, cycling them', () => {
  const colors: Rgb[] = [[200, 10, 10], [10, 10, 200]];
  const r = barChartImage(['a'], [1, 2, 3].map((v) => ({ name: `s${v}`, values: [v] })), { xTitle: 'x', yTitle: 'y', colors, valueLabels: false });
  // Series 0 and 2 share the first colour: two bars (heights 1/3 and 3/3 of the plot) plus two legend swatches.
  assert.ok(box(r, colors[0]));
  assert.ok(box(r, colors[1]));
  assert.equal(box(r, SERIES_COLORS[0]), undefined);
});

test('barChartImage rejects mismatched lengths, negative values and missing axis titles', () => {
  const ok = { xTitle: 'x', yTitle: 'y' };
  assert.throws(() => barChartImage(['a', 'b'], [{ name: 's', values: [1] }], ok), /series 's' has 1 values for 2 categories/);
  assert.throws(() => barChartImage(['a'], [{ name: 's', values: [-1] }], ok), /value for 'a' is -1/);
  assert.throws(() => barChartImage(['a'], [{ name: 's', values: [1] }], { xTitle: 'x', yTitle: '' }), /yTitle is required/);
  assert.throws(() => barChartImage([], [], ok), /no categories/);
});
