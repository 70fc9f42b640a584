// Starts the workers of a data-parallel run on this machine, as torchrun does: each is the same
// command with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT set.
// Ctrl-C is passed on to every worker (they stop together after a step, rank 0 checkpoints); a
// worker that dies is named, and the others, which fail at their next collective, are given
// `graceMs` to exit before they are killed.
import { ChildProcess, spawn } from 'child_process';
import * as net from 'net';
import { threadsPerWorker } from './world';

export interface LaunchOptions {
  /** Workers on this machine. */
  nproc: number;
  nnodes: number;
  nodeRank: number;
  /** Rank 0's machine; default (one machine) 127.0.0.1 and a free port. */
  master?: { host: string; port: number };
  /** The worker command: the program and its arguments. */
  command: [string, ...string[]];
  env?: NodeJS.ProcessEnv;
  /** How long the others may take to stop once one worker has failed. */
  graceMs: number;
  note: (line: string) => void;
}

/** A free TCP port on loopback, for the rendezvous of a one-machine run. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** The flags of the launcher, which its workers must not see again. */
const LAUNCHER_FLAGS = ['--nproc', '--nnodes', '--node-rank', '--master'];

export function workerArgs(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (LAUNCHER_FLAGS.includes(a)) i++;
    else if (!LAUNCHER_FLAGS.some((f) => a.startsWith(`${f}=`))) out.push(a);
  }
  return out;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was killed by ${signal}` : `exited with status ${code}`;
}

/** Runs the workers to the end; resolves with the exit status for the launcher. */
export async function launchWorkers(opts: LaunchOptions): Promise<number> {
  const { nproc, nnodes, nodeRank } = opts;
  const master = opts.master ?? { host: '127.0.0.1', port: await freePort() };
  const env = opts.env ?? process.env;
  const threads = env.DENSENET_THREADS ?? String(threadsPerWorker(nproc));
  const size = nproc * nnodes;
  opts.note(`data-parallel: ${size} ranks (${nproc} here, ${threads} thread${threads === '1' ? '' : 's'} each), rendezvous at ${master.host}:${master.port}`);
  const exits: Array<{ rank: number; code: number | null; signal: NodeJS.Signals | null }> = [];
  const running = new Set<ChildProcess>();
  let graceTimer: NodeJS.Timeout | undefined;

  const started: string[] = [];
  const done = new Promise<void>((resolve) => {
    for (let local = 0; local < nproc; local++) {
      const rank = nodeRank * nproc + local;
      const child = spawn(opts.command[0], opts.command.slice(1), {
        // Its own process group: a terminal's Ctrl-C reaches the launcher alone, which passes it on once.
        detached: true,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        env: {
          ...env, RANK: String(rank), WORLD_SIZE: String(size), LOCAL_RANK: String(local), LOCAL_WORLD_SIZE: String(nproc),
          MASTER_ADDR: master.host, MASTER_PORT: String(master.port), DENSENET_THREADS: threads,
        },
      });
      running.add(child);
      started.push(`rank ${rank} pid ${child.pid}`);
      child.on('exit', (code, signal) => {
        running.delete(child);
        exits.push({ rank, code, signal });
        const failed = signal !== null || (code !== 0 && code !== 130);
        if (failed) {
          opts.note(`rank ${rank} (pid ${child.pid}) ${describeExit(code, signal)}${running.size ? '; the other ranks stop at their next collective' : ''}`);
          graceTimer ??= setTimeout(() => {
            for (const c of running) c.kill('SIGKILL');
          }, opts.graceMs).unref();
        }
        if (running.size === 0) resolve();
      });
    }
  });

  opts.note(`data-parallel: started ${started.join(', ')}`);
  const forward = () => {
    for (const c of running) c.kill('SIGINT');
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  try {
    await done;
  } finally {
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
    if (graceTimer) clearTimeout(graceTimer);
  }
  if (exits.every((e) => e.code === 0)) return 0;
  if (exits.every((e) => e.code === 0 || e.code === 130)) return 130;
  return 1;
}

/** `host:port` of --master. */
export function parseMaster(text: string): { host: string; port: number } {
  const m = /^(.+):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new Error(`--master must be host:port (e.g. 10.0.0.1:29500), got '${text}'`);
  return { host: m[1], port };
}
