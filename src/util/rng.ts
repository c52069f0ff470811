// The one seeded random number generator of ragtune: PCG32 (O'Neill's pcg32, XSH-RR), and the shuffle built on
// it. Everything reproducible (splits, samplers, mining) draws from here, so a seed means the same thing
// everywhere.

const MASK64 = (1n << 64n) - 1n;
const PCG_MULTIPLIER = 6364136223846793005n;
/** Stream selector of the reference pcg32-demo; with seed 42 it reproduces that demo's published output. */
export const PCG32_DEFAULT_STREAM = 54n;

/** PCG32 (XSH-RR): 64-bit state, 32-bit output. */
export class Pcg32 {
  private state = 0n;
  private readonly increment: bigint;

  constructor(seed: number | bigint, stream: number | bigint = PCG32_DEFAULT_STREAM) {
    if (typeof seed === "number" && !Number.isSafeInteger(seed))
      throw new Error(`seed must be an integer, got ${seed}`);
    this.increment = ((BigInt(stream) << 1n) | 1n) & MASK64;
    // pcg32_srandom_r: state = 0; step; state += seed; step.
    this.next();
    this.state = (this.state + BigInt.asUintN(64, BigInt(seed))) & MASK64;
    this.next();
  }

  /** The next uniformly distributed 32-bit unsigned integer. */
  next(): number {
    const old = this.state;
    this.state = (old * PCG_MULTIPLIER + this.increment) & MASK64;
    const xorShifted = Number((((old >> 18n) ^ old) >> 27n) & 0xffffffffn);
    const rotation = Number(old >> 59n);
    return ((xorShifted >>> rotation) | (xorShifted << (-rotation & 31))) >>> 0;
  }

  /** A uniform integer in [0, bound), without modulo bias (pcg32_boundedrand_r). bound ≤ 2^32. */
  nextBelow(bound: number): number {
    if (!Number.isInteger(bound) || bound < 1 || bound > 0x100000000) throw new Error(`bad bound ${bound}`);
    const threshold = (0x100000000 - bound) % bound; // = (-bound mod 2^32) % bound
    for (;;) {
      const r = this.next();
      if (r >= threshold) return r % bound;
    }
  }
}

/** The permutation of 0..n−1 given by a Fisher–Yates shuffle driven by PCG32(seed). */
export function seededPermutation(n: number, seed: number | bigint): number[] {
  const rng = new Pcg32(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextBelow(i + 1);
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}
