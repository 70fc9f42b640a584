// Backend selection: the fastest installed backend wins, native packages are loaded
// only on demand (never imported statically), and DENSENET_BACKEND overrides.
import * as tf from '../tf';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmGradientKernels } from './wasm-kernels';
import { registerWasmFusedKernels } from './wasm-fused-kernels';

/** Loads a module by name; injectable so tests can pretend packages are (not) installed. */
export type ModuleLoader = (id: string) => unknown;

export interface BackendCandidate {
  /** Name accepted by `init()` and DENSENET_BACKEND. */
  name: string;
  /** Name the backend registers under in tfjs. */
  tfjsName: string;
  description: string;
  /** npm package that provides it, if any; loading it registers the backend. */
  packageName?: string;
  install: string;
  /** Runs after the backend is set (extra kernels, threads). */
  afterSet?: () => void | Promise<void>;
}

export const BACKEND_ENV = 'DENSENET_BACKEND';

/** In order of preference. Extra backends (the native torch-cpu one) are inserted by `addCandidate`. */
const candidates: BackendCandidate[] = [
  {
    name: 'tensorflow-gpu', tfjsName: 'tensorflow', description: 'libtensorflow with CUDA',
    packageName: '@tensorflow/tfjs-node-gpu',
    install: 'npm install @tensorflow/tfjs-node-gpu@4.22.0 (needs CUDA and network access to download libtensorflow)',
  },
  {
    name: 'tensorflow', tfjsName: 'tensorflow', description: 'libtensorflow on the CPU',
    packageName: '@tensorflow/tfjs-node',
    install: 'npm install @tensorflow/tfjs-node@4.22.0 (needs network access to download libtensorflow)',
  },
  {
    name: 'wasm', tfjsName: 'wasm', description: 'WebAssembly, single-threaded',
    install: 'bundled with densenet-zoo (@tensorflow/tfjs-backend-wasm)',
    afterSet: async () => {
      registerWasmGradientKernels();
      await registerWasmFusedKernels();
    },
  },
  {
    name: 'cpu', tfjsName: 'cpu', description: 'plain JavaScript',
    install: 'bundled with densenet-zoo (@tensorflow/tfjs-backend-cpu)',
  },
];

/** Adds a backend to the preference list before the entry named `before`. */
export function addCandidate(candidate: BackendCandidate, before: string): void {
  const existing = candidates.findIndex((c) => c.name === candidate.name);
  if (existing >= 0) candidates.splice(existing, 1);
  const at = candidates.findIndex((c) => c.name === before);
  candidates.splice(at < 0 ? candidates.length : at, 0, candidate);
}

export function listCandidates(): readonly BackendCandidate[] {
  return candidates;
}

export interface BackendChoice {
  name: string;
  tfjsName: string;
  description: string;
}

export interface InitOptions {
  loader?: ModuleLoader;
  /** Where the one line naming the chosen backend goes; `null` silences it. */
  log?: ((line: string) => void) | null;
  env?: Record<string, string | undefined>;
}

const defaultLoader: ModuleLoader = (id) => require(id);

function isModuleMissing(err: unknown, id: string): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === 'MODULE_NOT_FOUND' && String(e.message).includes(id);
}

/** True when the candidate's package (if any) loads and its backend is registered with our tfjs. */
function tryProvide(c: BackendCandidate, loader: ModuleLoader): boolean {
  if (c.packageName) {
    try {
      loader(c.packageName);
    } catch (err) {
      if (isModuleMissing(err, c.packageName)) return false;
      throw new Error(`backend '${c.name}': loading ${c.packageName} failed: ${(err as Error).message}`);
    }
    if (!tf.findBackendFactory(c.tfjsName)) {
      throw new Error(
        `backend '${c.name}': ${c.packageName} loaded but registered no '${c.tfjsName}' backend with ` +
          `densenet-zoo's copy of @tensorflow/tfjs-core; install the same tfjs version (4.22.0) so npm keeps one copy`,
      );
    }
    return true;
  }
  return tf.findBackendFactory(c.tfjsName) != null;
}

/** Picks the backend without activating it. */
export function choose(requested?: string, options: InitOptions = {}): BackendCandidate {
  const loader = options.loader ?? defaultLoader;
  const env = options.env ?? process.env;
  const wanted = requested ?? env[BACKEND_ENV] ?? undefined;
  if (wanted) {
    const matches = candidates.filter((c) => c.name === wanted || (wanted === 'tensorflow' && c.tfjsName === 'tensorflow'));
    if (matches.length === 0) {
      throw new Error(`unknown backend '${wanted}'; expected one of: ${candidates.map((c) => c.name).join(', ')}`);
    }
    const found = matches.find((c) => tryProvide(c, loader));
    if (!found) {
      throw new Error(`backend '${wanted}' is not installed. To get it: ${matches.map((c) => c.install).join('; or ')}`);
    }
    return found;
  }
  const found = candidates.find((c) => tryProvide(c, loader));
  if (!found) throw new Error('no TensorFlow.js backend could be loaded');
  return found;
}

let active: BackendChoice | undefined;

/** The cpu backend advertises tfjs-node on first use; the chosen backend is already logged once. */
function silenceNodeAdvert(): void {
  const cpu = tf.engine().registry['cpu'] as { firstUse?: boolean } | undefined;
  if (cpu) cpu.firstUse = false;
}

/** Selects and activates a backend (see module comment). Safe to call more than once. */
export async function init(requested?: string, options: InitOptions = {}): Promise<BackendChoice> {
  const c = choose(requested, options);
  if (active && active.name === c.name && tf.getBackend() === c.tfjsName) return active;
  if (!(await tf.setBackend(c.tfjsName))) {
    throw new Error(`backend '${c.name}' failed to initialise`);
  }
  await tf.ready();
  silenceNodeAdvert();
  await c.afterSet?.();
  active = { name: c.name, tfjsName: c.tfjsName, description: c.description };
  const log = options.log === undefined ? (line: string) => process.stderr.write(line + '\n') : options.log;
  log?.(`densenet-zoo: using backend '${c.name}' (${c.description})`);
  return active;
}

/** The active backend, initialising the default one on first use. */
export async function ensure(): Promise<BackendChoice> {
  return active && tf.getBackend() === active.tfjsName ? active : init();
}

// The optional native backend joins the list only after the list exists (torch-cpu.ts imports this module).
// eslint-disable-next-line @typescript-eslint/no-var-requires
(require('./torch-cpu') as typeof import('./torch-cpu')).registerTorchCpuCandidate();
