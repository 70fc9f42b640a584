// A small seeded PRNG (xoshiro128**) whose whole state is four 32-bit words, so a
// training checkpoint can store it as JSON and restore it exactly.

export const RNG_ALGORITHM = 'xoshiro128**';

/** JSON-serialisable snapshot of an Rng. */
export interface RngState {
  algorithm: typeof RNG_ALGORITHM;
  /** Four unsigned 32-bit words, not all zero. */
  words: [number, number, number, number];
}

const TWO_POW_32 = 4294967296;

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** splitmix32-style finaliser: spreads every input bit over the whole word. */
export function mix32(x: number): number {
  let z = (x + 0x9e3779b9) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

function checkKey(key: number): void {
  if (!Number.isSafeInteger(key)) {
    throw new Error(`Rng seed keys must be safe integers, got ${key}`);
  }
}

/**
 * Hashes any number of integer keys (a seed, an epoch, a batch index...) into one
 * 32-bit word. Keys up to 2^53 are used whole (low and high halves), negatives too.
 */
export function hashKeys(keys: readonly number[]): number {
  let h = 0x243f6a88;
  for (const key of keys) {
    checkKey(key);
    const lo = key >>> 0;
    const hi = Math.floor(key / TWO_POW_32) >>> 0;
    h = mix32(h ^ lo);
    h = mix32(h ^ hi);
  }
  return h;
}

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  private constructor(state: RngState) {
    this.setState(state);
  }

  /**
   * A generator determined by the keys: `Rng.from(seed, epoch)` is a different, independent
   * stream for every (seed, epoch) pair, and the same stream every time for the same pair.
   */
  static from(...keys: number[]): Rng {
    let h = hashKeys(keys);
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      h = mix32(h + i);
      words.push(h);
    }
    if (words.every((w) => w === 0)) words[0] = 1; // all-zero is xoshiro's one fixed point
    return new Rng({ algorithm: RNG_ALGORITHM, words: words as RngState['words'] });
  }

  static fromState(state: RngState): Rng {
    return new Rng(state);
  }

  getState(): RngState {
    return { algorithm: RNG_ALGORITHM, words: [this.s0, this.s1, this.s2, this.s3] };
  }

  setState(state: RngState): void {
    if (!state || state.algorithm !== RNG_ALGORITHM) {
      throw new Error(`Rng state must come from ${RNG_ALGORITHM}, got ${JSON.stringify(state?.algorithm)}`);
    }
    const w = state.words;
    const valid = Array.isArray(w) && w.length === 4 &&
      w.every((x) => Number.isInteger(x) && x >= 0 && x < TWO_POW_32);
    if (!valid || w.every((x) => x === 0)) {
      throw new Error(`Rng state must hold four unsigned 32-bit words, not all zero; got ${JSON.stringify(w)}`);
    }
    [this.s0, this.s1, this.s2, this.s3] = w;
  }

  clone(): Rng {
    return new Rng(this.getState());
  }

  /** Next unsigned 32-bit integer. */
  uint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform float in [0, 1), 32 bits of resolution. */
  float(): number {
    return this.uint32() / TWO_POW_32;
  }

  /** Uniform integer in [0, n), without modulo bias. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > TWO_POW_32) {
      throw new Error(`Rng.int(n) needs an integer n in 1..2^32, got ${n}`);
    }
    // Reject the top sliver of the range that would make small values more likely.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    let u = this.uint32();
    while (u >= limit) u = this.uint32();
    return u % n;
  }

  bool(): boolean {
    return (this.uint32() & 0x80000000) !== 0;
  }
}

/** Fisher-Yates shuffle in place. */
export function shuffleInPlace<T extends { length: number; [i: number]: unknown }>(arr: T, rng: Rng): T {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const tmp = arr[i];
    arr[i] = arr[j];
    arr[j] = tmp;
  }
  return arr;
}

/** A random permutation of 0..n-1. */
export function permutation(n: number, rng: Rng): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return shuffleInPlace(out, rng);
}
