#!/usr/bin/env node
// Executes notebooks/*.ipynb headless with the tslab kernel, checks that no
// cell produced an error, and writes executed copies and HTML exports.
//
//   node scripts/notebooks.js [notebook.ipynb ...] [--out DIR] [--no-write-back] [--timeout SECONDS]
//                             [--check-browser] [--screenshots DIR]
//
// --check-browser opens every HTML export in headless Chromium (Debian
// package `chromium`, driven by playwright-core) with the network cut off,
// and fails unless every Plotly chart drew its SVG and every PNG decoded.
//
// Needs (Debian): python3-nbconvert python3-ipykernel jupyter-client; tslab
// comes from npm (devDependency). The kernel spec is installed into
// DIR/jupyter with an absolute path to this project's tslab, and found
// through JUPYTER_PATH, so no global registration is needed.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..');
const APT_HINT = 'apt-get install -y python3-nbconvert python3-ipykernel jupyter-client';

function parseArgs(argv) {
  const opts = {
    out: path.join(ROOT, 'build', 'notebooks'),
    writeBack: true,
    timeout: 900,
    checkBrowser: false,
    screenshots: undefined,
    notebooks: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') opts.out = path.resolve(argv[++i]);
    else if (a === '--no-write-back') opts.writeBack = false;
    else if (a === '--timeout') opts.timeout = Number(argv[++i]);
    else if (a === '--check-browser') opts.checkBrowser = true;
    else if (a === '--screenshots') opts.screenshots = path.resolve(argv[++i]);
    else if (a === '--help' || a === '-h') {
      console.log(
        'usage: node scripts/notebooks.js [notebook.ipynb ...] [--out DIR] [--no-write-back] [--timeout SECONDS] [--check-browser] [--screenshots DIR]',
      );
      process.exit(0);
    } else if (a.startsWith('--')) throw new Error(`notebooks: unknown option ${a}`);
    else opts.notebooks.push(path.resolve(a));
  }
  if (!(opts.timeout > 0)) throw new Error('notebooks: --timeout needs a positive number of seconds');
  if (opts.notebooks.length === 0) {
    const dir = path.join(ROOT, 'notebooks');
    opts.notebooks = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.ipynb'))
      .sort()
      .map((f) => path.join(dir, f));
  }
  return opts;
}

/** The Python that has nbconvert: $PYTHON, else Debian's /usr/bin/python3, else python3 on PATH. */
function findPython() {
  const candidates = [process.env.PYTHON, '/usr/bin/python3', 'python3'].filter(Boolean);
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import nbconvert, jupyter_client; print(nbconvert.__version__)'], { encoding: 'utf8' });
    if (r.status === 0) return { python: py, nbconvert: r.stdout.trim() };
  }
  throw new Error(`notebooks: no Python with nbconvert and jupyter_client found (tried ${candidates.join(', ')}); ${APT_HINT}`);
}

/** Installs the tslab kernel spec under out/jupyter; returns the JUPYTER_PATH entry. */
function installKernel(python, out) {
  const bin = path.join(ROOT, 'node_modules', '.bin', 'tslab');
  if (!fs.existsSync(bin)) throw new Error(`notebooks: ${bin} is missing; run npm install (tslab is a devDependency)`);
  const prefix = path.join(out, 'jupyter');
  const r = spawnSync(bin, ['install', `--python=${python}`, `--prefix=${prefix}`, `--binary=${bin}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`notebooks: tslab install failed:\n${r.stdout}${r.stderr}`);
  const share = path.join(prefix, 'share', 'jupyter');
  if (!fs.existsSync(path.join(share, 'kernels', 'tslab', 'kernel.json'))) {
    throw new Error(`notebooks: tslab install did not write ${path.join(share, 'kernels', 'tslab', 'kernel.json')}`);
  }
  return share;
}

function run(cmd, args, env) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, cwd: ROOT, maxBuffer: 256 * 1024 * 1024 });
  return { ok: r.status === 0, log: `${r.stdout || ''}${r.stderr || ''}`, error: r.error };
}

function sourceText(x) {
  return Array.isArray(x) ? x.join('') : String(x ?? '');
}

/**
 * Problems in an executed notebook: error outputs, and any text on stderr.
 * tslab reports exceptions and type errors on stderr (its error replies carry
 * no error output), so stderr is treated as failure without exceptions.
 */
function findProblems(nb) {
  const problems = [];
  nb.cells.forEach((cell, i) => {
    if (cell.cell_type !== 'code') return;
    for (const o of cell.outputs || []) {
      if (o.output_type === 'error') {
        const trace = (o.traceback || []).join('\n').replace(/\x1b\[[0-9;]*m/g, '').trim().split('\n').slice(0, 8).join('\n');
        problems.push(`cell ${i}: ${o.ename}: ${o.evalue}${trace ? `\n${trace}` : ''}`);
      } else if (o.output_type === 'stream' && o.name === 'stderr') {
        problems.push(`cell ${i}: wrote to stderr: ${sourceText(o.text).trim().slice(0, 600)}`);
      }
    }
  });
  return problems;
}

function countOutputs(nb) {
  const counts = { charts: 0, images: 0 };
  for (const cell of nb.cells) {
    for (const o of cell.outputs || []) {
      const data = o.data || {};
      if (data['image/png']) counts.images += 1;
      if (data['text/html'] && sourceText(data['text/html']).includes('class="dnz-plotly"')) counts.charts += 1;
    }
  }
  return counts;
}

// tslab leaves execution_count empty in its replies, so executed notebooks
// would read "In [ ]:" everywhere; the cells ran top to bottom, so number
// them in that order. nbformat writes the file, keeping its usual layout.
const NUMBER_CELLS = `
import sys, nbformat
nb = nbformat.read(sys.argv[1], as_version=4)
n = 0
for cell in nb.cells:
    if cell.cell_type != 'code' or not cell.source.strip():
        continue
    n += 1
    if cell.get('execution_count') is None:
        cell.execution_count = n
    for out in cell.outputs:
        if out.output_type == 'execute_result' and out.get('execution_count') is None:
            out.execution_count = cell.execution_count
nbformat.write(nb, sys.argv[1])
`;

function executeOne(file, opts, env, python) {
  const name = path.basename(file, '.ipynb');
  const executedDir = path.join(opts.out, 'executed');
  const htmlDir = path.join(opts.out, 'html');
  const started = Date.now();
  const exec = run(
    python,
    [
      '-m', 'nbconvert', '--to', 'notebook', '--execute',
      '--ExecutePreprocessor.kernel_name=tslab',
      `--ExecutePreprocessor.timeout=${opts.timeout}`,
      // Timestamps in cell metadata would change on every run.
      '--ExecutePreprocessor.record_timing=False',
      // Run every cell and write the notebook even when one fails, so that
      // findProblems can name the cell and the error.
      '--ExecutePreprocessor.allow_errors=True',
      '--output-dir', executedDir, '--output', name, file,
    ],
    env,
  );
  const seconds = (Date.now() - started) / 1000;
  const result = { name, file: path.relative(ROOT, file), seconds, ok: false, problems: [], charts: 0, images: 0 };
  const executed = path.join(executedDir, `${name}.ipynb`);
  if (!exec.ok || !fs.existsSync(executed)) {
    result.problems.push(`nbconvert --execute failed:\n${exec.log.trim().split('\n').slice(-30).join('\n')}`);
    return result;
  }
  const numbered = run(python, ['-c', NUMBER_CELLS, executed], env);
  if (!numbered.ok) result.problems.push(`numbering cells failed:\n${numbered.log.trim()}`);
  const nb = JSON.parse(fs.readFileSync(executed, 'utf8'));
  result.problems.push(...findProblems(nb));
  Object.assign(result, countOutputs(nb));
  const html = run(python, ['-m', 'nbconvert', '--to', 'html', '--output-dir', htmlDir, '--output', name, executed], env);
  if (!html.ok) result.problems.push(`nbconvert --to html failed:\n${html.log.trim().split('\n').slice(-20).join('\n')}`);
  result.executed = path.relative(ROOT, executed);
  result.html = path.relative(ROOT, path.join(htmlDir, `${name}.html`));
  result.ok = result.problems.length === 0;
  if (result.ok && opts.writeBack) fs.copyFileSync(executed, file);
  return result;
}

// ------------------------------------------------------------ browser check

const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
  // Belt and braces next to the offline context: any request that still
  // leaves the page goes to a closed local port.
  '--proxy-server=http://127.0.0.1:9',
  '--proxy-bypass-list=<-loopback>',
];

function findChromium() {
  const candidates = [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(Boolean);
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) throw new Error(`browser check: no Chromium found (tried ${candidates.join(', ')}); apt-get install -y chromium`);
  return found;
}

/**
 * Opens each HTML file in headless Chromium (fresh profile, network cut off)
 * and reports, per page: Plotly charts found and drawn (an SVG with at least
 * one trace), PNG images found and decoded, requests that tried to leave the
 * machine, and uncaught script errors. Optionally saves a full-page
 * screenshot per file.
 */
async function checkPagesInBrowser(files, options = {}) {
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch {
    throw new Error('browser check: playwright-core is missing; run npm install (it is a devDependency)');
  }
  const browser = await chromium.launch({ executablePath: findChromium(), headless: true, args: CHROMIUM_FLAGS });
  const results = [];
  try {
    for (const file of files) {
      const context = await browser.newContext({ offline: true, viewport: { width: 1100, height: 900 } });
      const page = await context.newPage();
      const external = [];
      const pageErrors = [];
      await context.route('**/*', (route) => {
        const url = route.request().url();
        if (url.startsWith('file:') || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
        external.push(url);
        return route.abort('internetdisconnected');
      });
      page.on('pageerror', (e) => pageErrors.push(String(e && e.message ? e.message : e)));
      const started = Date.now();
      await page.goto('file://' + path.resolve(file), { waitUntil: 'load', timeout: options.timeoutMs ?? 60000 });
      // Charts draw from setTimeout callbacks; wait until each is drawn or gave up.
      await page
        .waitForFunction(
          () =>
            Array.from(document.querySelectorAll('div.dnz-plotly')).every(
              (d) => d.querySelector('svg.main-svg') || (d.textContent || '').includes('not loaded'),
            ),
          null,
          { timeout: options.timeoutMs ?? 60000, polling: 100 },
        )
        .catch(() => undefined);
      const report = await page.evaluate(() => {
        const charts = Array.from(document.querySelectorAll('div.dnz-plotly'));
        const imgs = Array.from(document.querySelectorAll('img')).filter((i) => (i.getAttribute('src') || '').startsWith('data:image/png'));
        // Scatter and bar traces draw as g.trace; a heatmap draws its cells as an image in g.hm.
        const drawn = (d) => d.querySelector('svg.main-svg') && d.querySelectorAll('g.trace, g.hm image').length > 0;
        return {
          charts: charts.length,
          chartsDrawn: charts.filter(drawn).length,
          chartProblems: charts
            .filter((d) => !drawn(d))
            .map((d) => `${d.id}: ${d.querySelector('svg.main-svg') ? 'axes but no traces' : (d.textContent || 'empty').slice(0, 120)}`),
          images: imgs.length,
          imagesDecoded: imgs.filter((i) => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0).length,
          requirejs: typeof window.requirejs === 'function',
          plotlyVersion: window.Plotly ? window.Plotly.version : null,
        };
      });
      // Where require.js is on the page, plotly.js should also be reachable as the AMD module 'plotly'.
      report.plotlyAmd = await page.evaluate(
        () =>
          new Promise((resolve) => {
            if (typeof window.requirejs !== 'function' || !window.Plotly) return resolve(false);
            const timer = setTimeout(() => resolve(false), 3000);
            window.requirejs(['plotly'], (P) => { clearTimeout(timer); resolve(P === window.Plotly); }, () => { clearTimeout(timer); resolve(false); });
          }),
      );
      let screenshot;
      if (options.screenshots) {
        fs.mkdirSync(options.screenshots, { recursive: true });
        screenshot = path.join(options.screenshots, path.basename(file).replace(/\.html?$/i, '.png'));
        await page.screenshot({ path: screenshot, fullPage: true });
      }
      results.push({ file, ...report, external, pageErrors, seconds: (Date.now() - started) / 1000, screenshot });
      await context.close();
    }
  } finally {
    await browser.close();
  }
  return results;
}

/** Problems in one page report of checkPagesInBrowser. */
function browserProblems(r) {
  const p = [];
  if (r.chartsDrawn !== r.charts) p.push(`${r.charts - r.chartsDrawn} of ${r.charts} Plotly charts did not draw: ${r.chartProblems.join('; ')}`);
  if (r.imagesDecoded !== r.images) p.push(`${r.images - r.imagesDecoded} of ${r.images} PNG images did not decode`);
  if (r.external.length) p.push(`tried the network: ${r.external.slice(0, 5).join(', ')}`);
  if (r.pageErrors.length) p.push(`script errors: ${r.pageErrors.slice(0, 5).join(' | ')}`);
  return p;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.notebooks.length === 0) throw new Error('notebooks: no .ipynb files found');
  if (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'notebook.js'))) {
    throw new Error('notebooks: dist/src/notebook.js is missing; run npm run build first');
  }
  fs.mkdirSync(opts.out, { recursive: true });
  const { python, nbconvert } = findPython();
  const jupyterPath = installKernel(python, opts.out);
  const env = {
    ...process.env,
    JUPYTER_PATH: [jupyterPath, process.env.JUPYTER_PATH].filter(Boolean).join(path.delimiter),
    PYDEVD_DISABLE_FILE_VALIDATION: '1',
  };
  console.log(`notebooks: ${opts.notebooks.length} notebook(s), ${python} (nbconvert ${nbconvert}), output in ${path.relative(ROOT, opts.out) || '.'}`);
  const results = [];
  for (const file of opts.notebooks) {
    const r = executeOne(file, opts, env, python);
    results.push(r);
    const status = r.ok ? 'ok  ' : 'FAIL';
    console.log(`${status} ${r.name}  ${r.seconds.toFixed(1)} s  charts=${r.charts} images=${r.images}`);
    for (const p of r.problems) console.log(`     ${p.replace(/\n/g, '\n     ')}`);
  }
  if (opts.checkBrowser) {
    const pages = results.filter((r) => r.html && fs.existsSync(path.join(ROOT, r.html)));
    const reports = await checkPagesInBrowser(
      pages.map((r) => path.join(ROOT, r.html)),
      { screenshots: opts.screenshots },
    );
    reports.forEach((rep, i) => {
      const r = pages[i];
      r.browser = { ...rep, file: path.relative(ROOT, rep.file) };
      const problems = browserProblems(rep);
      r.problems.push(...problems.map((p) => `browser: ${p}`));
      r.ok = r.problems.length === 0;
      console.log(
        `${problems.length ? 'FAIL' : 'ok  '} ${r.name} in Chromium: ${rep.chartsDrawn}/${rep.charts} charts drawn, ` +
          `${rep.imagesDecoded}/${rep.images} images decoded, require.js ${rep.requirejs ? 'present' : 'absent'}`,
      );
      for (const p of problems) console.log(`     ${p}`);
    });
  }
  fs.writeFileSync(path.join(opts.out, 'summary.json'), JSON.stringify(results, null, 2) + '\n');
  const failed = results.filter((r) => !r.ok).length;
  console.log(failed ? `notebooks: ${failed} of ${results.length} failed` : `notebooks: all ${results.length} ran without errors`);
  process.exitCode = failed ? 1 : 0;
}

module.exports = { checkPagesInBrowser, browserProblems, findProblems, CHROMIUM_FLAGS };

if (require.main === module) {
  main().catch((e) => {
    console.error(e && e.message ? e.message : e);
    process.exitCode = 1;
  });
}
