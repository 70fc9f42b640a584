// The shape of src/: the relative imports of every module (type-only ones, require() and
// import() included) form no cycle, and no module imports from a floor above its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { PACKAGE_ROOT } from '../src/package-root';

const SRC = path.join(PACKAGE_ROOT, 'src');

/**
 * Bottom to top; a room is a folder of src/ or a file at its top. A module may import its own
 * floor (no cycle allowed, see below) and any floor beneath.
 */
const FLOORS: string[][] = [
  ['package-root', 'process-memory', 'json-error', 'random', 'tf'],
  ['core'],
  // Registers kernels of core/ with tfjs.
  ['backend'],
  ['layers'],
  ['models'],
  ['weights', 'data', 'viz', 'distributed'],
  ['inference'],
  ['zoo'],
  ['measure', 'train'],
  ['cli'],
  ['index', 'notebook'],
];

/** Imports allowed to break the rules for now, each to be removed by whoever owns its file. */
const KNOWN_EXCEPTIONS: Array<{ from: string; to: string; why: string }> = [
  // src/tf.ts's ready() requires src/backend lazily (ensure()), an arrow up from the bottom floor and
  // the cycle tf -> backend/index -> backend/torch-cpu -> core/fused-kernels -> tf. Owned by the backend work.
  { from: 'src/tf.ts', to: 'src/backend/index.ts', why: 'tf.ready() picks a backend' },
];

type Graph = Map<string, string[]>;

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

// `import ... from '...'`, `export ... from '...'`, `import '...'`, `require('...')`, `import('...')`.
const IMPORT = /(?:^|[\s;])(?:import|export)\s[^;'"]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|\b(?:require|import)\s*\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Relative specifiers a file imports; comment lines are left out. */
function importsOf(source: string): string[] {
  const code = source.split('\n').filter((line) => !/^\s*(\/\/|\/?\*)/.test(line)).join('\n');
  return [...code.matchAll(IMPORT)].map((m) => m[1] ?? m[2] ?? m[3]).filter((spec) => spec.startsWith('.'));
}

function resolveImport(from: string, spec: string): string {
  const base = path.resolve(path.dirname(from), spec);
  const found = [`${base}.ts`, path.join(base, 'index.ts'), base].find((p) => fs.existsSync(p) && fs.statSync(p).isFile());
  assert.ok(found, `${relative(from)} imports '${spec}', which resolves to no file`);
  return found;
}

function relative(file: string): string {
  return path.relative(PACKAGE_ROOT, file).split(path.sep).join('/');
}

function importGraph(): Graph {
  const graph: Graph = new Map();
  for (const file of sourceFiles(SRC)) {
    const from = relative(file);
    const targets = importsOf(fs.readFileSync(file, 'utf8')).map((spec) => relative(resolveImport(file, spec)));
    const kept = targets.filter((to) => to.startsWith('src/') && !KNOWN_EXCEPTIONS.some((e) => e.from === from && e.to === to));
    graph.set(from, [...new Set(kept)]);
  }
  return graph;
}

/** The first cycle found, as a path that ends where it starts; undefined if there is none. */
function findCycle(graph: Graph): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') return [...stack.slice(stack.indexOf(next)), next];
      const cycle = state.has(next) ? undefined : visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of [...graph.keys()].sort()) {
    const cycle = state.has(node) ? undefined : visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

function roomOf(file: string): string {
  const parts = file.replace(/^src\//, '').split('/');
  return parts.length > 1 ? parts[0] : parts[0].replace(/\.(ts|json)$/, '');
}

function floorOf(file: string): number {
  const room = roomOf(file);
  const floor = FLOORS.findIndex((rooms) => rooms.includes(room));
  assert.ok(floor >= 0, `${file}: room '${room}' is on no floor of test/architecture.test.ts`);
  return floor;
}

test('the import parser sees every form of import and skips comments', () => {
  const source = [
    "import * as tf from '../tf';",
    "import type { A } from './a';",
    "import {\n  B,\n  C,\n} from './b';",
    "export { D } from './d';",
    "export * from './e';",
    "import './side-effect';",
    "const f = require('./f') as typeof import('./g');",
    "import { readFileSync } from 'fs';",
    "// see require('./commented')",
  ].join('\n');
  assert.deepEqual(importsOf(source), ['../tf', './a', './b', './d', './e', './side-effect', './f', './g']);
});

test('src/ has no import cycle', () => {
  const cycle = findCycle(importGraph());
  assert.equal(cycle, undefined, `import cycle: ${cycle?.join(' -> ')}`);
});

test('no module of src/ imports from a floor above its own', () => {
  const upward: string[] = [];
  for (const [from, targets] of importGraph()) {
    for (const to of targets) {
      if (floorOf(to) > floorOf(from)) upward.push(`${from} (${roomOf(from)}) -> ${to} (${roomOf(to)})`);
    }
  }
  assert.deepEqual(upward, [], `imports up a floor:\n${upward.join('\n')}`);
});

test('every known exception is still there (remove it from the list once fixed)', () => {
  for (const e of KNOWN_EXCEPTIONS) {
    const targets = importsOf(fs.readFileSync(path.join(PACKAGE_ROOT, e.from), 'utf8')).map((spec) =>
      relative(resolveImport(path.join(PACKAGE_ROOT, e.from), spec)));
    assert.ok(targets.includes(e.to), `${e.from} no longer imports ${e.to}: remove the exception`);
  }
});
