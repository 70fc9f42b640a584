// Backend selection: preference order, the DENSENET_BACKEND override and clear errors,
// with the native packages absent or faked through an injected module loader.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../src/tf';
import { choose, init, listCandidates, ModuleLoader } from '../src/backend';

function missing(id: string): never {
  const err = new Error(`Cannot find module '${id}'`) as Error & { code: string };
  err.code = 'MODULE_NOT_FOUND';
  throw err;
}

/** A loader where only the packages in `present` exist; loading one runs its `onLoad`. */
function loader(present: Record<string, () => void> = {}): ModuleLoader {
  return (id) => (present[id] ? present[id]() : missing(id));
}

const NO_ENV = { env: {} };

test('without native packages the WebAssembly backend is chosen', () => {
  const names = listCandidates().map((c) => c.name);
  assert.ok(names.indexOf('tensorflow-gpu') < names.indexOf('tensorflow'));
  assert.ok(names.indexOf('tensorflow') < names.indexOf('wasm'));
  assert.ok(names.indexOf('wasm') < names.indexOf('cpu'));
  // torch-cpu (the optional native addon) may sit before wasm; make it absent here too.
  const chosen = choose(undefined, { ...NO_ENV, loader: loader() });
  assert.ok(['wasm', 'torch-cpu'].includes(chosen.name));
});

test('an installed tfjs-node-gpu wins over everything, tfjs-node over wasm', () => {
  const fake = () => {
    if (!tf.findBackendFactory('tensorflow')) tf.registerBackend('tensorflow', () => tf.findBackend('cpu')!, -100);
  };
  try {
    assert.equal(choose(undefined, { ...NO_ENV, loader: loader({ '@tensorflow/tfjs-node-gpu': fake }) }).name, 'tensorflow-gpu');
    assert.equal(choose(undefined, { ...NO_ENV, loader: loader({ '@tensorflow/tfjs-node': fake }) }).name, 'tensorflow');
    assert.equal(choose('tensorflow', { ...NO_ENV, loader: loader({ '@tensorflow/tfjs-node': fake }) }).name, 'tensorflow');
  } finally {
    tf.removeBackend('tensorflow');
  }
});

test('DENSENET_BACKEND overrides the order', () => {
  assert.equal(choose(undefined, { env: { DENSENET_BACKEND: 'cpu' }, loader: loader() }).name, 'cpu');
  assert.equal(choose('wasm', { env: { DENSENET_BACKEND: 'cpu' }, loader: loader() }).name, 'wasm', 'an explicit argument beats the variable');
});

test('a requested backend that is not installed says how to install it', () => {
  assert.throws(() => choose('tensorflow', { ...NO_ENV, loader: loader() }),
    /backend 'tensorflow' is not installed\. To get it: npm install @tensorflow\/tfjs-node-gpu@4\.22\.0.*; or npm install @tensorflow\/tfjs-node@4\.22\.0/);
  assert.throws(() => choose(undefined, { env: { DENSENET_BACKEND: 'webgl' }, loader: loader() }),
    /unknown backend 'webgl'; expected one of: tensorflow-gpu, webgpu, tensorflow, .*wasm, cpu/);
});

test('a package that loads but registers no backend with our tfjs is a clear error', () => {
  assert.throws(() => choose('tensorflow', { ...NO_ENV, loader: loader({ '@tensorflow/tfjs-node-gpu': () => undefined }) }),
    /@tensorflow\/tfjs-node-gpu loaded but registered no 'tensorflow' backend with densenet-zoo's copy of @tensorflow\/tfjs-core/);
});

test('init activates the chosen backend and logs one line naming it', async () => {
  const lines: string[] = [];
  const chosen = await init('cpu', { loader: loader(), log: (l) => lines.push(l) });
  assert.equal(chosen.name, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
  await init('wasm', { loader: loader(), log: (l) => lines.push(l) });
  assert.equal(tf.getBackend(), 'wasm');
  assert.deepEqual(lines, ["densenet-zoo: using backend 'cpu' (plain JavaScript)", "densenet-zoo: using backend 'wasm' (WebAssembly, single-threaded)"]);
});
