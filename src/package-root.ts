// The package's own files (weights/, native/, experiments/) are found from here, whether the
// code runs from src/ (ts-node), dist/src/ (the build) or node_modules/densenet-zoo/dist/src.
import * as fs from 'fs';
import * as path from 'path';

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      try {
        if (JSON.parse(fs.readFileSync(manifest, 'utf8')).name === 'densenet-zoo') return dir;
      } catch {
        // an unreadable package.json is not ours; keep climbing
      }
    }
    if (path.dirname(dir) === dir) throw new Error(`densenet-zoo: no package.json named densenet-zoo above ${start}`);
  }
}

export const PACKAGE_ROOT = findPackageRoot(__dirname);
