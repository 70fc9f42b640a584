import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PNG } from 'pngjs';
import {
  Figure,
  Raster,
  barChart,
  figureHtml,
  figureJson,
  lineChart,
  plotlyBundle,
  plotlyLibraryScript,
  save,
  saveHtml,
  savePng,
  scriptSafe,
  setDisplay,
  show,
  showFigure,
  standaloneHtml,
  tableHtml,
} from '../src/viz';

const fig: Figure = { data: [{ type: 'scatter', x: [1, 2], y: [3, 4] }], layout: { title: { text: 'a' } } };

function occurrences(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

/** A display that records what show() sends. */
function recorder() {
  const html: string[] = [];
  const png: Uint8Array[] = [];
  return { html, png, sink: { html: (s: string) => void html.push(s), png: (b: Uint8Array) => void png.push(b) } };
}

test('plotly.js comes from the npm package and is inlined, not fetched', () => {
  const { source, version } = plotlyBundle();
  assert.match(version, /^\d+\.\d+\.\d+/);
  const script = plotlyLibraryScript();
  assert.ok(script.length > source.length, 'the whole bundle is inside the script');
  // (assert.ok, not doesNotMatch: a failure must not print 4 MB of script)
  assert.ok(!/<script[^>]*\ssrc=/i.test(script), 'no <script src=...>: nothing is fetched');
  // Only the closing tag of the element itself may appear.
  assert.equal(occurrences(script.toLowerCase(), '</script'), 1);
  // UMD globals are shadowed so that require.js pages still get window.Plotly.
  assert.ok(script.includes('(function (define, module, exports, require) {'), 'UMD globals shadowed');
});

test('scriptSafe escapes closing script tags and refuses the double-escaped case', () => {
  assert.equal(scriptSafe('var s = "</script>";'), 'var s = "<\\/script>";');
  assert.equal(scriptSafe('var s = "</SCRIPT>";'), 'var s = "<\\/SCRIPT>";');
  assert.throws(() => scriptSafe('var a = "<!--", b = "<script>";'), /cannot be inlined safely/);
});

test('figure JSON turns typed arrays into arrays and hides "<" from the HTML parser', () => {
  const json = figureJson({ data: [{ type: 'bar', x: ['</script><b>'], y: Float32Array.from([1.5, 2]) as unknown as number[] }] });
  assert.ok(!json.includes('<'));
  const back = JSON.parse(json);
  assert.deepEqual(back.data[0].y, [1.5, 2]);
  assert.equal(back.data[0].x[0], '</script><b>');
});

test('the first chart embeds plotly.js, later charts reuse it', () => {
  const rec = recorder();
  setDisplay(rec.sink);
  try {
    showFigure(fig);
    show(fig);
    show(lineChart([{ name: 's', x: [1, 2], y: [2, 3] }], { title: 't', xTitle: 'x', yTitle: 'y' }));
    const all = rec.html.join('\n');
    assert.equal(occurrences(all, 'inlined by densenet-zoo'), 1, 'plotly.js once per page');
    assert.ok(rec.html[0].includes('inlined by densenet-zoo'), 'the library comes before the first chart');
    assert.equal(occurrences(all, 'class="dnz-plotly"'), 3);
    // A new page (new display) gets the library again.
    setDisplay(rec.sink);
    show(fig);
    assert.equal(occurrences(rec.html.join('\n'), 'inlined by densenet-zoo'), 2);
    // Rasters go out as PNG bytes.
    show(new Raster(4, 3));
    assert.equal(PNG.sync.read(Buffer.from(rec.png[0])).width, 4);
    assert.throws(() => show(42 as unknown as string), /expected a Plotly figure/);
  } finally {
    setDisplay(undefined);
  }
});

test('chart ids are stable for the same figure and unique per output', () => {
  const a = figureHtml(fig);
  const b = figureHtml(fig);
  const id = (s: string) => /id="(dnz-plot-[0-9a-f]{12})-(\d+)"/.exec(s);
  assert.equal(id(a)?.[1], id(b)?.[1]);
  assert.notEqual(id(a)?.[2], id(b)?.[2]);
});

test('outside a notebook, show() says to save files instead', () => {
  setDisplay(undefined);
  assert.throws(() => show(fig), /works inside a Jupyter notebook with the tslab kernel\. In scripts use savePng\(\)\/saveHtml\(\)/);
});

test('chart builders insist on titles and matching lengths', () => {
  const f = barChart(['a', 'b'], [{ name: 'n', values: Float64Array.from([1, 2]) }], { title: 'T', xTitle: 'X', yTitle: 'Y', stacked: true });
  assert.equal(f.layout?.barmode, 'stack');
  assert.deepEqual((f.data[0] as { y: number[] }).y, [1, 2]);
  assert.throws(() => barChart(['a'], [{ name: 'n', values: [1, 2] }], { title: 'T', xTitle: 'X', yTitle: 'Y' }), /'n' has 2 values for 1 categories/);
  assert.throws(() => lineChart([], { title: 'T', xTitle: '', yTitle: 'Y' }), /xTitle is required/);
});

test('figures save as .png and offline .html files', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viz-save-'));
  try {
    const r = new Raster(5, 6, [9, 8, 7]);
    const png = savePng(r, path.join(dir, 'sub', 'fig.png'));
    const decoded = PNG.sync.read(fs.readFileSync(png));
    assert.deepEqual([decoded.width, decoded.height, decoded.data[0]], [5, 6, 9]);
    const html = saveHtml([fig, fig], path.join(dir, 'charts.html'), 'Two <charts>');
    const text = fs.readFileSync(html, 'utf8');
    assert.equal(occurrences(text, 'inlined by densenet-zoo'), 1);
    assert.equal(occurrences(text, 'class="dnz-plotly"'), 2);
    assert.match(text, /<title>Two &lt;charts&gt;<\/title>/);
    assert.equal(save(r, path.join(dir, 'via-save.png')), path.join(dir, 'via-save.png'));
    assert.throws(() => savePng(r, path.join(dir, 'x.jpg')), /should end in \.png/);
    assert.throws(() => standaloneHtml([]), /no figures/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('tableHtml escapes cells and checks row lengths', () => {
  const t = tableHtml(['model', 'params'], [['<b>', 1234567]], 'cap & more');
  assert.match(t, /&lt;b&gt;/);
  assert.match(t, /1,234,567/);
  assert.match(t, /cap &amp; more/);
  assert.throws(() => tableHtml(['a', 'b'], [[1]]), /row 0 has 1 cells, expected 2/);
});
