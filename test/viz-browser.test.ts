// Plotly output in a real browser (Debian's chromium, headless, offline):
// a saved page, a page where require.js is loaded first (as in nbconvert's
// HTML and Jupyter classic), and outputs inserted one by one the way the
// Jupyter front ends insert them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Figure, figureHtml, lineChart, barChart, plotlyLibraryScript, standaloneHtml } from '../src/viz';

const ROOT = path.resolve(__dirname, '..', '..');
// eslint-disable-next-line @typescript-eslint/no-var-requires
const checker = require(path.join(ROOT, 'scripts', 'notebooks.js')) as {
  checkPagesInBrowser(files: string[], o?: { screenshots?: string; timeoutMs?: number }): Promise<PageReport[]>;
  browserProblems(r: PageReport): string[];
};

interface PageReport {
  file: string;
  charts: number;
  chartsDrawn: number;
  images: number;
  imagesDecoded: number;
  requirejs: boolean;
  plotlyAmd: boolean;
  plotlyVersion: string | null;
  external: string[];
  pageErrors: string[];
}

const REQUIRE_JS = '/usr/share/javascript/requirejs/require.min.js';

const figs: Figure[] = [
  lineChart([{ name: 'k = 32', x: [0, 1, 2], y: [64, 96, 128] }], { title: 'Channels', xTitle: 'layer', yTitle: 'channels' }),
  barChart(['a', 'b'], [{ name: 'params', values: [3, 5] }], { title: 'Params', xTitle: 'block', yTitle: 'params' }),
];

/** JSON inside a <script type="application/json"> element. */
function jsonScript(id: string, value: unknown): string {
  return `<script type="application/json" id="${id}">${JSON.stringify(value).replace(/</g, '\\u003c')}</script>`;
}

/**
 * A page that inserts each output after load, like Jupyter: 'classic' the
 * way jQuery.html() runs scripts (evaluated in <head>, away from the div),
 * 'lab' the way JupyterLab re-creates script elements in place.
 */
function frontEndPage(mode: 'classic' | 'lab', outputs: string[]): string {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><script src="file://${REQUIRE_JS}"></script></head><body>
<div id="notebook"></div>
${jsonScript('outputs', outputs)}
<script>
(function () {
  var outputs = JSON.parse(document.getElementById('outputs').textContent);
  var nb = document.getElementById('notebook');
  outputs.forEach(function (html) {
    var area = document.createElement('div');
    area.className = 'output_area';
    nb.appendChild(area);
    area.innerHTML = html;  // scripts inserted this way do not run
    Array.prototype.slice.call(area.querySelectorAll('script')).forEach(function (old) {
      var s = document.createElement('script');
      s.text = old.text;
      if (${mode === 'classic'}) { old.parentNode.removeChild(old); document.head.appendChild(s); document.head.removeChild(s); }
      else { old.parentNode.replaceChild(s, old); }
    });
  });
})();
</script></body></html>`;
}

test('Plotly charts draw offline in Chromium, with and without require.js on the page', async () => {
  assert.ok(fs.existsSync(REQUIRE_JS), `${REQUIRE_JS} is missing: apt-get install -y libjs-requirejs`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viz-browser-'));
  try {
    const page = standaloneHtml(figs, 'plain');
    const pages: Record<string, string> = {
      plain: page,
      amd: page.replace('<head>', `<head>\n<script src="file://${REQUIRE_JS}"></script>`),
      classic: frontEndPage('classic', [plotlyLibraryScript(), figureHtml(figs[0]), '<p>text between</p>', figureHtml(figs[1])]),
      lab: frontEndPage('lab', [plotlyLibraryScript(), figureHtml(figs[0]), figureHtml(figs[1])]),
      // A heatmap draws its cells as an image, with no g.trace: the checker must still count it drawn.
      heatmap: standaloneHtml([{ data: [{ type: 'heatmap', z: [[0, 1], [1, 0]] }], layout: { title: { text: 'heatmap' } } }], 'plain'),
      // Without the library the checker must see undrawn charts.
      missing: `<!DOCTYPE html><html><body>${figureHtml(figs[0])}</body></html>`,
    };
    const files = Object.entries(pages).map(([name, html]) => {
      const f = path.join(dir, `${name}.html`);
      fs.writeFileSync(f, html);
      return f;
    });
    const reports = await checker.checkPagesInBrowser(files, { screenshots: process.env.VIZ_SCREENSHOTS });
    const byName = Object.fromEntries(reports.map((r) => [path.basename(r.file, '.html'), r]));
    for (const name of ['plain', 'amd', 'classic', 'lab']) {
      const r = byName[name];
      assert.deepEqual(checker.browserProblems(r), [], `${name}: ${JSON.stringify(r)}`);
      assert.equal(r.charts, 2, name);
      assert.equal(r.chartsDrawn, 2, name);
      assert.match(r.plotlyVersion ?? '', /^\d+\.\d+/, `${name}: window.Plotly is set`);
    }
    assert.equal(byName.plain.requirejs, false);
    for (const name of ['amd', 'classic', 'lab']) {
      assert.equal(byName[name].requirejs, true, `${name} page loads require.js`);
      assert.equal(byName[name].plotlyAmd, true, `${name}: require(['plotly']) gives window.Plotly`);
    }
    assert.deepEqual(checker.browserProblems(byName.heatmap), []);
    assert.equal(byName.heatmap.chartsDrawn, 1);
    assert.equal(byName.missing.chartsDrawn, 0);
    assert.match(checker.browserProblems(byName.missing).join('\n'), /1 of 1 Plotly charts did not draw: .*plotly\.js is not loaded/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
