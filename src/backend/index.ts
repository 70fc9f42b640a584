// Backend selection: the fastest installed backend wins, DENSENET_BACKEND overrides.
// Nothing is loaded until a backend is chosen: not the optional tfjs-node packages, not
// the bundled cpu and wasm packages, not the native torch-cpu addon.
import * as tf from '../tf';

/** Loads a module by name; injectable so tests can pretend packages are (not) installed. */
export type ModuleLoader = (id: string) => unknown;

export interface BackendCandidate {
  /** Name accepted by `init()` and DENSENET_BACKEND. */
  name: string;
  /** Name the backend registers under in tfjs. */
  tfjsName: string;
  readonly description: string;
  /** Optional npm package that provides it; loading it (through the `ModuleLoader`) registers the backend. */
  packageName?: string;
  /** Instead of a package, for a backend that ships with densenet-zoo: loads and registers it; false when it cannot run here. */
  register?: () => boolean;
  /**
   * For a backend that must look for a device first (webgpu): whether its packages are there
   * (sync, nothing loaded), and the async registration that probes the device; `forced` when
   * the user asked for this backend by name.
   */
  probe?: { installed: () => boolean; register: (forced: boolean) => Promise<{ registered: boolean; reason: string }> };
  readonly install: string;
  /** Runs after the backend is set (extra kernels, threads). */
  afterSet?: () => void | Promise<void>;
}

export const BACKEND_ENV = 'DENSENET_BACKEND';

// Required on first use, not at the top, so that requiring the package loads no addon or wasm.
const torchCpu = () => require('./torch-cpu') as typeof import('./torch-cpu');
const wasmGradientKernels = () => require('./wasm-kernels') as typeof import('./wasm-kernels');
const wasmFusedKernels = () => require('./wasm-fused-kernels') as typeof import('./wasm-fused-kernels');
const webgpu = () => require('./webgpu') as typeof import('./webgpu');
const webgpuKernels = () => require('./webgpu-kernels') as typeof import('./webgpu-kernels');

export type { TorchCpuInfo } from './torch-cpu';
export type { WebGpuProbe } from './webgpu';

/** The GPU adapter Dawn offers webgpu and whether it would be chosen without DENSENET_BACKEND (loads Dawn when installed). */
export function webgpuProbe(): Promise<import('./webgpu').WebGpuProbe> {
  return webgpu().probeWebGpu({ allowSoftware: false });
}

/** The torch-cpu addon: whether it loads here, its libtorch version, threads and buffer pool (loads the addon on first call). */
export function torchCpuInfo(): import('./torch-cpu').TorchCpuInfo {
  return torchCpu().torchCpuInfo();
}

/** In order of preference. */
const candidates: readonly BackendCandidate[] = [
  {
    name: 'tensorflow-gpu', tfjsName: 'tensorflow', description: 'libtensorflow with CUDA',
    packageName: '@tensorflow/tfjs-node-gpu',
    install: 'npm install @tensorflow/tfjs-node-gpu@4.22.0 (needs CUDA and network access to download libtensorflow)',
  },
  {
    name: 'webgpu', tfjsName: 'webgpu',
    get description() { return webgpu().webgpuDescription(); },
    get install() { return webgpu().WEBGPU_INSTALL; },
    probe: {
      installed: () => webgpu().webgpuPackagesInstalled(),
      register: (forced) => webgpu().registerWebGpuBackend({ allowSoftware: forced }),
    },
    afterSet: () => webgpuKernels().registerWebGpuKernels(),
  },
  {
    name: 'tensorflow', tfjsName: 'tensorflow', description: 'libtensorflow on the CPU',
    packageName: '@tensorflow/tfjs-node',
    install: 'npm install @tensorflow/tfjs-node@4.22.0 (needs network access to download libtensorflow)',
  },
  {
    name: 'torch-cpu', tfjsName: 'torch-cpu',
    // Both name the libtorch version or why the addon did not load, once it was tried.
    get description() { return torchCpu().torchCpuDescription(); },
    get install() { return torchCpu().torchCpuInstallHint(); },
    register: () => torchCpu().registerTorchCpuBackend(),
    afterSet: () => torchCpu().setTorchCpuThreads(torchCpu().threadsFromEnv()),
  },
  {
    name: 'wasm', tfjsName: 'wasm', description: 'WebAssembly, single-threaded',
    install: 'bundled with densenet-zoo (@tensorflow/tfjs-backend-wasm)',
    register: () => {
      require('@tensorflow/tfjs-backend-wasm'); // registers 'wasm'; its binary loads when the backend is set
      return true;
    },
    afterSet: async () => {
      wasmGradientKernels().registerWasmGradientKernels();
      await wasmFusedKernels().registerWasmFusedKernels();
    },
  },
  {
    name: 'cpu', tfjsName: 'cpu', description: 'plain JavaScript',
    install: 'bundled with densenet-zoo (@tensorflow/tfjs-backend-cpu)',
    register: () => {
      require('@tensorflow/tfjs-backend-cpu'); // registers 'cpu'
      return true;
    },
  },
];

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

/** True when the candidate's backend is registered with our tfjs, loading its package or module first. */
function tryProvide(c: BackendCandidate, loader: ModuleLoader): boolean {
  if (c.probe) return c.probe.installed();
  if (!c.packageName) return c.register!();
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

function wantedBackend(requested: string | undefined, options: InitOptions): string | undefined {
  return requested ?? (options.env ?? process.env)[BACKEND_ENV] ?? undefined;
}

/**
 * Picks the backend without activating it. A backend that must probe for a device (webgpu) is
 * picked only when asked for by name; `init` probes it before the others.
 */
export function choose(requested?: string, options: InitOptions = {}): BackendCandidate {
  const loader = options.loader ?? defaultLoader;
  const wanted = wantedBackend(requested, options);
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
  const found = candidates.find((c) => !c.probe && tryProvide(c, loader));
  if (!found) throw new Error('no TensorFlow.js backend could be loaded');
  return found;
}

/** `choose`, with the device probes: a probed backend ahead of the pick wins when its device is there. */
async function chooseProbing(requested: string | undefined, options: InitOptions): Promise<BackendCandidate> {
  const c = choose(requested, options);
  if (c.probe) {
    const r = await c.probe.register(true);
    if (!r.registered) throw new Error(`backend '${c.name}' cannot run here: ${r.reason}`);
    return c;
  }
  if (wantedBackend(requested, options)) return c;
  for (const ahead of candidates.slice(0, candidates.indexOf(c))) {
    if (ahead.probe?.installed() && (await ahead.probe.register(false)).registered) return ahead;
  }
  return c;
}

let active: BackendChoice | undefined;

/** The cpu backend advertises tfjs-node on first use; the chosen backend is already logged once. */
function silenceNodeAdvert(): void {
  const cpu = tf.engine().registry['cpu'] as { firstUse?: boolean } | undefined;
  if (cpu) cpu.firstUse = false;
}

/** Selects and activates a backend (see module comment). Safe to call more than once. */
export async function init(requested?: string, options: InitOptions = {}): Promise<BackendChoice> {
  const c = await chooseProbing(requested, options);
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

let initialising: Promise<BackendChoice> | undefined;

/**
 * The active backend, initialising the default one on first use (once, however many callers wait).
 * Silent, as library code should be: `backend.init()` is the call that names the backend it chose.
 */
export function ensure(): Promise<BackendChoice> {
  if (active && tf.getBackend() === active.tfjsName) return Promise.resolve(active);
  initialising ??= init(undefined, { log: null }).finally(() => {
    initialising = undefined;
  });
  return initialising;
}
