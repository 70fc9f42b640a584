// Who this process is in a data-parallel run: its rank among all workers, its place on its
// machine and where the rendezvous (rank 0's TCPStore) listens. Read from torchrun's variables,
// which the local launcher also sets for the workers it starts.
import * as os from 'os';

export interface World {
  rank: number;
  size: number;
  localRank: number;
  localSize: number;
  /** Host and port of the rendezvous, on rank 0's machine. */
  masterAddr: string;
  masterPort: number;
}

/** The variables torchrun sets, read the same way here. */
export const WORLD_VARIABLES = ['RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'] as const;

function integerVariable(env: NodeJS.ProcessEnv, name: string, min: number, fallback?: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    if (fallback !== undefined) return fallback;
    throw new Error(`data-parallel training: ${name} is not set (a worker needs ${WORLD_VARIABLES.join(', ')})`);
  }
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`data-parallel training: ${name} must be an integer >= ${min}, got '${raw}'`);
  return n;
}

/** This process's place in a data-parallel run, or undefined when RANK and WORLD_SIZE are not set. */
export function worldFromEnv(env: NodeJS.ProcessEnv = process.env): World | undefined {
  if (env.RANK === undefined && env.WORLD_SIZE === undefined) return undefined;
  const size = integerVariable(env, 'WORLD_SIZE', 1);
  const rank = integerVariable(env, 'RANK', 0);
  if (rank >= size) throw new Error(`data-parallel training: RANK ${rank} is not below WORLD_SIZE ${size}`);
  const localSize = integerVariable(env, 'LOCAL_WORLD_SIZE', 1, size);
  const localRank = integerVariable(env, 'LOCAL_RANK', 0, rank % localSize);
  if (localRank >= localSize) throw new Error(`data-parallel training: LOCAL_RANK ${localRank} is not below LOCAL_WORLD_SIZE ${localSize}`);
  const masterAddr = env.MASTER_ADDR || '127.0.0.1';
  const masterPort = integerVariable(env, 'MASTER_PORT', 1, 29500);
  if (masterPort > 65535) throw new Error(`data-parallel training: MASTER_PORT ${masterPort} is not a TCP port`);
  return { rank, size, localRank, localSize, masterAddr, masterPort };
}

/** Threads for each of `localWorkers` on this machine: the cores shared out, at least one. */
export function threadsPerWorker(localWorkers: number, cores = os.availableParallelism()): number {
  return Math.max(1, Math.floor(cores / localWorkers));
}
