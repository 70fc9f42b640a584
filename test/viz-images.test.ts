import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../src/tf';
import { init } from '../src/backend';
import {
  Raster,
  Rgb,
  imageGrid,
  featureMapGrid,
  segmentationFigure,
  confusionMatrixImage,
  classColor,
  colormap,
  sampleColormap,
  imageToPixels,
  toLabelMap,
} from '../src/viz';

/** Positions (x, y) where the raster has colour c. */
function find(r: Raster, c: Rgb): { x: number; y: number }[] {
  const out: { x: number; y: number }[] = [];
  const d = r.data;
  for (let i = 0; i < r.width * r.height; i++) {
    if (d[i * 4] === c[0] && d[i * 4 + 1] === c[1] && d[i * 4 + 2] === c[2]) out.push({ x: i % r.width, y: Math.floor(i / r.width) });
  }
  return out;
}

function bbox(points: { x: number; y: number }[]): { x0: number; y0: number; x1: number; y1: number } {
  return {
    x0: Math.min(...points.map((p) => p.x)),
    y0: Math.min(...points.map((p) => p.y)),
    x1: Math.max(...points.map((p) => p.x)),
    y1: Math.max(...points.map((p) => p.y)),
  };
}

test('imageGrid scales each image by an integer factor and keeps the pixel values', () => {
  // 2x2 grey image with values in [0, 1]: 0 -> black, 1 -> white.
  const img = { data: Float32Array.from([0, 1, 1, 0.5]), height: 2, width: 2 };
  const r = imageGrid([{ image: img, caption: 'two by two' }, img], { scale: 10 });
  const black = bbox(find(r, [0, 0, 0]));
  // The first image's black pixel is a 10x10 block.
  const firstBlack = find(r, [0, 0, 0]).filter((p) => p.x < black.x0 + 20);
  assert.equal(firstBlack.length, 100);
  assert.equal(find(r, [128, 128, 128]).length, 200, 'two 10x10 blocks of 0.5 grey');
  // Two images side by side: width ~ 2*20 + gap + padding.
  assert.ok(r.width >= 2 * 20 && r.width < 2 * 20 + 40, `width ${r.width}`);
  assert.throws(() => imageGrid([]), /no images/);
  assert.throws(
    () => imageGrid([{ image: { data: new Float32Array(5), height: 2, width: 2 } }]),
    /item 0: data has 5 values, expected height\*width\*channels = 2\*2\*1 = 4/,
  );
  assert.throws(() => imageGrid([{ image: { data: new Float32Array(8), height: 2, width: 2, channels: 2 } }]), /1, 3 or 4 channels, got 2/);
});

test('tensor inputs match the same data given as typed arrays', async () => {
  await init('cpu', { log: null });
  const data = Float32Array.from({ length: 4 * 5 * 3 }, (_, i) => (i % 7) / 6);
  const fromArray = imageToPixels({ data, height: 4, width: 5, channels: 3 });
  const t = tf.tensor3d(data, [4, 5, 3]);
  const fromTensor = imageToPixels(t);
  const fromBatch = imageToPixels(tf.expandDims(t, 0));
  assert.deepEqual(fromTensor, fromArray);
  assert.deepEqual(fromBatch, fromArray);
  assert.throws(() => imageToPixels(tf.zeros([2, 2, 2, 3])), /\[1, h, w, c\], got \[2, 2, 2, 3\]/);
  // [h, w, C] scores become class ids by argmax.
  const scores = tf.tensor3d([0.1, 0.9, 0.8, 0.2], [1, 2, 2]);
  assert.deepEqual([...toLabelMap(scores).data], [1, 0]);
  tf.dispose([t, scores]);
});

test('featureMapGrid normalises every tile to its own range', () => {
  const h = 3;
  const w = 4;
  const c = 3;
  const data = new Float32Array(h * w * c);
  for (let p = 0; p < h * w; p++) {
    data[p * c] = p; // 0..11
    data[p * c + 1] = 1000 + 10 * p; // same pattern, another scale
    data[p * c + 2] = 7; // constant
  }
  const r = featureMapGrid({ data, height: h, width: w, channels: c }, { scale: 5, labels: false });
  const viridis = colormap('viridis');
  const low = sampleColormap(viridis, 0);
  const high = sampleColormap(viridis, 1);
  // Tiles 0 and 1 each reach both ends of the map; tile 2 is flat at the low end.
  const lows = find(r, low);
  const highs = find(r, high);
  assert.equal(highs.length, 2 * 25, 'the maximum pixel of tiles 0 and 1, 5x5 each');
  assert.equal(lows.length, 2 * 25 + h * w * 25, 'the minimum of tiles 0 and 1, and all of the constant tile');
  // Both varying tiles look identical: compare them pixel by pixel.
  const tileW = w * 5;
  const tileH = h * 5;
  const origin = bbox(lows);
  for (let y = 0; y < tileH; y++) {
    for (let x = 0; x < tileW; x++) {
      assert.deepEqual(r.pixel(origin.x0 + x, origin.y0 + y), r.pixel(origin.x0 + tileW + 4 + x, origin.y0 + y));
    }
  }
  assert.throws(() => featureMapGrid({ data, height: h, width: w, channels: c }, { channels: [3] }), /channel 3 is out of range; the maps have 3 channels/);
});

test('featureMapGrid shows at most maxChannels tiles, with labels', () => {
  const data = Float32Array.from({ length: 2 * 2 * 100 }, (_, i) => i % 13);
  // In every channel the four pixels hold distinct values, so each tile has
  // exactly one 10x10 block in the top colour of the map.
  const top = sampleColormap(colormap('viridis'), 1);
  const small = featureMapGrid({ data, height: 2, width: 2, channels: 100 }, { maxChannels: 4, scale: 10, title: 'four tiles' });
  const many = featureMapGrid({ data, height: 2, width: 2, channels: 100 }, { scale: 10 });
  const picked = featureMapGrid({ data, height: 2, width: 2, channels: 100 }, { channels: [99, 3], scale: 10 });
  assert.equal(find(small, top).length, 4 * 100);
  assert.equal(find(many, top).length, 64 * 100, 'default cap is 64 tiles');
  assert.equal(find(picked, top).length, 2 * 100);
});

test('segmentationFigure paints classes in their palette colours with a legend', () => {
  const S = 8;
  const truth = new Int32Array(S * S).map((_, p) => ((p % S) < 4 ? 0 : 2));
  const pred = new Int32Array(S * S).map((_, p) => ((p % S) < 5 ? 0 : 2));
  const image = new Uint8Array(S * S * 3).fill(200);
  const r = segmentationFigure({
    image: { data: image, height: S, width: S, channels: 3 },
    truth: { data: truth, height: S, width: S },
    prediction: { data: pred, height: S, width: S },
    classNames: ['background', 'shirt', 'bag'],
    scale: 4,
  });
  const c0 = find(r, classColor(0)).length;
  const c2 = find(r, classColor(2)).length;
  const px = 16; // 4x4 per label pixel
  const legendSwatch = 10 * 10; // swatch interior (12x12 minus its outline)
  assert.equal(c0, (32 + 40) * px + legendSwatch, 'class 0 in truth (32 px) and prediction (40 px), plus its swatch');
  assert.equal(c2, (32 + 24) * px + legendSwatch);
  assert.equal(find(r, classColor(1)).length, 0, 'class 1 occurs nowhere, so it is not in the legend');
  // Overlay: 50% of the class colour over grey 200.
  const mixed = classColor(0).map((v) => Math.round(200 * 0.5 + v * 0.5)) as unknown as Rgb;
  assert.equal(find(r, mixed).length, 40 * px);
});

test('segmentationFigure rejects bad labels and mismatched shapes with the position', () => {
  const bad = Int32Array.from([0, 1, 5, 0]);
  assert.throws(
    () => segmentationFigure({ truth: { data: bad, height: 2, width: 2 }, classNames: ['a', 'b'] }),
    /truth has class id 5 at row 1, col 0, but classNames has 2 entries/,
  );
  // An ignored label is allowed and drawn black.
  const r = segmentationFigure({ truth: { data: Int32Array.from([0, 255, 1, 0]), height: 2, width: 2 }, classNames: ['a', 'b'], ignoreLabel: 255, scale: 3 });
  assert.equal(find(r, [0, 0, 0]).length, 9);
  assert.throws(
    () =>
      segmentationFigure({
        truth: { data: new Int32Array(4), height: 2, width: 2 },
        prediction: { data: new Int32Array(6), height: 2, width: 3 },
        classNames: ['a'],
      }),
    /prediction is 2x3, but the label maps are 2x2/,
  );
  assert.throws(() => segmentationFigure({ classNames: ['a'] }), /give truth, prediction or both/);
});

test('confusionMatrixImage colours each cell by its share of the row', () => {
  const names = ['cat', 'dog'];
  const r = confusionMatrixImage(
    [
      [90, 10],
      [50, 50],
    ],
    names,
    { cellSize: 40, counts: false },
  );
  const blues = colormap('blues');
  for (const [t, count] of [
    [0.9, 1],
    [0.1, 1],
    [0.5, 2],
  ] as const) {
    assert.equal(find(r, sampleColormap(blues, t)).length, count * 40 * 40, `cells with share ${t} of their row`);
  }
  assert.throws(() => confusionMatrixImage([[1, 2]], names), /matrix has 1 rows, expected 2/);
  assert.throws(() => confusionMatrixImage([1, 2, 3, -1], names), /entry \[1\]\[1\] is -1/);
});
