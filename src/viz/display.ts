// Showing figures in a notebook run by the tslab kernel (tslab.display), and
// saving the same figures as files for scripts, the CLI and reports.
import * as fs from 'fs';
import * as path from 'path';
import Module from 'module';
import { Raster } from './raster';
import { Figure, figureHtml, isFigure, plotlyLibraryScript, standaloneHtml } from './plotly';

/** The part of tslab's `display` object the helpers use. */
export interface DisplaySink {
  html(s: string): void;
  png(b: Uint8Array): void;
}

let sink: DisplaySink | undefined;
let plotlyShown = false;

/**
 * Overrides where show() sends output (tests, other kernels). Passing
 * undefined goes back to tslab. It also resets the "plotly.js already
 * embedded" flag, since a new sink is a new page.
 */
export function setDisplay(display: DisplaySink | undefined): void {
  sink = display;
  plotlyShown = false;
}

/** The parts of the tslab module this file uses. */
interface TslabModule {
  display?: DisplaySink;
  newDisplay?: () => DisplaySink;
}

/**
 * tslab's display, from the tslab that runs this kernel. Inside the kernel
 * `require.main` is tslab's own launcher, so resolving 'tslab' from there
 * finds the instance whose display is wired to the Jupyter connection, even
 * when the project also has its own copy in node_modules.
 */
function tslabDisplay(): DisplaySink {
  const attempts: string[] = [];
  const bases = [require.main?.filename, __filename].filter((f): f is string => typeof f === 'string');
  for (const base of bases) {
    try {
      const tslab = Module.createRequire(base)('tslab') as TslabModule;
      if (tslab.display) return tslab.display;
    } catch (e) {
      attempts.push(`${base}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`${NOT_IN_KERNEL}. Could not load tslab: ${attempts.join('; ')}`);
}

/**
 * The tslab running this process as a kernel, or undefined. Outside a kernel
 * tslab may still load (it is a devDependency) but has no notebook to draw in,
 * so the test is that require.main, the launcher, lies inside tslab's package.
 */
function kernelTslab(): TslabModule | undefined {
  const launcher = require.main?.filename;
  if (!launcher) return undefined;
  try {
    const requireFromLauncher = Module.createRequire(launcher);
    const tslabRoot = path.dirname(requireFromLauncher.resolve('tslab/package.json'));
    return launcher.startsWith(tslabRoot + path.sep) ? (requireFromLauncher('tslab') as TslabModule) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether this code runs inside a tslab Jupyter kernel; never throws. */
export function inTslabKernel(): boolean {
  return kernelTslab() !== undefined;
}

/** A new output entry in the notebook whose every html()/png() call replaces the previous one in place. */
export function newTslabDisplay(): DisplaySink {
  const tslab = kernelTslab();
  if (!tslab?.newDisplay) throw new Error('newTslabDisplay: not inside a tslab kernel, so there is no notebook to draw in');
  return tslab.newDisplay();
}

const NOT_IN_KERNEL =
  'show: no notebook to show in; show() works inside a Jupyter notebook with the tslab kernel. ' +
  'In scripts use savePng()/saveHtml()';

function display(): DisplaySink {
  if (sink) return sink;
  const d = tslabDisplay();
  // tslab's display throws a bare "Not ready" outside a running kernel.
  const guard =
    <T>(f: (v: T) => void) =>
    (v: T) => {
      try {
        f.call(d, v);
      } catch (e) {
        if ((e as Error).message === 'Not ready') throw new Error(NOT_IN_KERNEL);
        throw e;
      }
    };
  return { html: guard(d.html), png: guard(d.png) };
}

/**
 * Puts plotly.js on the notebook page. The first chart does this by itself;
 * call it in an early cell when cells may run out of order, so that the
 * library sits above every chart in the saved notebook.
 */
export function plotlyInit(): void {
  display().html(plotlyLibraryScript());
  plotlyShown = true;
}

/** Shows a Plotly figure inline; plotly.js is embedded with the first one. */
export function showFigure(fig: Figure): void {
  if (!plotlyShown) plotlyInit();
  display().html(figureHtml(fig));
}

/** Shows a raster figure as a PNG image. */
export function showImage(r: Raster): void {
  display().png(r.toPng());
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Shows a PNG file as it is (a figure an experiment saved); refuses a file that is not a PNG. */
export function showPngFile(file: string): void {
  const bytes = fs.readFileSync(file);
  if (!bytes.subarray(0, 8).equals(PNG_SIGNATURE)) throw new Error(`showPngFile: ${file} is not a PNG file (no PNG signature)`);
  display().png(bytes);
}

/** Shows an HTML fragment (tables, notes). */
export function showHtml(html: string): void {
  display().html(html);
}

/** Shows a Plotly figure, a raster figure, or HTML, whichever it is given. */
export function show(x: Figure | Raster | string): void {
  if (x instanceof Raster) showImage(x);
  else if (isFigure(x)) showFigure(x);
  else if (typeof x === 'string') showHtml(x);
  else throw new Error(`show: expected a Plotly figure ({ data: [...] }), a Raster or an HTML string, got ${typeof x}`);
}

function writeFile(file: string, content: string | Buffer): string {
  const abs = path.resolve(file);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  fs.writeFileSync(abs, content);
  return abs;
}

/** Writes a raster figure as a PNG file; returns the absolute path. */
export function savePng(r: Raster, file: string): string {
  if (!/\.png$/i.test(file)) throw new Error(`savePng: ${file} should end in .png`);
  return writeFile(file, r.toPng());
}

/** Writes Plotly figures as one offline HTML page; returns the absolute path. */
export function saveHtml(figs: Figure | readonly Figure[], file: string, title?: string): string {
  if (!/\.html?$/i.test(file)) throw new Error(`saveHtml: ${file} should end in .html`);
  return writeFile(file, standaloneHtml(figs, title ?? path.basename(file).replace(/\.html?$/i, '')));
}

/** Saves a Raster as .png or Plotly figures as .html, by the file's extension. */
export function save(x: Figure | readonly Figure[] | Raster, file: string): string {
  if (x instanceof Raster) return savePng(x, file);
  return saveHtml(x, file);
}

/** An HTML table with escaped cells, numbers right-aligned. */
export function tableHtml(columns: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>, caption?: string): string {
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);
  const cell = (v: string | number, tag: 'td' | 'th') =>
    `<${tag} style="padding:2px 10px;text-align:${typeof v === 'number' ? 'right' : 'left'}">${esc(
      typeof v === 'number' ? v.toLocaleString('en-US') : v,
    )}</${tag}>`;
  rows.forEach((r, i) => {
    if (r.length !== columns.length) throw new Error(`tableHtml: row ${i} has ${r.length} cells, expected ${columns.length}`);
  });
  return (
    `<table style="border-collapse:collapse">` +
    (caption ? `<caption style="text-align:left;font-weight:bold">${esc(caption)}</caption>` : '') +
    `<thead><tr>${columns.map((c) => cell(c, 'th')).join('')}</tr></thead>` +
    `<tbody>${rows.map((r) => `<tr>${r.map((v) => cell(v, 'td')).join('')}</tr>`).join('')}</tbody></table>`
  );
}
