import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import { Raster, measureText, fitText, colormap, sampleColormap, classColor, CLASS_PALETTE, hexToRgb, resolveRange } from '../src/viz';

function darkPixels(r: Raster, x0: number, y0: number, x1: number, y1: number): number {
  let n = 0;
  for (let y = Math.max(0, y0); y < Math.min(r.height, y1); y++) {
    for (let x = Math.max(0, x0); x < Math.min(r.width, x1); x++) if (r.pixel(x, y)[0] < 128) n++;
  }
  return n;
}

test('fillRect, blendRect and blit write the bitmap buffer, clipped to the raster', () => {
  const r = new Raster(10, 8);
  assert.deepEqual(r.pixel(0, 0), [255, 255, 255]);
  r.fillRect(-5, -5, 8, 8, [10, 20, 30]); // clipped to (0,0)-(3,3)
  assert.deepEqual(r.pixel(2, 2), [10, 20, 30]);
  assert.deepEqual(r.pixel(3, 3), [255, 255, 255]);
  r.blendRect(5, 0, 2, 2, [0, 0, 0], 0.5);
  assert.deepEqual(r.pixel(5, 0), [128, 128, 128]);
  // A 2x1 RGB image scaled x2 by nearest neighbour.
  r.blit({ data: Uint8Array.from([255, 0, 0, 0, 0, 255]), width: 2, height: 1, channels: 3 }, 6, 4, 4, 2);
  assert.deepEqual(r.pixel(6, 4), [255, 0, 0]);
  assert.deepEqual(r.pixel(7, 5), [255, 0, 0]);
  assert.deepEqual(r.pixel(8, 4), [0, 0, 255]);
  assert.deepEqual(r.pixel(9, 5), [0, 0, 255]);
  assert.throws(() => r.pixel(10, 0), /outside the 10x8 raster/);
  assert.throws(() => new Raster(0, 5), /positive integers/);
});

test('toPng encodes the exact pixels', () => {
  const r = new Raster(3, 2, [1, 2, 3]);
  r.fillRect(2, 1, 1, 1, [200, 100, 50]);
  const png = PNG.sync.read(r.toPng());
  assert.equal(png.width, 3);
  assert.equal(png.height, 2);
  assert.deepEqual([...png.data.subarray(0, 4)], [1, 2, 3, 255]);
  const last = (1 * 3 + 2) * 4;
  assert.deepEqual([...png.data.subarray(last, last + 4)], [200, 100, 50, 255]);
});

test('text draws glyphs with the shipped font, horizontally and vertically', () => {
  const r = new Raster(200, 120);
  const w = r.text('Hello', 10, 30, { size: 16, color: [0, 0, 0] });
  assert.ok(w > 30 && w < 60, `width of 'Hello' at 16px should be ~40px, got ${w}`);
  assert.ok(Math.abs(measureText('Hello', 16) - w) < 1e-9);
  // Ink sits above the baseline, inside the measured width.
  assert.ok(darkPixels(r, 10, 14, 10 + Math.ceil(w), 31) > 40);
  assert.equal(darkPixels(r, 10 + Math.ceil(w) + 3, 0, 200, 60), 0);
  // Vertical text runs upwards from its anchor, to the left of x.
  const v = new Raster(60, 150);
  v.text('Vertical', 40, 140, { size: 14, color: [0, 0, 0], vertical: true });
  assert.ok(darkPixels(v, 25, 80, 41, 141) > 30, 'vertical text should be in the column left of x');
  assert.equal(darkPixels(v, 0, 0, 60, 50), 0, 'text of ~55px must not reach the top');
  // Centered text is balanced around x.
  const c = new Raster(200, 40);
  c.text('mmmm', 100, 25, { size: 14, align: 'center', color: [0, 0, 0] });
  const left = darkPixels(c, 0, 0, 100, 40);
  const right = darkPixels(c, 100, 0, 200, 40);
  assert.ok(Math.abs(left - right) / (left + right) < 0.2, `centered text: ${left} dark pixels left vs ${right} right`);
});

test('fitText shortens with an ellipsis to the width', () => {
  const long = 'a very long caption that cannot fit';
  const fitted = fitText(long, 80, 12);
  assert.ok(fitted.endsWith('…'));
  assert.ok(measureText(fitted, 12) <= 80);
  assert.equal(fitText('short', 80, 12), 'short');
});

test('colour maps run dark to light; the class palette is fixed and distinct', () => {
  const v = colormap('viridis');
  assert.deepEqual(sampleColormap(v, 0), hexToRgb('#440154'));
  assert.deepEqual(sampleColormap(v, 1), hexToRgb('#fde725'));
  assert.deepEqual(sampleColormap(colormap('gray'), 0.5), [128, 128, 128]);
  assert.equal(classColor(0), CLASS_PALETTE[0]);
  for (let i = 0; i < 40; i++) {
    for (let j = 0; j < i; j++) {
      const a = classColor(i);
      const b = classColor(j);
      const d = Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
      if (i < CLASS_PALETTE.length) assert.ok(d > 60, `palette colours ${j} and ${i} are too close (${d.toFixed(0)})`);
      else assert.ok(d > 0, `generated colour ${i} repeats colour ${j}`);
    }
  }
  assert.throws(() => classColor(-1), /non-negative integer/);
});

test("resolveRange 'auto': bytes 0..255, [0,1] data, [0,255] floats, otherwise min..max", () => {
  assert.deepEqual(resolveRange(Uint8Array.from([0, 3]), 'auto'), [0, 255]);
  assert.deepEqual(resolveRange(Float32Array.from([0, 0.5, 1]), 'auto'), [0, 1]);
  assert.deepEqual(resolveRange(Float32Array.from([0, 30, 200]), 'auto'), [0, 255]);
  assert.deepEqual(resolveRange(Float32Array.from([-2, 3]), 'auto'), [-2, 3]);
  assert.deepEqual(resolveRange(Float32Array.from([-2, 3]), [0, 10]), [0, 10]);
  assert.throws(() => resolveRange(Float32Array.from([1]), [1, 1]), /high > low/);
});
