// The collectives of data-parallel training, on PyTorch's c10d (a TCPStore rendezvous and a
// Gloo process group) through the native addon's second target. A failed collective, as when
// a peer dies, becomes an error that names the ranks that are gone where this machine can tell.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PACKAGE_ROOT } from '../package-root';
import type { World } from './world';

export const C10D_ADDON_ENV = 'DENSENET_C10D_ADDON';
/** Where scripts/build-native.js puts the communicator; DENSENET_C10D_ADDON overrides it. */
export const C10D_ADDON_PATH = process.env[C10D_ADDON_ENV] || path.join(PACKAGE_ROOT, 'native', 'build', 'Release', 'densenet_c10d.node');

export type ReduceOp = 'sum' | 'mean' | 'max';

interface NativeGroup {
  allreduce(arrays: Float32Array[], op: ReduceOp): void;
  broadcast(arrays: Float32Array[], root: number): void;
  barrier(): void;
  storeSet(key: string, value: string): void;
  storeGet(key: string): string;
  close(): void;
}

interface C10dAddon {
  createGroup(opts: { host: string; port: number; rank: number; worldSize: number; timeoutMs: number; interface: string }): NativeGroup;
}

const INSTALL_HINT = 'data-parallel training needs the c10d communicator, built by `npm install` where libtorch and Gloo are installed ' +
  '(Debian/Ubuntu: apt-get install libtorch-dev libgloo-dev, then npm rebuild densenet-zoo)';

function loadAddon(): C10dAddon {
  try {
    return require(C10D_ADDON_PATH) as C10dAddon;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'MODULE_NOT_FOUND' ? `${C10D_ADDON_PATH} is missing` : `${C10D_ADDON_PATH} failed to load: ${String(e.message).split('\n')[0]}`;
    throw new Error(`${INSTALL_HINT}; ${why}`);
  }
}

/** Whether the communicator is built here, and why not. */
export function communicatorStatus(): { available: boolean; reason: string } {
  try {
    loadAddon();
    return { available: true, reason: '' };
  } catch (err) {
    return { available: false, reason: (err as Error).message };
  }
}

interface Peer {
  rank: number;
  host: string;
  pid: number;
}

/** A collective that could not complete: a rank died or hung past the timeout. */
export class CollectiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CollectiveError';
  }
}

/** Whether a process of this machine still runs; a zombie (killed, not yet reaped by its parent) does not. */
function processAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && fs.existsSync('/proc/self/stat')) return false;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface JoinOptions {
  /** How long a collective (and the rendezvous) may wait for the other ranks. */
  timeoutMs: number;
  /** Network interface Gloo binds to (GLOO_SOCKET_IFNAME); default: the master's loopback or this host's name. */
  interface?: string;
}

export class Communicator {
  private peers: Peer[] = [];
  private shared = 0;

  private constructor(readonly world: World, private readonly group: NativeGroup) {}

  /** Joins the group: rank 0 hosts the store, every rank waits until all have joined. */
  static join(world: World, opts: JoinOptions): Communicator {
    const addon = loadAddon();
    const group = addon.createGroup({
      host: world.masterAddr, port: world.masterPort, rank: world.rank, worldSize: world.size,
      timeoutMs: opts.timeoutMs, interface: opts.interface ?? process.env.GLOO_SOCKET_IFNAME ?? '',
    });
    const c = new Communicator(world, group);
    group.storeSet(`peer/${world.rank}`, JSON.stringify({ rank: world.rank, host: os.hostname(), pid: process.pid }));
    c.peers = Array.from({ length: world.size }, (_, r) => JSON.parse(group.storeGet(`peer/${r}`)) as Peer);
    return c;
  }

  get rank(): number {
    return this.world.rank;
  }

  get size(): number {
    return this.world.size;
  }

  /** In place, on every rank: each array becomes the sum (mean, max) of that array over the ranks. */
  allreduce(arrays: Float32Array[], op: ReduceOp = 'sum'): void {
    this.guard('allreduce', () => this.group.allreduce(arrays, op));
  }

  /** In place: every rank's arrays become `root`'s. */
  broadcast(arrays: Float32Array[], root = 0): void {
    this.guard('broadcast', () => this.group.broadcast(arrays, root));
  }

  barrier(): void {
    this.guard('barrier', () => this.group.barrier());
  }

  /** A JSON value from rank 0 to every rank (rank 0 passes it, the others receive it). */
  fromLeader<T>(value: T | undefined): T {
    const key = `shared/${this.shared++}`;
    return this.guard('store', () => {
      if (this.rank === 0) {
        this.group.storeSet(key, JSON.stringify(value ?? null));
        return value as T;
      }
      return JSON.parse(this.group.storeGet(key)) as T;
    });
  }

  close(): void {
    this.group.close();
  }

  private guard<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw new CollectiveError(`${(err as Error).message}; ${this.describeLostPeers()}`);
    }
  }

  /** Which ranks are gone, as far as this machine can see (processes here; rank 0 hosts the store). */
  private describeLostPeers(): string {
    const here = os.hostname();
    const gone = this.peers.filter((p) => p.rank !== this.rank && p.host === here && !processAlive(p.pid));
    if (gone.length) return `${gone.map((p) => `rank ${p.rank} (pid ${p.pid})`).join(', ')} ${gone.length > 1 ? 'have' : 'has'} stopped`;
    const remote = this.peers.filter((p) => p.host !== here).map((p) => p.rank);
    return remote.length
      ? `a rank on another machine (ranks ${remote.join(', ')}) stopped, hung past the timeout or cannot be reached`
      : 'another rank hung past the timeout';
  }
}
