// Finding a dataset's files, with errors that say what was looked for and where.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { dataError } from './errors';

/** Throws unless `dir` is an existing directory; `hint` says what should be in it. */
export function requireDirectory(dir: string, hint: string): void {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw dataError(dir, `no such directory; expected ${hint}`);
  }
  if (!isDir) throw dataError(dir, `is not a directory; expected ${hint}`);
}

/** The first of `names` that exists in `dir`, as a path; an error listing them all otherwise. */
export function findFile(dir: string, names: readonly string[], what: string): string {
  for (const name of names) {
    const path = join(dir, name);
    if (existsSync(path)) return path;
  }
  throw dataError(dir, `has no ${what} file; expected one of ${names.join(', ')}`);
}

/** A regular file's size in bytes, or an error naming it. */
export function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch (err) {
    throw dataError(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}
