/**
 * Boundary attack (Brendel et al. 2018), decision-based, L2: from an adversarial start, random walk along the
 * decision boundary. Each step draws an orthogonal (spherical) perturbation around the input and a step
 * towards the input, and accepts the candidate only when it is adversarial and closer. Step sizes adapt to
 * the recent acceptance rates (Foolbox 3). Accepted points only get closer: the distance never grows.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { blendedNoiseStart, queryCap } from "./auna.ts";
import { type AttackContext, minimizationAttack, type SearchOutcome } from "./base.ts";
import { isAdversarial, subsetCriterion } from "./criteria.ts";
import { indicesWhere, queryLabels } from "./query.ts";
import { Rng } from "./rng.ts";
import type { Attack } from "./types.ts";

/** Parameters of {@link boundary}. */
export interface BoundaryParams {
  /** Iterations (default 1000; the paper uses 5000). Each costs 2 queries per example. */
  steps?: number;
  /** Initial spherical step, relative to the current distance (default 0.01). */
  sphericalStep?: number;
  /** Initial step towards the input, relative to the current distance (default 0.01; the paper's initial_stepsize). */
  stepSize?: number;
  /** Factor by which step sizes grow or shrink (default 1.5). */
  stepAdaptation?: number;
  /** Iterations between step-size updates (default 10). */
  updateEvery?: number;
  seed?: number;
}

async function search(context: AttackContext, params: Required<BoundaryParams>): Promise<SearchOutcome> {
  const { target, x, criterion, queries } = context;
  const n = x.shape[0];
  const d = x.size / n;
  const [lo, hi] = target.inputRange;
  const rng = new Rng(params.seed);
  const source = (await x.data()) as Float32Array;
  const { start: best, found } = await blendedNoiseStart(context, rng);
  const spherical = new Float32Array(n).fill(params.sphericalStep);
  const towards = new Float32Array(n).fill(params.stepSize);
  const sphericalHits = new Int32Array(n), stepHits = new Int32Array(n), trials = new Int32Array(n);
  const cap = queryCap(context);
  for (let step = 0; step < params.steps; step++) {
    const active = indicesWhere(found, 1).filter((i) => queries[i] < cap - 2);
    if (active.length === 0) break;
    const m = active.length;
    const onSphere = new Float32Array(m * d);
    const candidates = new Float32Array(m * d);
    const candidateDistance = new Float32Array(m);
    const currentDistance = new Float32Array(m);
    active.forEach((i, a) => {
      const base = i * d;
      let sourceNorm = 0;
      for (let j = 0; j < d; j++) sourceNorm += (best[base + j] - source[base + j]) ** 2;
      sourceNorm = Math.sqrt(sourceNorm);
      currentDistance[a] = sourceNorm;
      // Gaussian draw made orthogonal to the direction input -> current point.
      const eta = rng.normalArray(d);
      let dot = 0;
      for (let j = 0; j < d; j++) {
        dot += eta[j] * (best[base + j] - source[base + j]) / Math.max(sourceNorm, 1e-12);
      }
      let etaNorm = 0;
      for (let j = 0; j < d; j++) {
        eta[j] -= dot * (best[base + j] - source[base + j]) / Math.max(sourceNorm, 1e-12);
        etaNorm += eta[j] ** 2;
      }
      etaNorm = Math.sqrt(etaNorm);
      const scale = spherical[i] * sourceNorm / Math.max(etaNorm, 1e-12);
      // Move along the sphere around the input, keep the radius, then step towards the input.
      let sphereNorm = 0;
      for (let j = 0; j < d; j++) {
        const v = best[base + j] - source[base + j] + eta[j] * scale;
        onSphere[a * d + j] = v;
        sphereNorm += v * v;
      }
      sphereNorm = Math.sqrt(sphereNorm);
      const radius = sourceNorm / Math.max(sphereNorm, 1e-12);
      const shrink = 1 - towards[i];
      let candidateNorm = 0;
      for (let j = 0; j < d; j++) {
        const direction = onSphere[a * d + j] * radius;
        onSphere[a * d + j] = Math.min(hi, Math.max(lo, source[base + j] + direction));
        const c = Math.min(hi, Math.max(lo, source[base + j] + direction * shrink));
        candidates[a * d + j] = c;
        candidateNorm += (c - source[base + j]) ** 2;
      }
      candidateDistance[a] = Math.sqrt(candidateNorm);
    });
    const shape = [m, ...x.shape.slice(1)];
    const sub = subsetCriterion(criterion, active);
    const sphereBatch = tf.tensor(onSphere, shape);
    const sphereFooled = isAdversarial(sub, await queryLabels(target, sphereBatch, queries, active));
    sphereBatch.dispose();
    const candidateBatch = tf.tensor(candidates, shape);
    const candidateFooled = isAdversarial(sub, await queryLabels(target, candidateBatch, queries, active));
    candidateBatch.dispose();
    active.forEach((i, a) => {
      trials[i]++;
      sphericalHits[i] += sphereFooled[a];
      stepHits[i] += candidateFooled[a];
      if (candidateFooled[a] && candidateDistance[a] < currentDistance[a]) {
        best.set(candidates.subarray(a * d, (a + 1) * d), i * d);
      }
      if (trials[i] === params.updateEvery) {
        const sphereRate = sphericalHits[i] / trials[i];
        const stepRate = stepHits[i] / trials[i];
        spherical[i] *= sphereRate > 0.5 ? params.stepAdaptation : 1 / params.stepAdaptation;
        towards[i] = Math.min(
          0.5,
          towards[i] * (stepRate > 0.5 ? params.stepAdaptation : 1 / params.stepAdaptation),
        );
        trials[i] = sphericalHits[i] = stepHits[i] = 0;
      }
    });
  }
  return { adversarial: tf.tensor4d(best, x.shape) };
}

/** Boundary attack (decision-based, L2). */
export function boundary(params: BoundaryParams = {}): Attack {
  const resolved: Required<BoundaryParams> = {
    steps: params.steps ?? 1000,
    sphericalStep: params.sphericalStep ?? 0.01,
    stepSize: params.stepSize ?? 0.01,
    stepAdaptation: params.stepAdaptation ?? 1.5,
    updateEvery: params.updateEvery ?? 10,
    seed: params.seed ?? 0,
  };
  for (const key of ["steps", "updateEvery"] as const) {
    if (!Number.isInteger(resolved[key]) || resolved[key] < 1) {
      throw new RangeError(`attack "boundary": ${key} = ${resolved[key]} is invalid`);
    }
  }
  for (const key of ["sphericalStep", "stepSize"] as const) {
    if (!(resolved[key] > 0 && resolved[key] < 1)) {
      throw new RangeError(`attack "boundary": ${key} = ${resolved[key]} must be in (0, 1)`);
    }
  }
  if (!(resolved.stepAdaptation > 1)) throw new RangeError(`attack "boundary": stepAdaptation must be > 1`);
  return minimizationAttack(
    { name: "boundary", norm: "l2", kind: "black-box", params: resolved },
    (c) => search(c, resolved),
  );
}
