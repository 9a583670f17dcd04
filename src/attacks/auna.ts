/**
 * AUNA, additive uniform noise (Foolbox 2's AdditiveUniformNoiseAttack, used by the paper): add uniform noise
 * of growing amplitude, fresh at each of `steps` amplitudes up to `maxAmplitude` (a fraction of the input
 * range), and keep the first draw that fools the model. Black-box (labels only); a minimisation attack
 * whose distance is reported in L2.
 *
 * `blendedNoiseStart` is the starting point of the decision-based attacks (PWA, Boundary): the first
 * adversarial blend `(1 - t) x + t u` with uniform noise `u`, refined by a binary search on `t`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type AttackContext, minimizationAttack, type SearchOutcome } from "./base.ts";
import { isAdversarial, subsetCriterion } from "./criteria.ts";
import { indicesWhere, queryLabels } from "./query.ts";
import { Rng } from "./rng.ts";
import type { Attack } from "./types.ts";

/** Parameters of {@link auna}. */
export interface AunaParams {
  /** Number of amplitudes tried (default 100; the paper's max_iter is 1000). */
  steps?: number;
  /** Largest amplitude as a fraction of the input range (default 1). */
  maxAmplitude?: number;
  seed?: number;
}

/** Per-example query cap from the budget, or Infinity. */
export function queryCap(context: AttackContext): number {
  return context.budget.maxQueries ?? Infinity;
}

async function search(context: AttackContext, params: Required<AunaParams>): Promise<SearchOutcome> {
  const { target, x, criterion, queries } = context;
  const n = x.shape[0];
  const d = x.size / n;
  const rng = new Rng(params.seed);
  const [lo, hi] = target.inputRange;
  const source = (await x.data()) as Float32Array;
  const best = Float32Array.from(source);
  const found = new Uint8Array(n);
  const cap = queryCap(context);
  for (let k = 1; k <= params.steps; k++) {
    const active = indicesWhere(found).filter((i) => queries[i] < cap - 1);
    if (active.length === 0) break;
    const amplitude = (params.maxAmplitude * (hi - lo) * k) / params.steps;
    const candidate = new Float32Array(active.length * d);
    active.forEach((i, a) => {
      for (let j = 0; j < d; j++) {
        const v = source[i * d + j] + rng.uniform(-amplitude, amplitude);
        candidate[a * d + j] = Math.min(hi, Math.max(lo, v));
      }
    });
    const batch = tf.tensor(candidate, [active.length, ...x.shape.slice(1)]);
    const labels = await queryLabels(target, batch, queries, active);
    batch.dispose();
    const fooled = isAdversarial(subsetCriterion(criterion, active), labels);
    active.forEach((i, a) => {
      if (fooled[a]) {
        found[i] = 1;
        best.set(candidate.subarray(a * d, (a + 1) * d), i * d);
      }
    });
  }
  return { adversarial: tf.tensor4d(best, x.shape) };
}

/** AUNA: additive uniform noise grown until the label flips. */
export function auna(params: AunaParams = {}): Attack {
  const resolved: Required<AunaParams> = {
    steps: params.steps ?? 100,
    maxAmplitude: params.maxAmplitude ?? 1,
    seed: params.seed ?? 0,
  };
  if (!Number.isInteger(resolved.steps) || resolved.steps < 1) {
    throw new RangeError(`attack "auna": steps = ${params.steps} is invalid`);
  }
  if (!(resolved.maxAmplitude > 0)) {
    throw new RangeError(`attack "auna": maxAmplitude = ${params.maxAmplitude} is invalid`);
  }
  return minimizationAttack(
    { name: "auna", norm: "l2", kind: "black-box", params: resolved },
    (c) => search(c, resolved),
  );
}

/**
 * Adversarial starting points for decision-based attacks, as a flat Float32Array [n * d]: for each example
 * the first adversarial blend with uniform noise over `steps` blend factors, then `binarySteps` bisections
 * towards the input. `found[i]` is 0 where no blend fooled the model (the row is then the input itself).
 */
export async function blendedNoiseStart(
  context: AttackContext,
  rng: Rng,
  steps = 25,
  binarySteps = 10,
): Promise<{ start: Float32Array; found: Uint8Array }> {
  const { target, x, criterion, queries } = context;
  const n = x.shape[0];
  const d = x.size / n;
  const [lo, hi] = target.inputRange;
  const source = (await x.data()) as Float32Array;
  const noise = rng.uniformArray(n * d, lo, hi);
  const found = new Uint8Array(n);
  const high = new Float32Array(n).fill(1); // blend factor known adversarial
  const low = new Float32Array(n); // blend factor known benign
  const blend = (indices: ArrayLike<number>, factors: ArrayLike<number>) => {
    const out = new Float32Array(indices.length * d);
    for (let a = 0; a < indices.length; a++) {
      const i = indices[a];
      const t = factors[a];
      for (let j = 0; j < d; j++) out[a * d + j] = (1 - t) * source[i * d + j] + t * noise[i * d + j];
    }
    return out;
  };
  const check = async (indices: Int32Array, factors: Float32Array) => {
    const batch = tf.tensor(blend(indices, factors), [indices.length, ...x.shape.slice(1)]);
    const labels = await queryLabels(target, batch, queries, indices);
    batch.dispose();
    return isAdversarial(subsetCriterion(criterion, indices), labels);
  };
  for (let k = 1; k <= steps; k++) {
    const active = indicesWhere(found);
    if (active.length === 0) break;
    const t = k / steps;
    const fooled = await check(active, new Float32Array(active.length).fill(t));
    active.forEach((i, a) => {
      if (fooled[a]) {
        found[i] = 1;
        high[i] = t;
        low[i] = (k - 1) / steps;
      }
    });
  }
  const solved = indicesWhere(found, 1);
  for (let s = 0; s < binarySteps && solved.length > 0; s++) {
    const middle = Float32Array.from(solved, (i) => (low[i] + high[i]) / 2);
    const fooled = await check(solved, middle);
    solved.forEach((i, a) => {
      if (fooled[a]) high[i] = middle[a];
      else low[i] = middle[a];
    });
  }
  const factors = Float32Array.from({ length: n }, (_, i) => (found[i] ? high[i] : 0));
  return { start: blend(Int32Array.from({ length: n }, (_, i) => i), factors), found };
}
