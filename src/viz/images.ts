// Raster figures: image grids, feature-map grids, segmentation panels and
// confusion matrices. Each returns a Raster; show() or savePng() take it on.
import {
  Rgb,
  WHITE,
  TEXT,
  MUTED,
  BLACK,
  ColormapName,
  classColor,
  colormap,
  luminance,
  sampleColormap,
} from './color';
import { ArrayOrTensor, LabelMap, ValueRange, finiteRange, imageToPixels, toHwc, toLabelMap } from './input';
import { PixelBlock, Raster, fitText, measureText } from './raster';

const PAD = 10;
const GAP = 6;
const BORDER: Rgb = [200, 200, 200];
const TITLE_SIZE = 15;
const CAPTION_SIZE = 12;

/** Height taken by a title line (0 without a title). */
function titleHeight(title?: string): number {
  return title ? TITLE_SIZE + 12 : 0;
}

function drawTitle(r: Raster, title: string | undefined, subtitle?: string): void {
  if (!title) return;
  r.text(fitText(title, r.width - 2 * PAD, TITLE_SIZE), PAD, PAD + TITLE_SIZE, { size: TITLE_SIZE, color: TEXT });
  if (subtitle) {
    r.text(fitText(subtitle, r.width - 2 * PAD, CAPTION_SIZE), PAD, PAD + TITLE_SIZE + 4 + CAPTION_SIZE + 2, {
      size: CAPTION_SIZE,
      color: MUTED,
    });
  }
}

/** Integer upscale so that the longer side reaches `minSide` pixels. */
function autoScale(height: number, width: number, minSide: number): number {
  return Math.max(1, Math.ceil(minSide / Math.max(height, width)));
}

// ---------------------------------------------------------------- image grid

export interface GridItem {
  image: ArrayOrTensor;
  caption?: string;
}

export interface ImageGridOptions {
  /** Images per row (default: all in one row, at most 8). */
  columns?: number;
  /** Integer upscale factor (default: enough for a 96-pixel long side). */
  scale?: number;
  /** Value range of the pixel data (default 'auto', see resolveRange). */
  range?: ValueRange;
  title?: string;
}

/** Images side by side with a caption under each. */
export function imageGrid(items: ReadonlyArray<GridItem | ArrayOrTensor>, options: ImageGridOptions = {}): Raster {
  if (items.length === 0) throw new Error('imageGrid: no images given');
  const cells = items.map((item, i) => {
    const it = isGridItem(item) ? item : { image: item };
    return { pixels: imageToPixels(it.image, options.range ?? 'auto', `imageGrid item ${i}`), caption: it.caption };
  });
  const maxSide = Math.max(...cells.map((c) => Math.max(c.pixels.width, c.pixels.height)));
  const scale = options.scale ?? autoScale(maxSide, maxSide, 96);
  const cellW = Math.max(...cells.map((c) => c.pixels.width * scale));
  const cellH = Math.max(...cells.map((c) => c.pixels.height * scale));
  const columns = Math.max(1, Math.min(options.columns ?? Math.min(cells.length, 8), cells.length));
  const rows = Math.ceil(cells.length / columns);
  const captionH = cells.some((c) => c.caption) ? CAPTION_SIZE + 8 : 0;
  const top = PAD + titleHeight(options.title);
  const width = Math.max(2 * PAD + columns * cellW + (columns - 1) * GAP, options.title ? measureText(options.title, TITLE_SIZE) + 2 * PAD : 0);
  const height = top + rows * (cellH + captionH) + (rows - 1) * GAP + PAD;
  const r = new Raster(Math.ceil(width), height);
  drawTitle(r, options.title);
  cells.forEach((c, i) => {
    const x = PAD + (i % columns) * (cellW + GAP);
    const y = top + Math.floor(i / columns) * (cellH + captionH + GAP);
    const w = c.pixels.width * scale;
    const h = c.pixels.height * scale;
    const ix = x + Math.floor((cellW - w) / 2);
    const iy = y + Math.floor((cellH - h) / 2);
    r.blit(c.pixels, ix, iy, w, h);
    r.strokeRect(ix - 1, iy - 1, w + 2, h + 2, BORDER);
    if (c.caption) {
      r.text(fitText(c.caption, cellW + GAP - 2, CAPTION_SIZE), x + cellW / 2, y + cellH + CAPTION_SIZE + 3, {
        size: CAPTION_SIZE,
        align: 'center',
      });
    }
  });
  return r;
}

function isGridItem(v: GridItem | ArrayOrTensor): v is GridItem {
  return typeof v === 'object' && v !== null && 'image' in v;
}

// ---------------------------------------------------------- feature maps

export interface FeatureMapGridOptions {
  /** Which channels to draw (default: the first `maxChannels`). */
  channels?: readonly number[];
  /** Cap on the number of tiles when `channels` is not given (default 64). */
  maxChannels?: number;
  columns?: number;
  /** Integer upscale factor per tile (default: enough for a 48-pixel tile). */
  scale?: number;
  colormap?: ColormapName;
  /** Channel number under each tile (default true). */
  labels?: boolean;
  title?: string;
}

/**
 * One tile per channel of an [h, w, c] activation, each tile stretched from
 * its own minimum to its own maximum, so weak channels stay visible. A
 * constant channel has no contrast to show and is drawn in the lowest colour.
 */
export function featureMapGrid(maps: ArrayOrTensor, options: FeatureMapGridOptions = {}): Raster {
  const fm = toHwc(maps, 'featureMapGrid');
  const channels = options.channels ?? range(Math.min(fm.channels, options.maxChannels ?? 64));
  if (channels.length === 0) throw new Error('featureMapGrid: no channels selected');
  for (const c of channels) {
    if (!Number.isInteger(c) || c < 0 || c >= fm.channels) {
      throw new Error(`featureMapGrid: channel ${c} is out of range; the maps have ${fm.channels} channels (0..${fm.channels - 1})`);
    }
  }
  const scale = options.scale ?? autoScale(fm.height, fm.width, 48);
  const tileW = fm.width * scale;
  const tileH = fm.height * scale;
  const columns = Math.max(1, Math.min(options.columns ?? Math.ceil(Math.sqrt(channels.length * 1.5)), channels.length));
  const rows = Math.ceil(channels.length / columns);
  const labels = options.labels ?? true;
  const labelH = labels ? 14 : 0;
  const gap = 4;
  const map = colormap(options.colormap ?? 'viridis');
  const subtitle =
    `${fm.height}x${fm.width}, ${channels.length} of ${fm.channels} channels` +
    `; each tile scaled to its own min..max`;
  const top = PAD + (options.title ? TITLE_SIZE + CAPTION_SIZE + 18 : 0);
  const minWidth = options.title ? Math.max(measureText(options.title, TITLE_SIZE), measureText(subtitle, CAPTION_SIZE)) + 2 * PAD : 0;
  const width = Math.max(2 * PAD + columns * tileW + (columns - 1) * gap, Math.ceil(minWidth));
  const height = top + rows * (tileH + labelH) + (rows - 1) * gap + PAD;
  const r = new Raster(width, height);
  drawTitle(r, options.title, subtitle);
  const n = fm.height * fm.width;
  const tile = new Uint8Array(n * 3);
  channels.forEach((c, i) => {
    const [lo, hi] = finiteRange(fm.data, c, fm.data.length, fm.channels);
    const span = hi > lo ? hi - lo : 0;
    for (let p = 0; p < n; p++) {
      const v = fm.data[p * fm.channels + c];
      const t = span > 0 && Number.isFinite(v) ? (v - lo) / span : 0;
      const k = Math.round(t * 255) * 3;
      tile[p * 3] = map.table[k];
      tile[p * 3 + 1] = map.table[k + 1];
      tile[p * 3 + 2] = map.table[k + 2];
    }
    const x = PAD + (i % columns) * (tileW + gap);
    const y = top + Math.floor(i / columns) * (tileH + labelH + gap);
    r.blit({ data: tile, width: fm.width, height: fm.height, channels: 3 }, x, y, tileW, tileH);
    if (labels) r.text(String(c), x + tileW / 2, y + tileH + 11, { size: 10, color: MUTED, align: 'center' });
  });
  return r;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

// ---------------------------------------------------------- segmentation

export interface SegmentationFigureOptions {
  /** The input image (optional; needed for the overlay panel). */
  image?: ArrayOrTensor;
  /** Ground-truth class ids [h, w], or one-hot/scores [h, w, C]. */
  truth?: ArrayOrTensor;
  /** Predicted class ids [h, w], or scores [h, w, C] (argmax is taken). */
  prediction?: ArrayOrTensor;
  /** Names of the classes, by id; they fix the legend and the colours. */
  classNames: readonly string[];
  /** A label id to leave uncoloured (e.g. 255 for void pixels); drawn black. */
  ignoreLabel?: number;
  /** A colour per class id (e.g. the dataset's own, CamVid's); default the package's fixed palette. */
  palette?: ReadonlyArray<Rgb>;
  /** Opacity of the class colours over the image in the overlay (default 0.5). */
  alpha?: number;
  /** Integer upscale factor (default: enough for a 160-pixel long side). */
  scale?: number;
  /** Legend entries: classes that occur in the maps (default) or all. */
  legend?: 'present' | 'all';
  range?: ValueRange;
  title?: string;
}

/**
 * Input, ground truth, prediction and the prediction laid over the input
 * (whichever are given), with a legend of class colours under them.
 */
export function segmentationFigure(options: SegmentationFigureOptions): Raster {
  const names = options.classNames;
  if (!names || names.length === 0) throw new Error('segmentationFigure: classNames must list at least one class');
  const image = options.image ? imageToPixels(options.image, options.range ?? 'auto', 'segmentationFigure image') : undefined;
  const truth = options.truth ? toLabelMap(options.truth, 'segmentationFigure truth') : undefined;
  const pred = options.prediction ? toLabelMap(options.prediction, 'segmentationFigure prediction') : undefined;
  if (!truth && !pred) throw new Error('segmentationFigure: give truth, prediction or both');
  const ref = (truth ?? pred) as LabelMap;
  for (const [what, m] of [['image', image], ['truth', truth], ['prediction', pred]] as const) {
    if (m && (m.height !== ref.height || m.width !== ref.width)) {
      throw new Error(`segmentationFigure: ${what} is ${m.height}x${m.width}, but the label maps are ${ref.height}x${ref.width}`);
    }
  }
  if (truth) checkLabels(truth, names.length, options.ignoreLabel, 'truth');
  if (pred) checkLabels(pred, names.length, options.ignoreLabel, 'prediction');

  const colorOf = paletteColors(options.palette);
  const panels: { caption: string; pixels: PixelBlock }[] = [];
  if (image) panels.push({ caption: 'input', pixels: image });
  if (truth) panels.push({ caption: 'ground truth', pixels: labelsToPixels(truth, options.ignoreLabel, colorOf) });
  if (pred) panels.push({ caption: 'prediction', pixels: labelsToPixels(pred, options.ignoreLabel, colorOf) });
  if (image) {
    const over = pred ?? (truth as LabelMap);
    panels.push({
      caption: pred ? 'prediction over input' : 'truth over input',
      pixels: overlayPixels(image, over, options.alpha ?? 0.5, options.ignoreLabel, colorOf),
    });
  }

  const scale = options.scale ?? autoScale(ref.height, ref.width, 160);
  const pw = ref.width * scale;
  const ph = ref.height * scale;
  const captionH = CAPTION_SIZE + 8;
  const top = PAD + titleHeight(options.title);
  const panelsW = 2 * PAD + panels.length * pw + (panels.length - 1) * GAP;
  const present = new Set<number>();
  for (const m of [truth, pred]) if (m) for (const v of m.data) if (v !== options.ignoreLabel) present.add(v);
  const entries = (options.legend === 'all' ? range(names.length) : [...present].sort((a, b) => a - b)).map((id) => ({
    id,
    name: names[id],
  }));
  const width = Math.max(panelsW, options.title ? Math.ceil(measureText(options.title, TITLE_SIZE)) + 2 * PAD : 0, 240);
  const legend = layoutLegend(entries, width - 2 * PAD);
  const height = top + ph + captionH + GAP + legend.height + PAD;
  const r = new Raster(width, height);
  drawTitle(r, options.title);
  panels.forEach((p, i) => {
    const x = PAD + i * (pw + GAP);
    r.blit(p.pixels, x, top, pw, ph);
    r.strokeRect(x - 1, top - 1, pw + 2, ph + 2, BORDER);
    r.text(fitText(p.caption, pw, CAPTION_SIZE), x + pw / 2, top + ph + CAPTION_SIZE + 3, { size: CAPTION_SIZE, align: 'center' });
  });
  drawLegend(r, legend, PAD, top + ph + captionH + GAP, colorOf);
  return r;
}

/** Class id -> colour: the given palette where it has the id, else the package's. */
export function paletteColors(palette?: ReadonlyArray<Rgb>): (id: number) => Rgb {
  return (id) => palette?.[id] ?? classColor(id);
}

function checkLabels(m: LabelMap, classes: number, ignore: number | undefined, what: string): void {
  for (let p = 0; p < m.data.length; p++) {
    const v = m.data[p];
    if (v === ignore) continue;
    if (v < 0 || v >= classes) {
      throw new Error(
        `segmentationFigure: ${what} has class id ${v} at row ${Math.floor(p / m.width)}, col ${p % m.width}, ` +
          `but classNames has ${classes} entries (ids 0..${classes - 1})` +
          (ignore === undefined ? '; pass ignoreLabel for void pixels' : ''),
      );
    }
  }
}

/** Class ids painted in their palette colours (ignored ids black). */
export function labelsToPixels(labels: LabelMap, ignoreLabel?: number, colorOf: (id: number) => Rgb = classColor): PixelBlock {
  const out = new Uint8Array(labels.data.length * 3);
  labels.data.forEach((v, p) => {
    const c = v === ignoreLabel || v < 0 ? BLACK : colorOf(v);
    out[p * 3] = c[0];
    out[p * 3 + 1] = c[1];
    out[p * 3 + 2] = c[2];
  });
  return { data: out, width: labels.width, height: labels.height, channels: 3 };
}

/** The class colours mixed over an image with opacity `alpha`. */
export function overlayPixels(image: PixelBlock, labels: LabelMap, alpha: number, ignoreLabel?: number, colorOf: (id: number) => Rgb = classColor): PixelBlock {
  const n = labels.data.length;
  const out = new Uint8Array(n * 3);
  const a = Math.max(0, Math.min(1, alpha));
  for (let p = 0; p < n; p++) {
    const v = labels.data[p];
    for (let k = 0; k < 3; k++) {
      const base = image.data[p * image.channels + k];
      out[p * 3 + k] = v === ignoreLabel ? base : Math.round(base * (1 - a) + colorOf(v)[k] * a);
    }
  }
  return { data: out, width: labels.width, height: labels.height, channels: 3 };
}

interface LegendLayout {
  items: { id: number; name: string; x: number; y: number }[];
  height: number;
}

const SWATCH = 12;

function layoutLegend(entries: { id: number; name: string }[], maxWidth: number): LegendLayout {
  const items: LegendLayout['items'] = [];
  let x = 0;
  let y = 0;
  const lineH = SWATCH + 8;
  for (const e of entries) {
    const name = fitText(e.name ?? `class ${e.id}`, maxWidth - SWATCH - 6, CAPTION_SIZE);
    const w = SWATCH + 5 + measureText(name, CAPTION_SIZE) + 14;
    if (x > 0 && x + w > maxWidth) {
      x = 0;
      y += lineH;
    }
    items.push({ id: e.id, name, x, y });
    x += w;
  }
  return { items, height: items.length ? y + lineH : 0 };
}

function drawLegend(r: Raster, legend: LegendLayout, x0: number, y0: number, colorOf: (id: number) => Rgb): void {
  for (const it of legend.items) {
    const x = x0 + it.x;
    const y = y0 + it.y;
    r.fillRect(x, y, SWATCH, SWATCH, colorOf(it.id));
    r.strokeRect(x, y, SWATCH, SWATCH, [90, 90, 90]);
    r.text(it.name, x + SWATCH + 5, y + SWATCH - 1, { size: CAPTION_SIZE });
  }
}

// ------------------------------------------------------- confusion matrix

export interface ConfusionMatrixOptions {
  /** Colour by share of the true class (row, default) or by share of the largest cell. */
  normalize?: 'row' | 'max';
  /** Write the count in each cell (default true). */
  counts?: boolean;
  /** Cell side in pixels (default: fits the largest count, at least 30). */
  cellSize?: number;
  title?: string;
}

/**
 * Counts of (true class, predicted class) pairs as a coloured grid: rows are
 * true classes, columns predictions. `matrix` is n rows of n counts, or a
 * flat row-major array of n*n.
 */
export function confusionMatrixImage(
  matrix: ReadonlyArray<ArrayLike<number>> | ArrayLike<number>,
  classNames: readonly string[],
  options: ConfusionMatrixOptions = {},
): Raster {
  const n = classNames.length;
  if (n === 0) throw new Error('confusionMatrixImage: classNames is empty');
  const m = flattenMatrix(matrix, n);
  const counts = options.counts ?? true;
  const maxCount = Math.max(0, ...m);
  const cell = options.cellSize ?? Math.max(30, Math.ceil(measureText(formatCount(maxCount), 11)) + 10);
  const nameSize = 12;
  const nameW = Math.min(160, Math.ceil(Math.max(...classNames.map((s) => measureText(s, nameSize)))) + 8);
  const axisTitle = 16;
  const left = PAD + axisTitle + nameW;
  const note =
    options.normalize === 'max' ? 'colour: count / largest cell' : 'colour: share of the true class (row)';
  const top = PAD + (options.title ? TITLE_SIZE + CAPTION_SIZE + 18 : 0);
  const gridW = n * cell;
  const width = Math.max(left + gridW + PAD, options.title ? Math.ceil(measureText(options.title, TITLE_SIZE)) + 2 * PAD : 0);
  const height = top + gridW + 4 + nameW + axisTitle + PAD;
  const r = new Raster(width, height);
  drawTitle(r, options.title, options.title ? note : undefined);
  const blues = colormap('blues');
  for (let i = 0; i < n; i++) {
    let rowSum = 0;
    for (let j = 0; j < n; j++) rowSum += m[i * n + j];
    for (let j = 0; j < n; j++) {
      const v = m[i * n + j];
      const denom = options.normalize === 'max' ? maxCount : rowSum;
      const color = sampleColormap(blues, denom > 0 ? v / denom : 0);
      const x = left + j * cell;
      const y = top + i * cell;
      r.fillRect(x, y, cell, cell, color);
      if (counts) {
        r.text(formatCount(v), x + cell / 2, y + cell / 2 + 4, {
          size: 11,
          align: 'center',
          color: luminance(color) < 0.5 ? WHITE : TEXT,
        });
      }
    }
  }
  r.strokeRect(left - 1, top - 1, gridW + 2, gridW + 2, [120, 120, 120]);
  classNames.forEach((name, i) => {
    const label = fitText(name, nameW - 8, nameSize);
    r.text(label, left - 6, top + i * cell + cell / 2 + 4, { size: nameSize, align: 'right' });
    r.text(label, left + i * cell + cell / 2 + 4, top + gridW + 6, { size: nameSize, align: 'right', vertical: true });
  });
  r.text('true class', PAD + 12, top + gridW / 2, { size: nameSize, align: 'center', vertical: true, color: MUTED });
  r.text('predicted class', left + gridW / 2, height - PAD - 2, { size: nameSize, align: 'center', color: MUTED });
  return r;
}

function flattenMatrix(matrix: ReadonlyArray<ArrayLike<number>> | ArrayLike<number>, n: number): Float64Array {
  const out = new Float64Array(n * n);
  const first = (matrix as ArrayLike<unknown>)[0];
  if (typeof first === 'object' && first !== null) {
    const rows = matrix as ReadonlyArray<ArrayLike<number>>;
    if (rows.length !== n) throw new Error(`confusionMatrixImage: matrix has ${rows.length} rows, expected ${n} (one per class name)`);
    rows.forEach((row, i) => {
      if (row.length !== n) throw new Error(`confusionMatrixImage: row ${i} has ${row.length} entries, expected ${n}`);
      for (let j = 0; j < n; j++) out[i * n + j] = row[j];
    });
  } else {
    const flat = matrix as ArrayLike<number>;
    if (flat.length !== n * n) throw new Error(`confusionMatrixImage: flat matrix has ${flat.length} entries, expected ${n}*${n} = ${n * n}`);
    for (let k = 0; k < n * n; k++) out[k] = flat[k];
  }
  out.forEach((v, k) => {
    if (!Number.isFinite(v) || v < 0) {
      throw new Error(`confusionMatrixImage: entry [${Math.floor(k / n)}][${k % n}] is ${v}, expected a count >= 0`);
    }
  });
  return out;
}

function formatCount(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}
