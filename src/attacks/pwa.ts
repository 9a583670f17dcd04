/**
 * PWA, the pointwise attack (Schott et al. 2019; Foolbox's PointwiseAttack, used by the paper): start from an
 * adversarial example (uniform-noise blend), then in random order reset each changed pixel to its original
 * value whenever the example stays adversarial; repeat passes until none can be reset. Decision-based
 * (labels only), a minimisation attack in L0 (changed pixel positions). Every accepted change keeps the
 * example adversarial, so the L0 distance never grows.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { blendedNoiseStart, queryCap } from "./auna.ts";
import { type AttackContext, minimizationAttack, type SearchOutcome } from "./base.ts";
import { isAdversarial, subsetCriterion } from "./criteria.ts";
import { queryLabels } from "./query.ts";
import { Rng } from "./rng.ts";
import type { Attack } from "./types.ts";

/** Parameters of {@link pwa}. */
export interface PwaParams {
  /** Maximum passes over the pixels (default 10). */
  passes?: number;
  /** Blend factors tried for the starting point (default 25). */
  startSteps?: number;
  seed?: number;
}

async function search(context: AttackContext, params: Required<PwaParams>): Promise<SearchOutcome> {
  const { target, x, criterion, queries } = context;
  const [n, h, w, c] = x.shape;
  const d = h * w * c;
  const rng = new Rng(params.seed);
  const source = (await x.data()) as Float32Array;
  const { start: current, found } = await blendedNoiseStart(context, rng, params.startSteps);
  const cap = queryCap(context);
  const pixels = h * w;
  const changedPixels = (i: number) => {
    const out: number[] = [];
    for (let p = 0; p < pixels; p++) {
      for (let k = 0; k < c; k++) {
        if (current[i * d + p * c + k] !== source[i * d + p * c + k]) {
          out.push(p);
          break;
        }
      }
    }
    return out;
  };
  for (let pass = 0; pass < params.passes; pass++) {
    // Each example walks its own random order of the pixels it still changes.
    const orders = Array.from({ length: n }, (_, i) => {
      if (!found[i]) return [];
      const changed = changedPixels(i);
      const perm = rng.permutation(changed.length);
      return Array.from(perm, (j) => changed[j]);
    });
    const longest = Math.max(0, ...orders.map((o) => o.length));
    let improved = false;
    for (let t = 0; t < longest; t++) {
      const active = Int32Array.from(
        orders.map((o, i) => (t < o.length && queries[i] < cap - 1 ? i : -1)).filter((i) => i >= 0),
      );
      if (active.length === 0) continue;
      const candidate = new Float32Array(active.length * d);
      active.forEach((i, a) => {
        candidate.set(current.subarray(i * d, (i + 1) * d), a * d);
        const p = orders[i][t];
        for (let k = 0; k < c; k++) candidate[a * d + p * c + k] = source[i * d + p * c + k];
      });
      const batch = tf.tensor(candidate, [active.length, h, w, c]);
      const labels = await queryLabels(target, batch, queries, active);
      batch.dispose();
      const still = isAdversarial(subsetCriterion(criterion, active), labels);
      active.forEach((i, a) => {
        if (still[a]) {
          current.set(candidate.subarray(a * d, (a + 1) * d), i * d);
          improved = true;
        }
      });
    }
    if (!improved) break;
  }
  return { adversarial: tf.tensor4d(current, x.shape) };
}

/** PWA: pointwise L0 minimisation from an adversarial start. */
export function pwa(params: PwaParams = {}): Attack {
  const resolved: Required<PwaParams> = {
    passes: params.passes ?? 10,
    startSteps: params.startSteps ?? 25,
    seed: params.seed ?? 0,
  };
  if (!Number.isInteger(resolved.passes) || resolved.passes < 1) {
    throw new RangeError(`attack "pwa": passes = ${params.passes} is invalid`);
  }
  if (!Number.isInteger(resolved.startSteps) || resolved.startSteps < 1) {
    throw new RangeError(`attack "pwa": startSteps = ${params.startSteps} is invalid`);
  }
  return minimizationAttack(
    { name: "pwa", norm: "l0", kind: "black-box", params: resolved },
    (c) => search(c, resolved),
  );
}
