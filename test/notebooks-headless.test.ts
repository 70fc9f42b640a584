// Runs every notebook in notebooks/ headless with the tslab kernel (through
// scripts/notebooks.js, into a temporary folder, leaving the committed
// notebooks alone), then opens each HTML export in headless Chromium.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..', '..');

interface NotebookResult {
  name: string;
  ok: boolean;
  seconds: number;
  problems: string[];
  charts: number;
  images: number;
  html?: string;
  browser?: { charts: number; chartsDrawn: number; images: number; imagesDecoded: number; external: string[]; requirejs: boolean };
}

test('every notebook executes without errors and renders in Chromium', () => {
  const notebooks = fs.readdirSync(path.join(ROOT, 'notebooks')).filter((f) => f.endsWith('.ipynb'));
  assert.ok(notebooks.length > 0, 'notebooks/ has no .ipynb files');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'notebooks-'));
  try {
    const args = ['scripts/notebooks.js', '--out', out, '--no-write-back', '--check-browser'];
    if (process.env.NOTEBOOK_SCREENSHOTS) args.push('--screenshots', path.resolve(process.env.NOTEBOOK_SCREENSHOTS));
    const run = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
    const log = `${run.stdout}${run.stderr}`;
    assert.equal(run.status, 0, `scripts/notebooks.js failed:\n${log}`);
    const results = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')) as NotebookResult[];
    assert.deepEqual(results.map((r) => `${r.name}.ipynb`).sort(), notebooks.sort());
    for (const r of results) {
      assert.deepEqual(r.problems, [], r.name);
      assert.ok(r.charts >= 1 && r.images >= 1, `${r.name}: each notebook shows at least one chart and one image (charts=${r.charts}, images=${r.images})`);
      const b = r.browser;
      assert.ok(b, `${r.name}: no browser report`);
      assert.equal(b.charts, r.charts, `${r.name}: every chart output is on the HTML page`);
      assert.equal(b.chartsDrawn, b.charts, `${r.name}: charts drawn in Chromium`);
      assert.equal(b.imagesDecoded, b.images, `${r.name}: PNGs decoded in Chromium`);
      assert.equal(b.images, r.images, `${r.name}: every PNG output is on the HTML page`);
      assert.deepEqual(b.external, [], `${r.name}: the page must not touch the network`);
      assert.ok(fs.statSync(path.join(ROOT, r.html as string)).size > 0);
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
