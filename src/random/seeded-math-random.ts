// Reproducible dropout. The zoo's dropout masks (src/core/dropout-mask.ts) take their seed
// from Math.random(), as tfjs's random ops do when given none, and are drawn in JavaScript on
// every backend. Replacing Math.random with a seeded stream for the duration of one
// synchronous training step makes the masks a function of the stream's state, which the
// checkpoint stores, so a resumed run draws the same masks.
import type { Rng } from './prng';

/** Runs `fn` (synchronously) with Math.random drawing from `rng`; restores Math.random afterwards. */
export function withSeededMathRandom<T>(rng: Rng, fn: () => T): T {
  const original = Math.random;
  Math.random = () => rng.float();
  try {
    return fn();
  } finally {
    Math.random = original;
  }
}
