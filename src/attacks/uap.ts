/**
 * UAP, universal adversarial perturbations (Moosavi-Dezfooli et al. 2017; ART's UniversalPerturbation, used
 * by the paper): one perturbation v, shared by every image, learned on a set of examples and then added to
 * other images.
 *
 * Learning (`learn`): v = 0; in each pass over the learning set (shuffled, seeded), every example still
 * classified as its label at `clip(x_i + v)` gets an inner attack from there, and when that inner attack
 * succeeds its perturbation is added to v, which is projected back onto the epsilon ball (L_inf: clip per
 * element; L2: rescale). Passes stop after `maxIter` or once the fooling rate on the learning set reaches
 * `1 - delta`. The inner attack is DeepFool L2 (`inner: "deepfool"`, the paper's choice for both norms and
 * ART's default) or a short PGD in the UAP's own norm (`inner: "pgd"`). `batchSize` > 1 runs the inner
 * attack on that many examples at once from the same v (faster; the paper's loop is `batchSize: 1`).
 *
 * `run` learns on the batch it attacks and applies the result (ART's `generate`); `apply(v)` gives an
 * attack that adds a perturbation learned elsewhere, so a UAP learned on a training split can be evaluated
 * on a test split. Applying needs no gradients of the attacked target (one query per example: the check).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type AttackContext, fixedEpsilonAttack, type SearchOutcome } from "./base.ts";
import { checkCriterion, misclassification } from "./criteria.ts";
import { deepFool } from "./deepfool.ts";
import { pgd, pgdL2 } from "./pgd.ts";
import { queryLabels } from "./query.ts";
import { Rng } from "./rng.ts";
import { assertDifferentiable, checkBatch } from "./target.ts";
import type { Attack, AttackBudget, AttackTarget } from "./types.ts";

/** Parameters of {@link uap}. Defaults follow ART's UniversalPerturbation. */
export interface UapParams {
  /** Maximum passes over the learning set (default 20; the paper uses 3). */
  maxIter?: number;
  /** Stop once the fooling rate on the learning set reaches 1 - delta (default 0.2). */
  delta?: number;
  /** Inner attack: "deepfool" (L2 DeepFool, default) or "pgd" (PGD in the UAP's norm). */
  inner?: "deepfool" | "pgd";
  /** Inner attack steps (default 50 for DeepFool, 10 for PGD). */
  innerSteps?: number;
  /** Examples attacked at once from the same v (default 1, the paper's sequential loop). */
  batchSize?: number;
  /** Shuffling seed. */
  seed?: number;
}

/** A learned universal perturbation. */
export interface UniversalPerturbation {
  /** The perturbation, shape [1, h, w, c]; the caller disposes it. */
  perturbation: tf.Tensor4D;
  /** Fraction of the learning set misclassified at `clip(x + v)` after the last pass. */
  foolingRate: number;
  /** Passes made. */
  passes: number;
  /** Queries spent per learning example (label checks, inner attacks, fooling-rate checks). */
  queries: Int32Array;
}

/** The UAP attack: an `Attack` (learns on the batch it attacks) that can also learn and apply separately. */
export interface UapAttack extends Attack {
  /** Learns a universal perturbation on `x` with true `labels`, within `budget.epsilon` in the attack's norm. */
  learn(
    target: AttackTarget,
    x: tf.Tensor4D,
    labels: ArrayLike<number>,
    budget: AttackBudget,
  ): Promise<UniversalPerturbation>;
  /** An attack that adds `perturbation` ([1, h, w, c]) to every example (it keeps a copy of the values). */
  apply(perturbation: tf.Tensor4D): Attack;
}

function projectVector(v: Float32Array, norm: "linf" | "l2", epsilon: number): void {
  if (norm === "linf") {
    for (let j = 0; j < v.length; j++) v[j] = Math.max(-epsilon, Math.min(epsilon, v[j]));
    return;
  }
  let sum = 0;
  for (const value of v) sum += value * value;
  const length = Math.sqrt(sum);
  if (length > epsilon) { for (let j = 0; j < v.length; j++) v[j] *= epsilon / length; }
}

function addPerturbation(x: tf.Tensor4D, v: tf.Tensor, range: [number, number]): tf.Tensor4D {
  return tf.tidy(() => tf.clipByValue(tf.add(x, v), range[0], range[1]) as tf.Tensor4D);
}

async function learn(
  name: string,
  norm: "linf" | "l2",
  params: Required<UapParams>,
  target: AttackTarget,
  x: tf.Tensor4D,
  labelValues: ArrayLike<number>,
  budget: AttackBudget,
): Promise<UniversalPerturbation> {
  const epsilon = budget.epsilon;
  if (!(epsilon >= 0) || !Number.isFinite(epsilon)) {
    throw new RangeError(`attack "${name}": budget.epsilon must be a finite number >= 0, got ${epsilon}`);
  }
  checkBatch(target, x, name);
  assertDifferentiable(target, name);
  const labels = misclassification(labelValues).labels;
  checkCriterion({ kind: "misclassification", labels }, x.shape[0]);
  const n = x.shape[0];
  const shape = [1, ...x.shape.slice(1)];
  const v = new Float32Array(x.size / Math.max(n, 1));
  const queries = new Int32Array(n);
  const rng = new Rng(params.seed);
  const innerAttack = params.inner === "deepfool"
    ? deepFool({ steps: params.innerSteps })
    : (norm === "linf" ? pgd : pgdL2)({ steps: params.innerSteps, relStepSize: 0.25, randomStart: false });
  // DeepFool is a minimisation attack (no bound: its smallest step); PGD is bounded by the UAP's epsilon.
  const innerBudget: AttackBudget = { epsilon: params.inner === "deepfool" ? Infinity : epsilon };
  let foolingRate = 0;
  let passes = 0;
  for (let pass = 0; pass < params.maxIter && n > 0; pass++) {
    passes++;
    const order = rng.permutation(n);
    for (let start = 0; start < n; start += params.batchSize) {
      const chunk = order.subarray(start, Math.min(n, start + params.batchSize));
      const vTensor = tf.tensor(v, shape);
      const perturbed = tf.tidy(() =>
        addPerturbation(tf.gather(x, chunk) as tf.Tensor4D, vTensor, target.inputRange)
      );
      vTensor.dispose();
      const predicted = await queryLabels(target, perturbed, queries, chunk);
      const still = Int32Array.from(chunk.keys()).filter((a) => predicted[a] === labels[chunk[a]]);
      if (still.length === 0) {
        perturbed.dispose();
        continue;
      }
      const from = tf.gather(perturbed, still) as tf.Tensor4D;
      perturbed.dispose();
      const result = await innerAttack.run(
        target,
        from,
        misclassification(Array.from(still, (a) => labels[chunk[a]])),
        innerBudget,
      );
      still.forEach((a, b) => queries[chunk[a]] += result.queries[b]);
      const steps = tf.sub(result.adversarial, from);
      const values = (await steps.data()) as Float32Array;
      tf.dispose([steps, from, result.adversarial]);
      const d = v.length;
      still.forEach((_, b) => {
        if (!result.success[b]) return;
        for (let j = 0; j < d; j++) v[j] += values[b * d + j];
        projectVector(v, norm, epsilon);
      });
    }
    const vTensor = tf.tensor(v, shape);
    const all = addPerturbation(x, vTensor, target.inputRange);
    vTensor.dispose();
    const predicted = await queryLabels(target, all, queries);
    all.dispose();
    foolingRate = predicted.reduce((sum, p, i) => sum + (p !== labels[i] ? 1 : 0), 0) / n;
    if (foolingRate >= 1 - params.delta) break;
  }
  return {
    perturbation: tf.tensor4d(v, shape as [number, number, number, number]),
    foolingRate,
    passes,
    queries,
  };
}

function applyAttack(name: string, norm: "linf" | "l2", perturbation: tf.Tensor4D): Attack {
  if (perturbation.rank !== 4 || perturbation.shape[0] !== 1) {
    throw new RangeError(
      `attack "${name}": perturbation must have shape [1, h, w, c], got [${perturbation.shape}]`,
    );
  }
  // Kept as plain numbers, so the attack owns no tensor that would need disposing.
  const values = Float32Array.from(perturbation.dataSync());
  const vShape = perturbation.shape;
  return fixedEpsilonAttack(
    { name, norm, kind: "black-box", params: { perturbation: `[${perturbation.shape}]` } },
    (context: AttackContext): Promise<SearchOutcome> => {
      const shape = context.x.shape.slice(1);
      if (shape.some((size, k) => size !== vShape[k + 1])) {
        throw new RangeError(
          `attack "${name}": perturbation shape [${vShape}] does not match the batch's images [${shape}]`,
        );
      }
      const v = tf.tensor4d(values, vShape);
      const adversarial = addPerturbation(context.x, v, context.target.inputRange);
      v.dispose();
      return Promise.resolve({ adversarial });
    },
  );
}

function build(norm: "linf" | "l2", params: UapParams): UapAttack {
  const name = norm === "linf" ? "uap" : "uap-l2";
  const inner = params.inner ?? "deepfool";
  const resolved: Required<UapParams> = {
    maxIter: params.maxIter ?? 20,
    delta: params.delta ?? 0.2,
    inner,
    innerSteps: params.innerSteps ?? (inner === "deepfool" ? 50 : 10),
    batchSize: params.batchSize ?? 1,
    seed: params.seed ?? 0,
  };
  const bad = (field: string, value: unknown) =>
    new RangeError(`attack "${name}": ${field} = ${value} is invalid`);
  for (const field of ["maxIter", "innerSteps", "batchSize"] as const) {
    if (!Number.isInteger(resolved[field]) || resolved[field] < 1) throw bad(field, params[field]);
  }
  if (!(resolved.delta >= 0 && resolved.delta <= 1)) throw bad("delta", params.delta);
  if (inner !== "deepfool" && inner !== "pgd") throw bad("inner", params.inner);
  const attack = fixedEpsilonAttack(
    { name, norm, kind: "white-box", params: resolved },
    async (context) => {
      if (context.criterion.kind !== "misclassification") {
        throw new RangeError(`attack "${name}" supports only the misclassification criterion`);
      }
      const learned = await learn(
        name,
        norm,
        resolved,
        context.target,
        context.x,
        context.criterion.labels,
        context.budget,
      );
      learned.queries.forEach((q, i) => context.queries[i] += q);
      const adversarial = addPerturbation(context.x, learned.perturbation, context.target.inputRange);
      learned.perturbation.dispose();
      return { adversarial };
    },
  );
  return {
    ...attack,
    learn: (target, x, labels, budget) => learn(name, norm, resolved, target, x, labels, budget),
    apply: (perturbation) => applyAttack(`${name}-apply`, norm, perturbation),
  };
}

/** UAP under L_inf. */
export function uap(params: UapParams = {}): UapAttack {
  return build("linf", params);
}

/** UAP under L2. */
export function uapL2(params: UapParams = {}): UapAttack {
  return build("l2", params);
}
