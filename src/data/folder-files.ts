// Walking a user's data folder: image files found by extension, in a fixed (sorted) order, and no
// path that leaves the folder: a symbolic link pointing outside it is an error naming the link.
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { extname, isAbsolute, join, relative } from 'node:path';
import { dataError } from './errors';

export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.webp'];

export const isImageFile = (name: string) => IMAGE_EXTENSIONS.includes(extname(name).toLowerCase());

/** Code-point order, the same on every machine and locale (torchvision sorts the same way). */
export const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function isInside(root: string, file: string): boolean {
  const rel = relative(root, file);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** Entries of a directory, hidden ones (.DS_Store, .git) left out, sorted. */
function visibleEntries(dir: string) {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((e) => !e.name.startsWith('.')).sort((a, b) => byCodePoint(a.name, b.name));
  } catch (err) {
    throw dataError(dir, `cannot be listed (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** Sub-directories of `dir` by name, sorted (symbolic links to directories are not followed). */
export function subdirectories(dir: string): string[] {
  return visibleEntries(dir).filter((e) => e.isDirectory()).map((e) => e.name);
}

/**
 * Image files under `dir`, recursively, sorted by path. `root` is the folder nothing may leave:
 * links to files inside it are kept, links out of it refused, links to directories skipped (loops).
 */
export function listImageFiles(dir: string, root: string = dir): string[] {
  const realRoot = realpathSync(root);
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of visibleEntries(d)) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isSymbolicLink() && isImageFile(entry.name)) {
        let target: string;
        try {
          target = realpathSync(path);
        } catch {
          throw dataError(path, 'is a broken symbolic link; expected an image file');
        }
        if (!isInside(realRoot, target)) throw dataError(path, `links to ${target}, outside ${root}; data files must stay inside the data folder`);
        if (statSync(target).isFile()) out.push(path);
      } else if (entry.isFile() && isImageFile(entry.name)) out.push(path);
    }
  };
  walk(dir);
  return out;
}
