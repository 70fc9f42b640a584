// Atomic file writes: write a temporary sibling, then rename it over the target, so a crash or a
// full disk never leaves a half-written file under the final name.
import { promises as fsp } from 'fs';
import * as path from 'path';

let counter = 0;

/** A temporary name in the same folder as `file` (rename is atomic only within one file system). */
export function tempNameFor(file: string): string {
  const dir = path.dirname(file);
  return path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${Date.now()}-${counter++}`);
}

export async function removeQuietly(file: string): Promise<void> {
  await fsp.rm(file, { force: true }).catch(() => undefined);
}

export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = tempNameFor(file);
  try {
    await fsp.writeFile(tmp, data);
    await fsp.rename(tmp, file);
  } catch (err) {
    await removeQuietly(tmp);
    throw err;
  }
}
