// Plotly figures as self-contained HTML: plotly.js comes from the npm package
// plotly.js-dist-min and is inlined into the page, never fetched from a CDN,
// so notebooks and saved reports work offline.
import * as crypto from 'crypto';
import * as fs from 'fs';
import type { Config, Data, Layout } from 'plotly.js-dist-min';

export type { Config as PlotlyConfig, Data as PlotlyTrace, Layout as PlotlyLayout };

/** A Plotly figure: traces plus layout and config, as plotly.js takes them. */
export interface Figure {
  data: Data[];
  layout?: Partial<Layout>;
  config?: Partial<Config>;
}

export function isFigure(v: unknown): v is Figure {
  return typeof v === 'object' && v !== null && Array.isArray((v as Figure).data);
}

let bundle: { source: string; version: string } | undefined;

/** The plotly.js bundle shipped in node_modules, read once. */
export function plotlyBundle(): { source: string; version: string } {
  if (bundle) return bundle;
  let file: string;
  try {
    file = require.resolve('plotly.js-dist-min/plotly.min.js');
  } catch {
    throw new Error("plotly: cannot resolve 'plotly.js-dist-min' (a dependency of densenet-zoo); run npm install");
  }
  const source = fs.readFileSync(file, 'utf8');
  const version = /plotly\.js v([\w.-]+)/.exec(source.slice(0, 400))?.[1] ?? 'unknown';
  bundle = { source, version };
  return bundle;
}

/**
 * Makes JavaScript safe inside an inline <script> element: '</script' would
 * end the element early. It can only occur inside string, template or regex
 * literals, where '<\/' means the same as '</'.
 */
export function scriptSafe(js: string): string {
  if (/<!--/.test(js) && /<script/i.test(js)) {
    // '<!--' then '<script' puts the HTML parser into its double-escaped
    // state, where even '</script>' no longer ends the element.
    throw new Error("scriptSafe: the script contains both '<!--' and '<script'; it cannot be inlined safely");
  }
  return js.replace(/<\/(script)/gi, '<\\/$1');
}

/**
 * One <script> that defines window.Plotly. The bundle runs with `define`,
 * `module`, `exports` and `require` shadowed, so that it always takes the
 * browser-global branch of its UMD header: Jupyter classic and the HTML pages
 * of nbconvert load require.js, and an anonymous define() there would leave
 * window.Plotly unset (or fail with a mismatched-anonymous-define error).
 * Where AMD is present the result is also registered as the named module
 * 'plotly' for code that asks for it through require().
 */
export function plotlyLibraryScript(): string {
  const { source, version } = plotlyBundle();
  return (
    `<script type="text/javascript">/* plotly.js v${version} (MIT licence), inlined by densenet-zoo */\n` +
    `(function () {\n` +
    `if (window.Plotly && window.Plotly.newPlot) return;\n` +
    `(function (define, module, exports, require) {\n` +
    scriptSafe(source) +
    `\n}).call(window);\n` +
    `if (!window.Plotly) { console.error('densenet-zoo: plotly.js did not define window.Plotly'); return; }\n` +
    `if (window.moduleName === window.Plotly) { try { delete window.moduleName; } catch (e) { window.moduleName = undefined; } }\n` +
    `var amd = typeof window.define === 'function' && window.define.amd;\n` +
    `var rq = window.requirejs;\n` +
    `var known = rq && rq.defined && (rq.defined('plotly') || (rq.specified && rq.specified('plotly')));\n` +
    `if (amd && !known) window.define('plotly', [], function () { return window.Plotly; });\n` +
    `})();\n` +
    `</script>`
  );
}

/** JSON for inline scripts: typed arrays as arrays, and no '<' characters. */
export function figureJson(fig: Figure): string {
  const json = JSON.stringify(fig, (_key, value) => {
    if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
      return Array.from(value as unknown as ArrayLike<number>);
    }
    return value;
  });
  return json.replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** Defaults that keep charts readable: white template, margins, no logo. */
export function withDefaults(fig: Figure): Figure {
  const layout: Partial<Layout> = {
    template: undefined,
    font: { family: 'DejaVu Sans, Arial, sans-serif', size: 13 },
    margin: { l: 70, r: 30, t: 60, b: 60 },
    height: 420,
    paper_bgcolor: 'white',
    plot_bgcolor: 'white',
    ...fig.layout,
  };
  delete layout.template;
  const config: Partial<Config> = { responsive: true, displaylogo: false, ...fig.config };
  return { data: fig.data, layout, config };
}

let plotCounter = 0;

/**
 * A <div> and the <script> that draws the figure into it once window.Plotly
 * exists (the library script may come later in a Jupyter front end that
 * loads outputs lazily). The id is a hash of the figure plus a counter, so
 * re-running a notebook gives the same HTML; if two outputs still share an
 * id, each script takes the first div with that id that is not yet drawn.
 */
export function figureHtml(fig: Figure): string {
  const full = withDefaults(fig);
  const json = figureJson(full);
  plotCounter += 1;
  const id = `dnz-plot-${crypto.createHash('sha1').update(json).digest('hex').slice(0, 12)}-${plotCounter}`;
  const height = typeof full.layout?.height === 'number' ? full.layout.height : 420;
  return (
    `<div id="${id}" class="dnz-plotly" style="width:100%;min-width:320px;height:${height}px;"></div>\n` +
    `<script type="text/javascript">\n` +
    `(function () {\n` +
    `var fig = ${json};\n` +
    `var id = ${JSON.stringify(id)}, tries = 0;\n` +
    `function target() {\n` +
    `  var els = document.querySelectorAll('div.dnz-plotly[id="' + id + '"]');\n` +
    `  for (var i = 0; i < els.length; i++) if (!els[i].getAttribute('data-dnz-drawn')) return els[i];\n` +
    `  return null;\n` +
    `}\n` +
    `function draw() {\n` +
    `  var el = target();\n` +
    `  if (!el || !window.Plotly) {\n` +
    `    if (++tries < 200) { setTimeout(draw, 50); return; }\n` +
    `    if (el) el.textContent = 'plotly.js is not loaded on this page: run nb.plotlyInit() or the cell of the first chart.';\n` +
    `    return;\n` +
    `  }\n` +
    `  el.setAttribute('data-dnz-drawn', '1');\n` +
    `  window.Plotly.newPlot(el, fig.data, fig.layout, fig.config);\n` +
    `}\n` +
    `draw();\n` +
    `})();\n` +
    `</script>`
  );
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** A complete offline HTML page with plotly.js inlined once and every figure. */
export function standaloneHtml(figs: Figure | readonly Figure[], title = 'densenet-zoo figure'): string {
  const list = isFigure(figs) ? [figs] : figs;
  if (list.length === 0) throw new Error('standaloneHtml: no figures given');
  return (
    `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>${escapeHtml(title)}</title>\n` +
    `<style>body{font-family:'DejaVu Sans',Arial,sans-serif;margin:16px;max-width:1100px}</style>\n` +
    `</head>\n<body>\n` +
    plotlyLibraryScript() +
    '\n' +
    list.map((f) => figureHtml(f)).join('\n') +
    `\n</body>\n</html>\n`
  );
}

// ---------------------------------------------------------------- builders

export interface Series {
  name: string;
  x: ArrayLike<number> | readonly (string | number)[];
  y: ArrayLike<number>;
}

export interface ChartOptions {
  title: string;
  xTitle: string;
  yTitle: string;
  /** Logarithmic y axis (for quantities that grow by orders of magnitude). */
  logY?: boolean;
  height?: number;
}

function axes(o: ChartOptions): Partial<Layout> {
  return {
    title: { text: o.title },
    xaxis: { title: { text: o.xTitle }, gridcolor: '#e5e5e5', zeroline: false },
    yaxis: { title: { text: o.yTitle }, gridcolor: '#e5e5e5', zeroline: false, type: o.logY ? 'log' : 'linear' },
    legend: { orientation: 'h', y: -0.2 },
    ...(o.height ? { height: o.height } : {}),
  };
}

function requireTitles(o: ChartOptions, fn: string): void {
  for (const k of ['title', 'xTitle', 'yTitle'] as const) {
    if (typeof o[k] !== 'string' || o[k].trim() === '') {
      throw new Error(`${fn}: ${k} is required so that the chart says what it shows`);
    }
  }
}

/** One line per series (markers on the points). */
export function lineChart(series: readonly Series[], options: ChartOptions): Figure {
  requireTitles(options, 'lineChart');
  return {
    data: series.map((s) => ({ type: 'scatter', mode: 'lines+markers', name: s.name, x: toPlain(s.x), y: toPlain(s.y) }) as Data),
    layout: axes(options),
  };
}

/** Grouped bars: one colour per series, one group per category. */
export function barChart(
  categories: readonly (string | number)[],
  series: readonly { name: string; values: ArrayLike<number> }[],
  options: ChartOptions & { stacked?: boolean },
): Figure {
  requireTitles(options, 'barChart');
  for (const s of series) {
    if (s.values.length !== categories.length) {
      throw new Error(`barChart: series '${s.name}' has ${s.values.length} values for ${categories.length} categories`);
    }
  }
  return {
    data: series.map((s) => ({ type: 'bar', name: s.name, x: [...categories], y: toPlain(s.values) }) as Data),
    layout: { ...axes(options), barmode: options.stacked ? 'stack' : 'group' },
  };
}

function toPlain<T>(a: ArrayLike<T> | readonly T[]): T[] {
  return Array.from(a);
}
