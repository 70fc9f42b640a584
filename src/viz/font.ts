// pureimage draws text only with fonts registered from a TTF file. The
// package depends on `dejavu-fonts-ttf` (DejaVu fonts, a free licence that
// allows redistribution), so captions render the same on every machine.
import * as fs from 'fs';
import * as path from 'path';
import * as PImage from 'pureimage';

export const FONT_FAMILY = 'DejaVu Sans';

let registered = false;

/** Path of the caption font inside the dejavu-fonts-ttf package. */
export function fontPath(): string {
  let pkg: string;
  try {
    pkg = path.dirname(require.resolve('dejavu-fonts-ttf/package.json'));
  } catch {
    throw new Error("viz font: cannot resolve the npm package 'dejavu-fonts-ttf' (a dependency of densenet-zoo); run npm install");
  }
  const file = path.join(pkg, 'ttf', 'DejaVuSans.ttf');
  if (!fs.existsSync(file)) {
    throw new Error(`viz font: expected DejaVuSans.ttf at ${file}, but it is missing; reinstall dejavu-fonts-ttf`);
  }
  return file;
}

/** Registers and loads the caption font once per process. */
export function ensureFont(): string {
  if (!registered) {
    PImage.registerFont(fontPath(), FONT_FAMILY).loadSync();
    registered = true;
  }
  return FONT_FAMILY;
}
