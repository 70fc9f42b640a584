// A pickle reader for what torch.save writes for state dicts and training checkpoints: dicts,
// lists, tuples, numbers, strings, bytes and tensors (protocols 2 to 5). It never runs code:
// a GLOBAL may only name one of the callables the caller allows, each a plain-data stand-in,
// and every other opcode or name is refused with the byte offset where it stands.

export class PickleTuple {
  constructor(readonly items: PickleValue[]) {}
}

/** What a pickled object becomes: dicts are Maps (insertion order kept), tuples PickleTuples. */
export type PickleValue =
  | null | boolean | number | bigint | string | Uint8Array | PickleValue[] | PickleTuple | Map<PickleKey, PickleValue> | object;
export type PickleKey = string | number | bigint | boolean | null;

/** A callable a pickle may name (module.name), as a data-only stand-in. */
export type PickleGlobal = (args: PickleValue[]) => PickleValue;

export interface UnpickleOptions {
  /** Allowed GLOBALs by `module.name`. */
  globals: Record<string, PickleGlobal>;
  /** Resolves a persistent id (torch: a storage reference). */
  persistentLoad: (pid: PickleValue) => PickleValue;
  /** For error messages. */
  source: string;
}

const MAX_STACK = 1_000_000;

const MARK = Symbol('mark');
type Slot = PickleValue | typeof MARK;

/** A GLOBAL the pickle named (and the caller allowed): a value (torch's storage types are passed around) or a callable. */
export class GlobalRef {
  constructor(readonly name: string, readonly call: PickleGlobal) {}
}

class Reader {
  private pos = 0;
  constructor(private readonly bytes: Uint8Array, private readonly source: string) {}

  get offset(): number {
    return this.pos;
  }

  fail(what: string, at = this.pos): never {
    throw new Error(`${this.source}: ${what} (byte ${at} of the pickle)`);
  }

  take(n: number): Uint8Array {
    if (!Number.isSafeInteger(n) || n < 0 || this.pos + n > this.bytes.length) {
      this.fail(`truncated: ${n} bytes wanted, ${this.bytes.length - this.pos} left`);
    }
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  u8(): number {
    return this.take(1)[0];
  }

  uint(n: 1 | 2 | 4 | 8): number {
    const b = this.take(n);
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + b[i];
    if (!Number.isSafeInteger(v)) this.fail(`a length of ${v} bytes`);
    return v;
  }

  int32(): number {
    const b = this.take(4);
    return new DataView(b.buffer, b.byteOffset, 4).getInt32(0, true);
  }

  float64be(): number {
    const b = this.take(8);
    return new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, false);
  }

  line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0 || end - this.pos > 256) this.fail('an unterminated GLOBAL name');
    const text = Buffer.from(this.bytes.subarray(this.pos, end)).toString('latin1');
    this.pos = end + 1;
    return text;
  }
}

/** Little-endian two's complement, as LONG1 stores it. */
function longFrom(bytes: Uint8Array): number | bigint {
  if (bytes.length === 0) return 0;
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  if (bytes[bytes.length - 1] & 0x80) v -= 1n << BigInt(8 * bytes.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Unpickles `bytes`, calling only the allowed globals. */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions): PickleValue {
  const r = new Reader(bytes, opts.source);
  const stack: Slot[] = [];
  const memo = new Map<number, Slot>();
  const push = (v: Slot) => {
    if (stack.length >= MAX_STACK) r.fail('more than a million objects on the stack');
    stack.push(v);
  };
  const pop = (): Slot => (stack.length ? stack.pop()! : r.fail('pops an empty stack'));
  const popValue = (): PickleValue => {
    const v = pop();
    if (v === MARK) r.fail('uses a mark as a value');
    return v as PickleValue;
  };
  const popToMark = (): PickleValue[] => {
    const at = stack.lastIndexOf(MARK);
    if (at < 0) r.fail('has no mark to pop to');
    const items = stack.splice(at + 1) as PickleValue[];
    stack.pop();
    return items;
  };
  const top = (): Slot => (stack.length ? stack[stack.length - 1] : r.fail('reads an empty stack'));
  const dictOnTop = (): Map<PickleKey, PickleValue> => {
    const d = top();
    if (!(d instanceof Map)) r.fail('sets an item on something that is not a dict');
    return d as Map<PickleKey, PickleValue>;
  };
  const listOnTop = (): PickleValue[] => {
    const l = top();
    if (!Array.isArray(l)) r.fail('appends to something that is not a list');
    return l as PickleValue[];
  };
  const key = (k: PickleValue): PickleKey => {
    if (k === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof k)) return k as PickleKey;
    return r.fail('uses a dict key that is not a string or a number');
  };
  const globalNamed = (module: string, name: string): GlobalRef => {
    const full = `${module}.${name}`;
    const call = Object.prototype.hasOwnProperty.call(opts.globals, full) ? opts.globals[full] : undefined;
    if (!call) return r.fail(`names '${full}', which is not part of a state dict; refusing to load it (a pickle can run code)`);
    return new GlobalRef(full, call);
  };
  const callGlobal = (f: Slot, args: Slot): PickleValue => {
    if (!(f instanceof GlobalRef)) r.fail('calls something that is not an allowed global');
    if (!(args instanceof PickleTuple)) r.fail(`calls ${(f as GlobalRef).name} without an argument tuple`);
    return (f as GlobalRef).call((args as PickleTuple).items);
  };
  const str = (b: Uint8Array): string => {
    try {
      return utf8.decode(b);
    } catch {
      return r.fail('holds a string that is not UTF-8');
    }
  };

  for (;;) {
    const at = r.offset;
    const op = r.u8();
    switch (op) {
      case 0x80: r.u8(); break; // PROTO
      case 0x95: r.uint(8); break; // FRAME: a length hint only
      case 0x2e: { // STOP
        const v = popValue();
        return v;
      }
      case 0x28: push(MARK); break;
      case 0x7d: push(new Map()); break; // EMPTY_DICT
      case 0x5d: push([]); break; // EMPTY_LIST
      case 0x29: push(new PickleTuple([])); break; // EMPTY_TUPLE
      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break;
      case 0x89: push(false); break;
      case 0x4a: push(r.int32()); break; // BININT
      case 0x4b: push(r.u8()); break; // BININT1
      case 0x4d: push(r.uint(2)); break; // BININT2
      case 0x8a: push(longFrom(r.take(r.u8()))); break; // LONG1
      case 0x47: push(r.float64be()); break; // BINFLOAT
      case 0x58: push(str(r.take(r.uint(4)))); break; // BINUNICODE
      case 0x8c: push(str(r.take(r.u8()))); break; // SHORT_BINUNICODE
      case 0x8d: push(str(r.take(r.uint(8)))); break; // BINUNICODE8
      case 0x54: push(Buffer.from(r.take(r.uint(4))).toString('latin1')); break; // BINSTRING (protocol 2's str)
      case 0x55: push(Buffer.from(r.take(r.u8())).toString('latin1')); break; // SHORT_BINSTRING
      case 0x42: push(r.take(r.uint(4)).slice()); break; // BINBYTES
      case 0x43: push(r.take(r.u8()).slice()); break; // SHORT_BINBYTES
      case 0x74: push(new PickleTuple(popToMark())); break; // TUPLE
      case 0x85: push(new PickleTuple([popValue()])); break;
      case 0x86: { const b = popValue(); const a = popValue(); push(new PickleTuple([a, b])); break; }
      case 0x87: { const c = popValue(); const b = popValue(); const a = popValue(); push(new PickleTuple([a, b, c])); break; }
      case 0x61: { const v = popValue(); listOnTop().push(v); break; } // APPEND
      case 0x65: { const items = popToMark(); listOnTop().push(...items); break; } // APPENDS
      case 0x73: { const v = popValue(); const k = key(popValue()); dictOnTop().set(k, v); break; } // SETITEM
      case 0x75: { // SETITEMS
        const items = popToMark();
        if (items.length % 2) r.fail('SETITEMS with an odd number of values', at);
        const d = dictOnTop();
        for (let i = 0; i < items.length; i += 2) d.set(key(items[i]), items[i + 1]);
        break;
      }
      case 0x71: memo.set(r.u8(), top()); break; // BINPUT
      case 0x72: memo.set(r.uint(4), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const i = op === 0x68 ? r.u8() : r.uint(4);
        if (!memo.has(i)) r.fail(`reads memo entry ${i}, which was never stored`, at);
        push(memo.get(i)!);
        break;
      }
      case 0x63: { const module = r.line(); push(globalNamed(module, r.line())); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = popValue();
        const module = popValue();
        if (typeof module !== 'string' || typeof name !== 'string') r.fail('STACK_GLOBAL without two names', at);
        push(globalNamed(module as string, name as string));
        break;
      }
      case 0x52: { const args = pop(); push(callGlobal(pop(), args)); break; } // REDUCE
      case 0x81: { const args = pop(); push(callGlobal(pop(), args)); break; } // NEWOBJ
      case 0x62: { // BUILD: state for an object; dicts and tensors keep none the loader needs
        popValue();
        const target = top();
        if (target === MARK) r.fail('BUILD on a mark', at);
        break;
      }
      case 0x51: push(opts.persistentLoad(popValue())); break; // BINPERSID
      case 0x30: pop(); break; // POP
      case 0x31: popToMark(); break; // POP_MARK
      default:
        r.fail(`opcode 0x${op.toString(16).padStart(2, '0')} is not one a state dict uses; refusing to load it`, at);
    }
  }
}
