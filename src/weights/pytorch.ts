// Reading the files torch.save writes (the zip format of PyTorch 1.6 and later: `<name>/data.pkl`
// plus one raw entry per storage) as a state dict: tensors by key, whatever the checkpoint wraps
// them in (`state_dict`, `model`, `model_state_dict`, `net`), without DataParallel's `module.`
// prefix, and renamed by the caller's key rules. The pickle is read by a reader that runs no code.
import { promises as fsp } from 'fs';
import { unzipSync } from 'fflate';
import type { StateDictSource } from './mapping';
import { GlobalRef, PickleGlobal, PickleTuple, PickleValue, unpickle } from './pickle';
import { decodeToFloat32, DTYPE_BYTES, formatShape, numElements } from './safetensors';

const STORAGE_DTYPES: Record<string, string> = {
  FloatStorage: 'F32', DoubleStorage: 'F64', HalfStorage: 'F16', BFloat16Storage: 'BF16', LongStorage: 'I64',
  IntStorage: 'I32', ShortStorage: 'I16', CharStorage: 'I8', ByteStorage: 'U8', BoolStorage: 'BOOL',
};

/** Where a checkpoint keeps its state dict, in the order they are tried. */
export const STATE_DICT_KEYS = ['state_dict', 'model_state_dict', 'model', 'net'] as const;

/** Largest file read (a DenseNet-264 in float64 is about 270 MB). */
const MAX_FILE_BYTES = 4 * 2 ** 30;

interface StorageRef {
  key: string;
  dtype: string;
  numel: number;
}

class TorchTensor {
  constructor(readonly storage: StorageRef, readonly offset: number, readonly shape: number[], readonly stride: number[]) {}
}

/** A key rule: a regular expression on checkpoint keys and its replacement (`$1` allowed). */
export interface KeyRule {
  from: RegExp;
  to: string;
}

/** Rules applied in order, or a function from a checkpoint key to a zoo (torchvision-layout) key. */
export type KeyMap = KeyRule[] | ((key: string) => string);

export interface PytorchCheckpoint extends StateDictSource {
  /** Where the tensors were found: '' (the top level) or the key of the wrapping dict. */
  foundUnder: string;
  /** Whether every key had DataParallel's `module.` prefix (removed). */
  strippedModulePrefix: boolean;
  /** Other entries of a wrapping checkpoint (epoch, optimizer, ...), by name. */
  otherEntries: string[];
}

/** Parses `from_regex=to` (the CLI's --key-map). */
export function parseKeyRule(text: string): KeyRule {
  const at = text.indexOf('=');
  if (at <= 0) throw new Error(`key map '${text}': expected from_regex=to, e.g. '^conv1\\.=features.conv0.'`);
  try {
    return { from: new RegExp(text.slice(0, at)), to: text.slice(at + 1) };
  } catch (err) {
    throw new Error(`key map '${text}': ${(err as Error).message}`);
  }
}

function globals(source: string): Record<string, PickleGlobal> {
  // Storage types are only named (in storage references), never called.
  const storageTypes = Object.fromEntries(Object.keys(STORAGE_DTYPES).map((name) => [`torch.${name}`, () => {
    throw new Error(`${source}: the pickle calls torch.${name}; a state dict only names it`);
  }]));
  const rebuildTensor: PickleGlobal = ([storage, offset, size, stride]) => {
    const ints = (v: PickleValue) => v instanceof PickleTuple && v.items.every((x) => Number.isSafeInteger(x) && (x as number) >= 0);
    if (!(storage && typeof storage === 'object' && 'key' in storage) || !Number.isSafeInteger(offset) || !ints(size) || !ints(stride)) {
      throw new Error(`${source}: a tensor record that is not (storage, offset, size, stride)`);
    }
    return new TorchTensor(storage as StorageRef, offset as number, (size as PickleTuple).items as number[], (stride as PickleTuple).items as number[]);
  };
  return {
    ...storageTypes,
    'collections.OrderedDict': () => new Map(),
    'torch._utils._rebuild_tensor_v2': rebuildTensor,
    'torch._utils._rebuild_parameter': ([data]) => data,
  };
}

function persistentLoad(source: string) {
  return (pid: PickleValue): StorageRef => {
    const items = pid instanceof PickleTuple ? pid.items : [];
    const [tag, type, key, , numel] = items;
    const dtype = type instanceof GlobalRef && type.name.startsWith('torch.') ? STORAGE_DTYPES[type.name.slice('torch.'.length)] : undefined;
    if (tag !== 'storage' || !dtype || typeof key !== 'string' || !/^\w+$/.test(key) || !Number.isSafeInteger(numel)) {
      throw new Error(`${source}: a storage reference that is not ('storage', type, key, location, numel)`);
    }
    return { key, dtype, numel: numel as number };
  };
}

/** The zip's entries by name, sizes checked against the file before anything is inflated. */
function unzip(bytes: Uint8Array, source: string): Record<string, Uint8Array> {
  try {
    return unzipSync(bytes, {
      filter: (f) => {
        if (f.originalSize > MAX_FILE_BYTES) throw new Error(`entry ${f.name} claims ${f.originalSize} bytes`);
        return true;
      },
    });
  } catch (err) {
    throw new Error(`${source}: not a readable torch.save zip archive (${(err as Error).message})`);
  }
}

function isTensorDict(v: PickleValue): v is Map<string, TorchTensor> {
  return v instanceof Map && v.size > 0 && [...v.values()].every((x) => x instanceof TorchTensor) && [...v.keys()].every((k) => typeof k === 'string');
}

function findStateDict(root: PickleValue, source: string): { tensors: Map<string, TorchTensor>; foundUnder: string; otherEntries: string[] } {
  if (isTensorDict(root)) return { tensors: root, foundUnder: '', otherEntries: [] };
  if (root instanceof Map) {
    for (const k of STATE_DICT_KEYS) {
      const inner = root.get(k);
      if (isTensorDict(inner as PickleValue)) {
        return { tensors: inner as Map<string, TorchTensor>, foundUnder: k, otherEntries: [...root.keys()].filter((x) => x !== k).map(String) };
      }
    }
    throw new Error(`${source}: no state dict in this checkpoint: its entries are ${[...root.keys()].map(String).join(', ')}, ` +
      `and neither it nor an entry named ${STATE_DICT_KEYS.join(', ')} is a dict of tensors`);
  }
  throw new Error(`${source}: the pickle holds no dict of tensors (a whole pickled model cannot be read: save its state_dict() instead)`);
}

function renamed(tensors: Map<string, TorchTensor>, keyMap: KeyMap | undefined, source: string): { byKey: Map<string, TorchTensor>; stripped: boolean } {
  const keys = [...tensors.keys()];
  const stripped = keys.every((k) => k.startsWith('module.'));
  const rename = typeof keyMap === 'function'
    ? keyMap
    : (k: string) => (keyMap ?? []).reduce((key, rule) => key.replace(rule.from, rule.to), k);
  const byKey = new Map<string, TorchTensor>();
  const origin = new Map<string, string>();
  for (const key of keys) {
    const to = rename(stripped ? key.slice('module.'.length) : key);
    if (typeof to !== 'string' || to === '') throw new Error(`${source}: the key map turns '${key}' into ${JSON.stringify(to)}`);
    if (byKey.has(to)) throw new Error(`${source}: the key map turns both '${origin.get(to)}' and '${key}' into '${to}'`);
    byKey.set(to, tensors.get(key)!);
    origin.set(to, key);
  }
  return { byKey, stripped };
}

/** The tensor's values in row-major order, read through its offset and strides. */
function readTensor(t: TorchTensor, raw: Uint8Array, name: string, source: string): Float32Array {
  const itemBytes = DTYPE_BYTES[t.storage.dtype];
  if (raw.length !== t.storage.numel * itemBytes) {
    throw new Error(`${source}: storage ${t.storage.key} of '${name}' has ${raw.length} bytes, expected ${t.storage.numel} x ${itemBytes}`);
  }
  const count = numElements(t.shape);
  const last = t.offset + t.shape.reduce((s, n, i) => s + (n - 1) * t.stride[i], 0);
  if (t.shape.length !== t.stride.length || (count > 0 && last >= t.storage.numel)) {
    throw new Error(`${source}: tensor '${name}' ${formatShape(t.shape)} reaches past its storage of ${t.storage.numel} elements`);
  }
  const all = decodeToFloat32(t.storage.dtype, raw, t.storage.numel)!;
  const contiguous = t.stride.every((s, i) => s === t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
  if (contiguous) return all.slice(t.offset, t.offset + count);
  const out = new Float32Array(count);
  const index = new Array(t.shape.length).fill(0);
  for (let i = 0; i < count; i++) {
    out[i] = all[t.offset + index.reduce((s, v, d) => s + v * t.stride[d], 0)];
    for (let d = t.shape.length - 1; d >= 0 && ++index[d] === t.shape[d]; d--) index[d] = 0;
  }
  return out;
}

/** Reads a torch.save file's state dict. */
export async function readPytorchCheckpoint(file: string, keyMap?: KeyMap): Promise<PytorchCheckpoint> {
  const stat = await fsp.stat(file).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`${file}: cannot read the PyTorch checkpoint (${err.code ?? err.message})`);
  });
  if (!stat.isFile()) throw new Error(`${file}: not a regular file`);
  if (stat.size > MAX_FILE_BYTES) throw new Error(`${file}: ${stat.size} bytes; checkpoints over ${MAX_FILE_BYTES} bytes are not read`);
  const bytes = new Uint8Array(await fsp.readFile(file));
  return parsePytorchCheckpoint(bytes, file, keyMap);
}

export function parsePytorchCheckpoint(bytes: Uint8Array, source: string, keyMap?: KeyMap): PytorchCheckpoint {
  const isZip = bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
  if (!isZip) {
    const legacy = bytes[0] === 0x80 && bytes[1] === 0x02;
    throw new Error(legacy
      ? `${source}: a legacy torch.save file (PyTorch before 1.6); load it in PyTorch and save it again with torch.save(obj, file)`
      : `${source}: not a torch.save file (no zip signature)`);
  }
  const entries = unzip(bytes, source);
  const pkl = Object.keys(entries).filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkl.length !== 1) throw new Error(`${source}: expected one <name>/data.pkl in the archive, found ${pkl.length}`);
  const prefix = pkl[0].slice(0, -'data.pkl'.length);
  const root = unpickle(entries[pkl[0]], { source: `${source} (${pkl[0]})`, globals: globals(source), persistentLoad: persistentLoad(source) });
  const { tensors, foundUnder, otherEntries } = findStateDict(root, source);
  const { byKey, stripped } = renamed(tensors, keyMap, source);
  const cache = new Map<string, Float32Array>();
  return {
    source, foundUnder, otherEntries, strippedModulePrefix: stripped,
    names: () => [...byKey.keys()],
    shape: (name) => [...byKey.get(name)!.shape],
    read: (name) => {
      let values = cache.get(name);
      if (!values) {
        const t = byKey.get(name)!;
        const raw = entries[`${prefix}data/${t.storage.key}`];
        if (!raw) throw new Error(`${source}: tensor '${name}' refers to storage ${t.storage.key}, which is not in the archive`);
        values = readTensor(t, raw, name, source);
        cache.set(name, values);
      }
      return values;
    },
  };
}
