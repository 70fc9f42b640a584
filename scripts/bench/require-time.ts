// How long `require('densenet-zoo')` takes, and then how long `await tf.ready()` plus a
// first tensor op take, each measured in a fresh node process, with the native torch-cpu
// addon present and hidden (DENSENET_TORCH_ADDON pointing nowhere).
//
//   node dist/scripts/bench/require-time.js [--runs 7]
//
// Printed per configuration: the backend tf.ready() chose, and the median (min-max) ms
// over the runs of the require and of ready + first op.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ADDON_ENV, ADDON_PATH } from '../../src/backend/torch-cpu';

const ENTRY = path.resolve(__dirname, '..', '..', 'src', 'index.js');

const CHILD = `
  const started = performance.now();
  const { tf } = require(${JSON.stringify(ENTRY)});
  const required = performance.now();
  tf.ready().then(() => {
    tf.tensor([1, 2, 3, 4]).reshape([2, 2]).add(1).dataSync();
    const firstOp = performance.now();
    console.log(JSON.stringify({ backend: tf.getBackend(), requireMs: required - started, firstOpMs: firstOp - required }));
  });`;

interface Run {
  backend: string;
  requireMs: number;
  firstOpMs: number;
}

function runFresh(env: NodeJS.ProcessEnv): Run {
  const r = spawnSync(process.execPath, ['-e', CHILD], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`child process failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Run;
}

function summary(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  return `${median.toFixed(0)} ms (${sorted[0].toFixed(0)}-${sorted[sorted.length - 1].toFixed(0)})`;
}

function main(): void {
  const i = process.argv.indexOf('--runs');
  const runs = i >= 0 ? Number(process.argv[i + 1]) : 7;
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got '${process.argv[i + 1]}'`);
  const base: NodeJS.ProcessEnv = { ...process.env };
  delete base.DENSENET_BACKEND; // measure the default choice
  const configurations: Array<[string, NodeJS.ProcessEnv]> = [
    [`addon ${fs.existsSync(ADDON_PATH) ? 'present' : 'missing'} (${ADDON_PATH})`, base],
    ['addon hidden', { ...base, [ADDON_ENV]: '/nonexistent/torch_cpu.node' }],
  ];
  console.log(`node ${process.version}; ${runs} fresh processes per configuration; median (min-max)`);
  for (const [label, env] of configurations) {
    const results = Array.from({ length: runs }, () => runFresh(env));
    const backends = [...new Set(results.map((r) => r.backend))].join(', ');
    console.log(`${label}\n  backend ${backends}: require ${summary(results.map((r) => r.requireMs))}, ` +
      `tf.ready() + first op ${summary(results.map((r) => r.firstOpMs))}`);
  }
}

main();
