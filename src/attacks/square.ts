/**
 * Square attack (Andriushchenko et al. 2020), score-based random search, L_inf and L2. Each iteration changes
 * one random square window of the perturbation and keeps the change only when the margin loss
 * (score of the label minus the best other score; targeted: best other minus the target) decreases. The
 * window shrinks on the paper's schedule. Fixed-epsilon; one query per unsolved example per iteration.
 *
 * L_inf follows the paper: vertical-stripe start, window set to +-epsilon per channel. L2 is a simplified
 * variant: the window's content is replaced by a random-signed centred bump that takes all the L2 mass the
 * rest of the perturbation leaves (the paper's two-window mass transfer is not reproduced).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { queryCap } from "./auna.ts";
import { type AttackContext, fixedEpsilonAttack, type SearchOutcome } from "./base.ts";
import { criterionClasses } from "./criteria.ts";
import { indicesWhere, queryScores } from "./query.ts";
import { Rng } from "./rng.ts";
import type { Attack } from "./types.ts";

/** Parameters of {@link square} and {@link squareL2}. */
export interface SquareParams {
  /** Iterations (default 1000). */
  steps?: number;
  /** Initial fraction of pixels in the window (default 0.05 L_inf, 0.1 L2). */
  pInit?: number;
  seed?: number;
}

/** The paper's window schedule (iterations rescaled to 10,000). */
export function squareFraction(pInit: number, step: number, steps: number): number {
  const it = Math.floor((step / steps) * 10000);
  const bounds = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000];
  let p = pInit;
  for (const b of bounds) if (it > b) p /= 2;
  return p;
}

/** Margin losses per example (lower is better for the attacker; < 0 means adversarial). */
function margins(
  scores: Float32Array,
  numClasses: number,
  classes: Int32Array,
  targeted: boolean,
): Float32Array {
  const out = new Float32Array(classes.length);
  for (let a = 0; a < classes.length; a++) {
    const row = scores.subarray(a * numClasses, (a + 1) * numClasses);
    let other = -Infinity;
    for (let c = 0; c < numClasses; c++) if (c !== classes[a] && row[c] > other) other = row[c];
    out[a] = targeted ? other - row[classes[a]] : row[classes[a]] - other;
  }
  return out;
}

async function search(
  context: AttackContext,
  norm: "linf" | "l2",
  params: Required<SquareParams>,
): Promise<SearchOutcome> {
  const { target, x, criterion, epsilon, queries } = context;
  const [n, h, w, c] = x.shape;
  const d = h * w * c;
  const [lo, hi] = target.inputRange;
  const rng = new Rng(params.seed);
  const source = (await x.data()) as Float32Array;
  const allClasses = criterionClasses(criterion);
  const targeted = criterion.kind === "targeted";
  const clip = (v: number) => Math.min(hi, Math.max(lo, v));
  // Start: L_inf vertical stripes of +-epsilon; L2 a random-signed uniform spread of norm epsilon.
  const current = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let col = 0; col < w; col++) {
      for (let k = 0; k < c; k++) {
        const sign = rng.next() < 0.5 ? -1 : 1;
        for (let row = 0; row < h; row++) {
          const j = (row * w + col) * c + k;
          const delta = norm === "linf" ? sign * epsilon : sign * epsilon / Math.sqrt(d);
          current[i * d + j] = clip(source[i * d + j] + delta);
        }
      }
    }
  }
  const startBatch = tf.tensor4d(current, x.shape);
  const first = await queryScores(target, startBatch, queries);
  startBatch.dispose();
  const numClasses = first.numClasses;
  const loss = margins(first.scores, numClasses, allClasses, targeted);
  const cap = queryCap(context);
  for (let step = 0; step < params.steps; step++) {
    const active = indicesWhere(Uint8Array.from(loss, (v) => (v < 0 ? 1 : 0))).filter((i) =>
      queries[i] < cap - 1
    );
    if (active.length === 0) break;
    const p = squareFraction(params.pInit, step, params.steps);
    const size = Math.max(1, Math.min(h - 1, Math.round(Math.sqrt(p * h * w))));
    const candidate = new Float32Array(active.length * d);
    active.forEach((i, a) => {
      const base = i * d;
      candidate.set(current.subarray(base, base + d), a * d);
      const top = rng.int(h - size + 1), left = rng.int(w - size + 1);
      if (norm === "linf") {
        for (let k = 0; k < c; k++) {
          const value = rng.next() < 0.5 ? -epsilon : epsilon;
          for (let r = top; r < top + size; r++) {
            for (let q = left; q < left + size; q++) {
              const j = (r * w + q) * c + k;
              candidate[a * d + j] = clip(source[base + j] + value);
            }
          }
        }
        return;
      }
      // L2: the mass left outside the window goes into a centred bump inside it.
      let outside = 0, bumpNorm = 0;
      const inWindow = (r: number, q: number) => r >= top && r < top + size && q >= left && q < left + size;
      for (let r = 0; r < h; r++) {
        for (let q = 0; q < w; q++) {
          if (inWindow(r, q)) continue;
          for (let k = 0; k < c; k++) {
            outside += (current[base + (r * w + q) * c + k] - source[base + (r * w + q) * c + k]) ** 2;
          }
        }
      }
      const bump = new Float32Array(size * size);
      const centre = (size - 1) / 2;
      for (let r = 0; r < size; r++) {
        for (let q = 0; q < size; q++) {
          const v = 1 / (1 + Math.max(Math.abs(r - centre), Math.abs(q - centre)));
          bump[r * size + q] = v;
          bumpNorm += v * v * c;
        }
      }
      const mass = Math.sqrt(Math.max(0, epsilon * epsilon - outside));
      for (let k = 0; k < c; k++) {
        const sign = rng.next() < 0.5 ? -1 : 1;
        for (let r = 0; r < size; r++) {
          for (let q = 0; q < size; q++) {
            const j = ((top + r) * w + left + q) * c + k;
            candidate[a * d + j] = clip(
              source[base + j] + sign * mass * bump[r * size + q] / Math.sqrt(bumpNorm),
            );
          }
        }
      }
    });
    const batch = tf.tensor(candidate, [active.length, h, w, c]);
    const scored = await queryScores(target, batch, queries, active);
    batch.dispose();
    const newLoss = margins(
      scored.scores,
      numClasses,
      Int32Array.from(active, (i) => allClasses[i]),
      targeted,
    );
    active.forEach((i, a) => {
      if (newLoss[a] < loss[i]) {
        loss[i] = newLoss[a];
        current.set(candidate.subarray(a * d, (a + 1) * d), i * d);
      }
    });
  }
  return { adversarial: tf.tensor4d(current, x.shape) };
}

function build(norm: "linf" | "l2", params: SquareParams): Attack {
  const name = norm === "linf" ? "square-linf" : "square-l2";
  const resolved: Required<SquareParams> = {
    steps: params.steps ?? 1000,
    pInit: params.pInit ?? (norm === "linf" ? 0.05 : 0.1),
    seed: params.seed ?? 0,
  };
  if (!Number.isInteger(resolved.steps) || resolved.steps < 1) {
    throw new RangeError(`attack "${name}": steps = ${params.steps} is invalid`);
  }
  if (!(resolved.pInit > 0 && resolved.pInit <= 1)) {
    throw new RangeError(`attack "${name}": pInit = ${params.pInit} must be in (0, 1]`);
  }
  return fixedEpsilonAttack(
    { name, norm, kind: "black-box", params: resolved },
    (context) => search(context, norm, resolved),
  );
}

/** Square attack under L_inf. */
export function square(params: SquareParams = {}): Attack {
  return build("linf", params);
}

/** Square attack under L2 (simplified window update, see the module doc). */
export function squareL2(params: SquareParams = {}): Attack {
  return build("l2", params);
}
