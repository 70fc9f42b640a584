// The optional 'webgpu' backend: @tensorflow/tfjs-backend-webgpu in Node through the `webgpu`
// package (Dawn, with prebuilt binaries in the npm package: Vulkan on Linux, Metal on macOS,
// D3D12 on Windows). Chosen automatically only where Dawn finds a hardware adapter; a software
// one (SwiftShader, lavapipe) is slower than the CPU backends and is used only when asked for.
import * as fs from 'fs';

export const WEBGPU = 'webgpu';
const DAWN_PACKAGE = 'webgpu';
const BACKEND_PACKAGE = '@tensorflow/tfjs-backend-webgpu';

/**
 * Debian's chromium package ships SwiftShader's Vulkan driver. It is offered to the Vulkan loader
 * beside the system's drivers (Dawn still prefers a hardware adapter), so that the software
 * adapter can be reported, and used when asked for.
 */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

export interface WebGpuAdapter {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A CPU implementation of the API (SwiftShader, lavapipe/llvmpipe, WARP). */
  software: boolean;
  limits: { maxStorageBufferBindingSize: number; maxBufferSize: number; maxComputeWorkgroupStorageSize: number };
}

export interface WebGpuProbe {
  adapter: WebGpuAdapter | null;
  /** Whether the backend may run on it: a hardware adapter, or a software one when that was allowed. */
  usable: boolean;
  /** Why the backend is or is not usable here, in one line. */
  reason: string;
}

export const WEBGPU_INSTALL =
  `npm install ${DAWN_PACKAGE} ${BACKEND_PACKAGE}@4.22.0 (optional dependencies of densenet-zoo) and a GPU driver with ` +
  'Vulkan (Linux), Metal (macOS) or D3D12 (Windows); for the software driver on Debian/Ubuntu: apt-get install chromium libvulkan1';

interface Dawn {
  create(options: string[]): { requestAdapter(o?: object): Promise<RawAdapter | null> };
  globals: Record<string, unknown>;
}

interface RawAdapter {
  info?: { vendor: string; architecture: string; device: string; description: string; isFallbackAdapter?: boolean };
  isFallbackAdapter?: boolean;
  limits: Record<string, number>;
}

// The `webgpu` package is an ES module; TypeScript's CommonJS output would turn import() into require().
const importModule = new Function('id', 'return import(id)') as (id: string) => Promise<unknown>;

function installed(id: string): boolean {
  try {
    require.resolve(id);
    return true;
  } catch {
    return false;
  }
}

/** Both packages are present (nothing is loaded). */
export function webgpuPackagesInstalled(): boolean {
  return installed(DAWN_PACKAGE) && installed(BACKEND_PACKAGE);
}

const SOFTWARE = /swiftshader|llvmpipe|lavapipe|softpipe|microsoft basic render|warp/i;

function describe(raw: RawAdapter): WebGpuAdapter {
  const info = raw.info ?? { vendor: '', architecture: '', device: '', description: '' };
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  return {
    vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description,
    software: Boolean(raw.isFallbackAdapter ?? info.isFallbackAdapter) || SOFTWARE.test(text),
    limits: {
      maxStorageBufferBindingSize: raw.limits.maxStorageBufferBindingSize,
      maxBufferSize: raw.limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: raw.limits.maxComputeWorkgroupStorageSize,
    },
  };
}

let gpu: ReturnType<Dawn['create']> | undefined;

/** Dawn's navigator.gpu, created once; the user's own choice of Vulkan drivers (VK_* variables) is left alone. */
async function dawnGpu(): Promise<ReturnType<Dawn['create']>> {
  if (gpu) return gpu;
  const env = process.env;
  const driversChosen = env.VK_ICD_FILENAMES || env.VK_DRIVER_FILES || env.VK_ADD_DRIVER_FILES;
  if (!driversChosen && fs.existsSync(SWIFTSHADER_ICD)) env.VK_ADD_DRIVER_FILES = SWIFTSHADER_ICD;
  const dawn = (await importModule(DAWN_PACKAGE)) as Dawn;
  Object.assign(globalThis, dawn.globals); // GPUBufferUsage and the other constants the backend reads
  gpu = dawn.create([]);
  return gpu;
}

/** The adapter Dawn offers the backend (high-performance first), and whether the backend may use it. */
export async function probeWebGpu(options: { allowSoftware: boolean }): Promise<WebGpuProbe> {
  lastProbe = await probe(options);
  return lastProbe;
}

let lastProbe: WebGpuProbe | undefined;

/** The backend's description: the adapter, once probed. */
export function webgpuDescription(): string {
  const a = lastProbe?.adapter;
  return a ? `Dawn on ${a.vendor} ${a.architecture} (${a.description})${a.software ? ', a software adapter' : ''}` : 'Dawn (WebGPU)';
}

async function probe(options: { allowSoftware: boolean }): Promise<WebGpuProbe> {
  if (!webgpuPackagesInstalled()) return { adapter: null, usable: false, reason: `not installed: ${WEBGPU_INSTALL}` };
  let raw: RawAdapter | null;
  try {
    raw = await (await dawnGpu()).requestAdapter({ powerPreference: 'high-performance' });
  } catch (err) {
    return { adapter: null, usable: false, reason: `Dawn failed to start: ${(err as Error).message}` };
  }
  if (!raw) return { adapter: null, usable: false, reason: 'Dawn found no GPU adapter (no Vulkan/Metal/D3D12 driver that Dawn supports)' };
  const adapter = describe(raw);
  const name = `${adapter.vendor} ${adapter.architecture} (${adapter.description})`.trim();
  if (adapter.software && !options.allowSoftware) {
    return { adapter, usable: false, reason: `only a software adapter, ${name}: slower than the CPU backends, used only with DENSENET_BACKEND=webgpu` };
  }
  return { adapter, usable: true, reason: `${adapter.software ? 'software' : 'hardware'} adapter ${name}` };
}

/**
 * Makes navigator.gpu Dawn's and registers tfjs's webgpu backend, which reads navigator.gpu when
 * it is loaded. True when an adapter the caller accepts is there.
 */
export async function registerWebGpuBackend(options: { allowSoftware: boolean }): Promise<WebGpuProbe & { registered: boolean }> {
  const probe = await probeWebGpu(options);
  if (!probe.usable) return { ...probe, registered: false };
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (!g.navigator) g.navigator = {};
  if (!g.navigator.gpu) Object.defineProperty(g.navigator, 'gpu', { value: await dawnGpu(), configurable: true });
  require(BACKEND_PACKAGE); // registers 'webgpu' with our tfjs-core
  return { ...probe, registered: true };
}
