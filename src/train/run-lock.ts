// One trainer per run folder: `<run>/train.lock` holds the pid of the process writing the run,
// created with O_EXCL so that of two trainers started together only one gets it. A lock whose
// process is gone (killed, or a second Ctrl-C) is stale and taken over.
import * as fs from 'fs';
import * as path from 'path';

export const LOCK_FILE = 'train.lock';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, owned by someone else
  }
}

function holderOf(lock: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(lock, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function tryCreate(lock: string): boolean {
  try {
    fs.writeFileSync(lock, `${process.pid}\n`, { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new Error(`${lock}: cannot create the run's lock file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** Takes the run folder's lock, or throws naming the process that holds it. Returns the release function. */
export function lockRunFolder(runDir: string): () => void {
  const lock = path.join(runDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    if (tryCreate(lock)) return () => fs.rmSync(lock, { force: true });
    const pid = holderOf(lock);
    if (pid !== undefined && processAlive(pid)) {
      throw new Error(`${runDir} is being trained by another process (pid ${pid}, ${lock}); wait for it to finish, or choose another --out`);
    }
    fs.rmSync(lock, { force: true }); // stale: its process is gone (or it was cut short before the pid was written)
  }
  throw new Error(`${lock}: another trainer took the run's lock at the same moment; choose another --out`);
}
