// Reading a file whose name comes from another file (a model.json's shard paths, a manifest's url):
// the name must be a plain relative path that stays inside its folder once symlinks are resolved,
// and the file a regular one of a bounded or announced size, all checked before a byte is read.
// So a crafted model.json cannot make the loader read /etc/passwd, or hang on /dev/zero or a FIFO.
// `what` describes the file in the errors, e.g. "weight shard listed in dir/model.json".
import * as fs from 'fs';
import * as path from 'path';

export class ContainedFileError extends Error {
  constructor(readonly file: string, detail: string) {
    super(`${file}: ${detail}`);
    this.name = 'ContainedFileError';
  }
}

const unreadable = (e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? 'is missing' : `cannot be read (${e.code ?? e.message})`);

/** Refuses empty and absolute names and `..` segments: `name` must name something inside its folder. */
export function checkRelativeName(name: unknown, what: string): string {
  const ok = typeof name === 'string' && name.length > 0 && !name.includes('\0') && !path.isAbsolute(name) &&
    !path.win32.isAbsolute(name) && !name.split(/[\\/]/).includes('..');
  if (!ok) throw new ContainedFileError(String(name), `${what} is not a plain relative name inside its folder (no '..', no absolute path)`);
  return name as string;
}

/** The real path of `dir/name`, refused when it leaves `dir` (through `..` or symlinks). */
export function containedPath(dir: string, name: unknown, what: string): string {
  const file = path.join(dir, checkRelativeName(name, what));
  let real: string;
  let realDir: string;
  try {
    realDir = fs.realpathSync(dir);
    real = fs.realpathSync(file);
  } catch (err) {
    throw new ContainedFileError(file, `${what} ${unreadable(err as NodeJS.ErrnoException)}`);
  }
  if (!real.startsWith(realDir + path.sep)) {
    throw new ContainedFileError(file, `${what} leads outside ${dir} (to ${real}); it must be inside that folder`);
  }
  return real;
}

export interface OpenedFile {
  file: string;
  size: number;
  handle: fs.promises.FileHandle;
}

/** Opens `file` without blocking (a FIFO would) and refuses anything but a regular file. */
export async function openRegularFile(file: string, what: string): Promise<OpenedFile> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw new ContainedFileError(file, `${what} ${unreadable(err as NodeJS.ErrnoException)}`);
  }
  const stat = await handle.stat();
  if (!stat.isFile()) {
    await handle.close();
    throw new ContainedFileError(file, `${what} is not a regular file (a device, FIFO or folder)`);
  }
  return { file, size: stat.size, handle };
}

/** Reads exactly `opened.size` bytes and closes the file (a file that grows meanwhile is not read past that). */
export async function readOpened(opened: OpenedFile): Promise<Uint8Array> {
  try {
    const bytes = new Uint8Array(opened.size);
    let at = 0;
    while (at < bytes.length) {
      const { bytesRead } = await opened.handle.read(bytes, at, bytes.length - at, at);
      if (bytesRead === 0) throw new ContainedFileError(opened.file, `shrank while being read (${at} of ${opened.size} bytes)`);
      at += bytesRead;
    }
    return bytes;
  } finally {
    await opened.handle.close();
  }
}

export async function closeAll(opened: OpenedFile[]): Promise<void> {
  await Promise.all(opened.map((o) => o.handle.close()));
}

/** Reads a regular file of at most `maxBytes` (checked before reading). */
export async function readBoundedFile(file: string, maxBytes: number, what: string): Promise<Uint8Array> {
  const opened = await openRegularFile(file, what);
  if (opened.size > maxBytes) {
    await opened.handle.close();
    throw new ContainedFileError(file, `${what} is ${opened.size} bytes, more than the ${maxBytes} allowed`);
  }
  return readOpened(opened);
}
