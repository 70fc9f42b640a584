// The package's front door: a small entry point whose `tf` has the chained ops and whose
// `tf.ready()` picks the backend as `backend.init()` does; requiring it (or a subpath
// module) loads no native addon and no wasm binary; each subpath export resolves and is typed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { builtinModules } from 'node:module';
import * as ts from 'typescript';
import { tf, backend } from '../src';
import { ADDON_PATH } from '../src/backend/torch-cpu';

const ROOT = path.resolve(__dirname, '..', '..');
const ENTRY = path.join(ROOT, 'dist', 'src', 'index.js');
const HIDDEN_ADDON = { DENSENET_TORCH_ADDON: path.join(ROOT, 'no-such-dir', 'torch_cpu.node') };

/** Runs `script` in a fresh node process (cwd: the repository, so 'densenet-zoo/...' self-resolves); its last stdout line is JSON. */
function runFresh<T>(script: string, env: Record<string, string> = {}): { out: T; stderr: string } {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (!('DENSENET_BACKEND' in env)) delete childEnv.DENSENET_BACKEND;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, env: childEnv, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { out: JSON.parse(r.stdout.trim().split('\n').pop()!), stderr: r.stderr };
}

test('the entry point exports the small front door', () => {
  const names = Object.keys(require(ENTRY)).filter((n) => n !== '__esModule').sort();
  assert.deepEqual(names, [
    'backend', 'blockChannels', 'countTrainableParams', 'evaluate', 'formatPlan', 'formatSummary', 'plan', 'summarize', 'tf', 'train', 'zoo',
  ]);
});

for (const name of ['cpu', 'wasm']) {
  test(`chained ops work on the package's tf (${name})`, async () => {
    await backend.init(name, { log: null });
    const x = tf.tensor([1, 5, 3, 2]);
    assert.deepEqual(x.reshape([2, 2]).arraySync(), [[1, 5], [3, 2]]);
    assert.deepEqual(x.add(tf.scalar(1)).arraySync(), [2, 6, 4, 3]);
    assert.deepEqual(x.reshape([2, 2]).argMax(-1).arraySync(), [1, 0]);
    // The methods that are not tf.name(x, ...args):
    assert.deepEqual(x.concat(tf.tensor([7])).arraySync(), [1, 5, 3, 2, 7]);
    assert.deepEqual(x.stack(x).shape, [2, 4]);
    assert.deepEqual(x.where(tf.tensor([1, 0, 1, 0], undefined, 'bool'), tf.zeros([4])).arraySync(), [1, 0, 3, 0]);
    assert.equal(x.asType('int32').dtype, 'int32');
    assert.deepEqual(x.as2D(1, 4).flatten().shape, [4]);
    assert.deepEqual(tf.zeros([1, 2, 2, 1]).resizeBilinear([4, 4]).shape, [1, 4, 4, 1]);
    x.dispose();
    assert.throws(() => x.reshape([4]), /disposed/);
  });
}

test("every chained op of tfjs-core's register_all_chained_ops is a Tensor method", () => {
  const dir = path.join(path.dirname(require.resolve('@tensorflow/tfjs-core/package.json')), 'dist', 'public', 'chained_ops');
  const modules = [...fs.readFileSync(path.join(dir, 'register_all_chained_ops.js'), 'utf8').matchAll(/^import '\.\/(\w+)';/gm)]
    .map((m) => m[1]);
  assert.ok(modules.length > 100, `read ${modules.length} chained op modules`);
  const methods = modules.map((m) => /prototype\.(\w+)\s*=/.exec(fs.readFileSync(path.join(dir, `${m}.js`), 'utf8'))![1]);
  const prototype = tf.Tensor.prototype as unknown as Record<string, unknown>;
  assert.deepEqual(methods.filter((name) => typeof prototype[name] !== 'function'), []);
});

test('tf.ready() keeps a backend that was already set', async () => {
  await backend.init('wasm', { log: null });
  await tf.setBackend('cpu');
  await tf.ready();
  assert.equal(tf.getBackend(), 'cpu');
});

test('in a fresh process, await tf.ready() is enough and picks the backend backend.init() would', () => {
  const script = `
    const { tf, backend } = require(${JSON.stringify(ENTRY)});
    (async () => {
      await Promise.all([tf.ready(), tf.ready()]);
      const argMax = tf.tensor([1, 5, 3, 2]).reshape([2, 2]).add(1).argMax(-1).arraySync();
      console.log(JSON.stringify({ argMax, active: tf.getBackend(), chosen: backend.choose().tfjsName }));
    })();`;
  const addonBuilt = fs.existsSync(ADDON_PATH);
  for (const [env, expected] of [
    [{}, addonBuilt ? 'torch-cpu' : 'wasm'],
    [HIDDEN_ADDON, 'wasm'],
    [{ DENSENET_BACKEND: 'cpu' }, 'cpu'],
  ] as const) {
    const { out, stderr } = runFresh<{ argMax: number[]; active: string; chosen: string }>(script, env);
    assert.deepEqual(out.argMax, [1, 0]);
    assert.equal(out.active, out.chosen);
    assert.equal(out.active, expected, JSON.stringify(env));
    assert.equal(stderr, '', 'tf.ready() prints nothing (backend.init() is the call that names the backend)');
  }
});

/**
 * Records native addons (process.dlopen), WebAssembly modules of 1 KB or more, and backend
 * modules in require.cache. (tfjs-core and tfjs-layers each build long.js's 200-byte i64
 * helper module when they load; that is not a backend's binary.)
 */
const PROBE = `
  const loaded = { addons: [], wasmBinaries: [] };
  const dlopen = process.dlopen;
  process.dlopen = function (module, file, ...rest) { loaded.addons.push(file); return dlopen.call(this, module, file, ...rest); };
  const record = (source) => {
    const bytes = source && source.byteLength;
    if (!(bytes < 1024)) loaded.wasmBinaries.push(bytes ?? 'unknown size');
  };
  for (const name of ['instantiate', 'compile']) {
    const original = WebAssembly[name];
    WebAssembly[name] = function (source, ...rest) {
      if (!(source instanceof WebAssembly.Module)) record(source);
      return original.call(this, source, ...rest);
    };
  }
  WebAssembly.Module = new Proxy(WebAssembly.Module, { construct(target, args) { record(args[0]); return new target(...args); } });
  const report = () => ({
    addons: [...loaded.addons],
    wasmBinaries: [...loaded.wasmBinaries],
    cached: Object.keys(require.cache).filter((f) => /tfjs-backend-wasm|wasm-fused-kernels|torch-cpu|tfjs-node|\\.node$/.test(f)),
  });`;

test('requiring the package and its subpath modules loads no native addon and no wasm binary', () => {
  const script = `${PROBE}
    const { tf } = require('densenet-zoo');
    const afterEntry = report();
    for (const sub of ['data', 'weights', 'train', 'measure', 'notebook']) require('densenet-zoo/' + sub);
    const afterSubpaths = report();
    tf.ready().then(() => console.log(JSON.stringify({ afterEntry, afterSubpaths, afterReady: report() })));`;
  type Loaded = { addons: string[]; wasmBinaries: number[]; cached: string[] };
  type Out = { afterEntry: Loaded; afterSubpaths: Loaded; afterReady: Loaded };
  const nothing: Loaded = { addons: [], wasmBinaries: [], cached: [] };
  const wasm = runFresh<Out>(script, { DENSENET_BACKEND: 'wasm' }).out;
  assert.deepEqual(wasm.afterEntry, nothing);
  assert.deepEqual(wasm.afterSubpaths, nothing);
  assert.ok(wasm.afterReady.wasmBinaries.length > 0, 'the probe sees the wasm backend load once it is chosen');
  if (fs.existsSync(ADDON_PATH)) {
    const torch = runFresh<Out>(script, { DENSENET_BACKEND: 'torch-cpu' }).out;
    assert.deepEqual(torch.afterSubpaths, nothing);
    assert.deepEqual(torch.afterReady.addons, [ADDON_PATH], 'the probe sees the addon load once torch-cpu is chosen');
  }
});

const SUBPATHS: Array<[string, string, string]> = [
  ['densenet-zoo', 'index.js', 'summarize'],
  ['densenet-zoo/data', 'data/index.js', 'openDataset'],
  ['densenet-zoo/weights', 'weights/index.js', 'readSafetensors'],
  ['densenet-zoo/train', 'train/index.js', 'evaluate'],
  ['densenet-zoo/measure', 'measure/index.js', 'planMemory'],
  ['densenet-zoo/notebook', 'notebook.js', 'lineChart'],
];

test('each subpath export resolves to its module and exposes its functions', () => {
  for (const [specifier, file, fn] of SUBPATHS) {
    assert.equal(require.resolve(specifier), path.join(ROOT, 'dist', 'src', file));
    assert.equal(typeof require(specifier)[fn], 'function', `${specifier} exports ${fn}`);
  }
});

test('each subpath export type-checks with moduleResolution node', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'front-door-'));
  try {
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'densenet-zoo'), 'dir');
    const file = path.join(dir, 'consumer.ts');
    fs.writeFileSync(file, [
      ...SUBPATHS.map(([specifier, , fn], i) => `import { ${fn} as f${i} } from '${specifier}';`),
      "import { tf, plan, MemoryPlan } from 'densenet-zoo';",
      'export const used = [f0, f1, f2, f3, f4, f5, plan];',
      'export const argMax: tf.Tensor = tf.tensor([1, 2, 3, 4]).reshape([2, 2]).add(1).argMax(-1);',
      'export type Plan = MemoryPlan;',
    ].join('\n'));
    const program = ts.createProgram([file], {
      noEmit: true, strict: true, skipLibCheck: true, esModuleInterop: true,
      module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10,
    });
    const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    assert.deepEqual(problems, []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the notebooks reach the package through its public paths only', () => {
  const dir = path.join(ROOT, 'notebooks');
  const found: string[] = [];
  for (const name of fs.readdirSync(dir).filter((f) => f.endsWith('.ipynb'))) {
    const cells = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')).cells as Array<{ cell_type: string; source: string | string[] }>;
    for (const cell of cells.filter((c) => c.cell_type === 'code')) {
      for (const m of [cell.source].flat().join('').matchAll(/require\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push(`${name}: ${m[1]}`);
    }
  }
  assert.ok(found.length >= 5, `the notebooks require the package: ${found.join(', ')}`);
  const publicPath = /: densenet-zoo(\/(data|weights|train|measure|notebook))?$/;
  const nodeBuiltin = (f: string) => { const spec = f.slice(f.indexOf(': ') + 2); return spec.startsWith('node:') || builtinModules.includes(spec); };
  assert.deepEqual(found.filter((f) => !publicPath.test(f) && !nodeBuiltin(f)), []);
});

test('the experiments reach the package through its public paths only', () => {
  const dir = path.join(ROOT, 'experiments');
  const found: string[] = [];
  for (const name of fs.readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))) {
    const code = fs.readFileSync(path.join(dir, name), 'utf8').split('\n').filter((line) => !/^\s*(\/\/|\/?\*)/.test(line)).join('\n');
    const imports = /\bfrom\s*['"]([^'"]+)['"]|\bimport\s*['"]([^'"]+)['"]|\b(?:require|import)\s*\(\s*['"]([^'"]+)['"]\s*\)/g;
    for (const m of code.matchAll(imports)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (spec.startsWith('../')) found.push(`${name}: ${spec}`);
    }
  }
  assert.ok(found.length >= 10, `the experiments import the package: ${found.join(', ')}`);
  const publicPath = /: \.\.\/src(\/(data|weights|train|measure|notebook))?$/;
  assert.deepEqual(found.filter((f) => !publicPath.test(f)), []);
});
