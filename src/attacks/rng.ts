/**
 * Seeded randomness for attacks, generated in JavaScript so runs repeat exactly on every backend.
 *
 * @module
 */
import { mulberry32 } from "../random.ts";

/** A seeded pseudo-random generator (mulberry32) with the draws attacks need. */
export class Rng {
  /** Uniform in [0, 1). */
  readonly next: () => number;

  constructor(seed = 0) {
    this.next = mulberry32((seed >>> 0) ^ 0x9e3779b9);
  }

  /** Uniform in [low, high). */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  /** Integer uniform in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** `size` uniform draws in [low, high). */
  uniformArray(size: number, low: number, high: number): Float32Array {
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) out[i] = low + (high - low) * this.next();
    return out;
  }

  /** `size` standard normal draws. */
  normalArray(size: number): Float32Array {
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) out[i] = this.normal();
    return out;
  }

  /** A random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const out = Int32Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
}
