// The data-parallel flags of `densenet train`: --nproc starts local workers (this process is
// then only their launcher); a worker (RANK and WORLD_SIZE set, by the launcher or torchrun)
// joins the c10d group, and ranks above 0 take the run as rank 0 prepared it.
import { Command } from 'commander';
import { Communicator } from '../distributed/communicator';
import { DataParallel } from '../distributed/data-parallel';
import { launchWorkers, parseMaster, workerArgs } from '../distributed/launcher';
import { worldFromEnv } from '../distributed/world';
import type { Dataset } from '../data/dataset';
import type { ModelSpec, ZooModel } from '../zoo';
import type { TrainConfig } from '../train/recipes';
import type { DataSpec } from '../train/checkpoint';
import { openDatasetFromSpec } from '../train/data-spec';
import { parsePositive, parsePositiveInt, parseInteger } from './model-flags';

export interface ParallelFlags {
  nproc?: number;
  nnodes?: number;
  nodeRank?: number;
  master?: string;
  syncBn?: boolean;
  distTimeout?: number;
}

/** Default collective timeout: long enough for rank 0's evaluations, which the others wait out. */
const DEFAULT_TIMEOUT_SECONDS = 1800;

export function addParallelFlags(cmd: Command): Command {
  return cmd
    .option('--nproc <n>', 'data-parallel: start n worker processes here, each training on its shard of every batch', parsePositiveInt('--nproc'))
    .option('--nnodes <n>', 'data-parallel: machines in the run (each runs the same command with its --node-rank)', parsePositiveInt('--nnodes'))
    .option('--node-rank <n>', 'data-parallel: this machine\'s place, 0 to nnodes-1 (0 hosts the rendezvous)', parseInteger('--node-rank'))
    .option('--master <host:port>', 'data-parallel: the rendezvous on the machine of --node-rank 0 (one machine: a free local port)')
    .option('--sync-bn', 'data-parallel: BatchNorm statistics over the global batch (N ranks x B/N train as 1 x B); CPU backends')
    .option('--dist-timeout <s>', `data-parallel: seconds a collective waits for the other ranks (default ${DEFAULT_TIMEOUT_SECONDS})`, parsePositive('--dist-timeout'));
}

/**
 * Starts the workers when --nproc or --nnodes asks for several processes and this is not already
 * a worker; resolves with the launcher's exit status, or undefined to train in this process.
 */
export async function launchIfAsked(flags: ParallelFlags, note: (line: string) => void): Promise<number | undefined> {
  const nproc = flags.nproc ?? 1;
  const nnodes = flags.nnodes ?? 1;
  const nodeRank = flags.nodeRank ?? 0;
  if (worldFromEnv() || nproc * nnodes === 1) return undefined;
  if (nodeRank < 0 || nodeRank >= nnodes) throw new Error(`--node-rank ${nodeRank} must be between 0 and ${nnodes - 1} (--nnodes ${nnodes})`);
  if (nnodes > 1 && !flags.master) throw new Error('--nnodes needs --master host:port, the rendezvous on the machine of --node-rank 0');
  return launchWorkers({
    nproc, nnodes, nodeRank, master: flags.master ? parseMaster(flags.master) : undefined,
    command: [process.execPath, process.argv[1], ...workerArgs(process.argv.slice(2))],
    graceMs: 1000 * (flags.distTimeout ?? DEFAULT_TIMEOUT_SECONDS) + 10_000,
    note,
  });
}

/** This worker's place in the run, joined (undefined outside a data-parallel run). */
export function joinIfWorker(flags: ParallelFlags): DataParallel | undefined {
  const world = worldFromEnv();
  if (!world || world.size === 1) {
    if (flags.syncBn) throw new Error('--sync-bn applies to data-parallel runs (--nproc, --nnodes or torchrun\'s variables)');
    return undefined;
  }
  const comm = Communicator.join(world, { timeoutMs: 1000 * (flags.distTimeout ?? DEFAULT_TIMEOUT_SECONDS) });
  try {
    return new DataParallel(comm, { syncBatchNorm: flags.syncBn ?? false });
  } catch (err) {
    comm.close();
    throw err;
  }
}

interface SharedRun {
  model: ModelSpec;
  data: DataSpec;
  config: TrainConfig;
}

export interface RunFromLeader {
  model: ModelSpec;
  dataset: Dataset;
  config: TrainConfig;
  data: DataSpec;
}

/** Rank 0 tells the run it prepared (fresh or resumed) to the other ranks. */
export function shareRun(parallel: DataParallel, run: { model: ModelSpec | ZooModel; data: DataSpec; config: TrainConfig }): void {
  const model = 'card' in run.model ? run.model.card.spec : run.model;
  parallel.comm.fromLeader<SharedRun>({ model, data: run.data, config: run.config });
}

/** A rank above 0 takes rank 0's run; its data folder is --data or the same path as rank 0's. */
export function receiveRun(parallel: DataParallel, dataDir: string | undefined, note: (line: string) => void): RunFromLeader {
  const shared = parallel.comm.fromLeader<SharedRun>(undefined);
  return { ...shared, dataset: openDatasetFromSpec(shared.data, dataDir, { note }) };
}

/** A worker started by the launcher stops (after its step, with a checkpoint) if the launcher dies. */
export function stopWhenLauncherGoes(stop: { requested: boolean }): void {
  if (!process.send) return;
  process.on('disconnect', () => {
    stop.requested = true;
  });
  process.channel?.unref();
}
