#!/usr/bin/env node
// Install-time builder of the optional torch-cpu backend (native/, an N-API addon on
// libtorch). It builds from source with node-gyp when libtorch and the node headers
// are on the machine, and otherwise prints one line and exits 0: `npm install`
// never fails and never downloads anything because of it.
//
// libtorch is looked up in this order:
//   LIBTORCH=<dir>       a libtorch directory with include/ and lib/ (as the Rust `tch` crate takes it)
//   Debian/Ubuntu        /usr/include/ATen + /usr/lib/<multiarch>/libtorch_cpu.so (apt-get install libtorch-dev)
// DENSENET_SKIP_NATIVE=1 skips the build; DENSENET_NATIVE_VERBOSE=1 shows node-gyp's output.
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { spawnSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..');
const NATIVE = path.join(ROOT, 'native');
const ADDON = path.join(NATIVE, 'build', 'Release', 'torch_cpu.node');
const C10D_ADDON = path.join(NATIVE, 'build', 'Release', 'densenet_c10d.node');
const STAMP = path.join(NATIVE, 'build', 'densenet-stamp.json');
const LOG = path.join(NATIVE, 'build-native.log');
const PREFIX = 'densenet-zoo: torch-cpu backend';

function exists(p) {
  try {
    fs.accessSync(p);
    return true;
  } catch {
    return false;
  }
}

/** { include, lib, origin } of a usable libtorch, or a string saying why there is none. */
function findLibtorch(env) {
  if (env.LIBTORCH) {
    const dir = path.resolve(env.LIBTORCH);
    const include = path.join(dir, 'include');
    const lib = path.join(dir, 'lib');
    if (!exists(path.join(include, 'ATen', 'ATen.h')) || !exists(path.join(lib, 'libtorch_cpu.so'))) {
      return `LIBTORCH=${dir} has no include/ATen/ATen.h and lib/libtorch_cpu.so`;
    }
    return { include, lib, origin: `LIBTORCH=${dir}` };
  }
  const libDirs = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib'];
  for (const include of ['/usr/include', '/usr/local/include']) {
    if (!exists(path.join(include, 'ATen', 'ATen.h'))) continue;
    const lib = libDirs.find((d) => exists(path.join(d, 'libtorch_cpu.so')));
    if (lib) return { include, lib, origin: `${include}, ${lib}` };
  }
  return 'libtorch not found (Debian/Ubuntu: apt-get install libtorch-dev; elsewhere: set LIBTORCH=<libtorch dir>)';
}

/**
 * Whether the c10d communicator (data-parallel training) can be built: libtorch's c10d headers
 * and Gloo's own (Debian/Ubuntu: apt-get install libgloo-dev), or a string saying what is missing.
 */
function findC10d(include) {
  if (!exists(path.join(include, 'torch', 'csrc', 'distributed', 'c10d', 'ProcessGroupGloo.hpp'))) {
    return 'this libtorch has no c10d headers';
  }
  const gloo = [include, '/usr/include', '/usr/local/include'].find((d) => exists(path.join(d, 'gloo', 'config.h')));
  return gloo ? true : "Gloo's headers are missing (Debian/Ubuntu: apt-get install libgloo-dev)";
}

/** Official libtorch archives come with the old and the new C++ string ABI; match the library's. */
function cxx11Abi(lib) {
  try {
    const bytes = fs.readFileSync(path.join(lib, 'libc10.so'));
    return bytes.includes('__cxx11') ? '1' : '0';
  } catch {
    return '1';
  }
}

/** Node's own headers, so that node-gyp never downloads them. */
function findNodeDir(env) {
  const candidates = [env.npm_config_nodedir, path.resolve(process.execPath, '..', '..')].filter(Boolean);
  return candidates.find((d) => exists(path.join(d, 'include', 'node', 'node_api.h'))) || null;
}

/** node-gyp: the one npm runs scripts with, an installed one, or npm's bundled copy. */
function findNodeGyp(env) {
  const candidates = [];
  if (env.npm_config_node_gyp) candidates.push(env.npm_config_node_gyp);
  try {
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js', { paths: [ROOT] }));
  } catch {
    // not a dependency; try npm's copy
  }
  const prefix = path.resolve(process.execPath, '..', '..');
  candidates.push(path.join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(path.join(path.dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((c) => c.endsWith('.js') && exists(c)) || null;
}

/** What the build depends on: sources, libtorch location and the builder itself. */
function fingerprint(config) {
  const hash = crypto.createHash('sha256');
  hash.update(JSON.stringify(config));
  const files = ['binding.gyp', ...fs.readdirSync(path.join(NATIVE, 'src')).sort().map((f) => path.join('src', f))];
  for (const f of files) hash.update(f).update(fs.readFileSync(path.join(NATIVE, f)));
  hash.update(fs.readFileSync(__filename));
  return hash.digest('hex');
}

function upToDate(stamp) {
  try {
    const built = JSON.parse(fs.readFileSync(STAMP, 'utf8'));
    return exists(ADDON) && (!built.c10d || exists(C10D_ADDON)) && built.fingerprint === stamp;
  } catch {
    return false;
  }
}

function main(env) {
  if (env.DENSENET_SKIP_NATIVE === '1') return `${PREFIX} skipped (DENSENET_SKIP_NATIVE=1); using the default backends`;
  if (process.platform !== 'linux') return `${PREFIX} not built (only Linux builds are set up); using the default backends`;
  if (!exists(path.join(NATIVE, 'binding.gyp'))) return `${PREFIX} not built (native/ sources are not in this package)`;
  const torch = findLibtorch(env);
  if (typeof torch === 'string') return `${PREFIX} not built: ${torch}; using the default backends`;
  const nodeDir = findNodeDir(env);
  if (!nodeDir) return `${PREFIX} not built: node's C headers (include/node/node_api.h) are not installed next to ${process.execPath}`;
  const gyp = findNodeGyp(env);
  if (!gyp) return `${PREFIX} not built: node-gyp not found (it ships with npm; or npm install -g node-gyp)`;

  const c10d = findC10d(torch.include);
  const config = { include: torch.include, lib: torch.lib, abi: cxx11Abi(torch.lib), nodeDir, c10d: c10d === true };
  const c10dLine = c10d === true ? '; data-parallel communicator (c10d/Gloo) too' : `; data-parallel communicator not built: ${c10d}`;
  const stamp = fingerprint(config);
  if (upToDate(stamp)) return `${PREFIX} is up to date (libtorch: ${torch.origin})${c10dLine}`;

  const buildEnv = {
    ...env,
    TORCH_CPU_INCLUDE: config.include,
    TORCH_CPU_LIB: config.lib,
    TORCH_CPU_CXX11_ABI: config.abi,
    TORCH_C10D: config.c10d ? '1' : '0',
  };
  const args = [gyp, 'rebuild', `--nodedir=${nodeDir}`, '--jobs=max'];
  const verbose = env.DENSENET_NATIVE_VERBOSE === '1';
  const started = Date.now();
  const run = spawnSync(process.execPath, args, {
    cwd: NATIVE, env: buildEnv, encoding: 'utf8', stdio: verbose ? 'inherit' : 'pipe', maxBuffer: 64 << 20,
  });
  if (!verbose) fs.writeFileSync(LOG, `${run.stdout || ''}${run.stderr || ''}`);
  if (run.status !== 0 || !exists(ADDON) || (config.c10d && !exists(C10D_ADDON))) {
    const why = run.error ? run.error.message : `node-gyp exited with ${run.status}`;
    return `${PREFIX} not built: the build failed (${why}; see ${verbose ? 'the output above' : LOG}); using the default backends`;
  }
  fs.writeFileSync(STAMP, JSON.stringify({ fingerprint: stamp, ...config }, null, 2));
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  return `${PREFIX} built in ${seconds} s against libtorch at ${torch.origin}${c10dLine}`;
}

if (require.main === module) {
  let line;
  try {
    line = main(process.env);
  } catch (err) {
    line = `${PREFIX} not built: ${err && err.message ? err.message : err}; using the default backends`;
  }
  console.log(line);
  process.exitCode = 0;
}

module.exports = { findC10d, findLibtorch, findNodeGyp, findNodeDir, main };
