/**
 * DeepFool (Moosavi-Dezfooli et al. 2016), L2 and L_inf: linearise the classifier around the current point,
 * step to the nearest linearised decision boundary among the `candidates` most likely classes, repeat until
 * the label flips; the accumulated perturbation is scaled by (1 + overshoot). A minimisation attack.
 *
 * Probabilities are attacked through their logarithm: log-softmax differs from the logits by a per-example
 * constant, so class differences (and DeepFool's steps) are the same.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type AttackContext, minimizationAttack, type SearchOutcome } from "./base.ts";
import { criterionClasses } from "./criteria.ts";
import { exactSign, TINY } from "./norms.ts";
import { indicesWhere, queryScores, replaceRows } from "./query.ts";
import type { Attack, AttackTarget } from "./types.ts";

/** Parameters of {@link deepFool} and {@link deepFoolLinf}. Defaults follow Foolbox 3. */
export interface DeepFoolParams {
  /** Maximum iterations (default 50; the paper uses 100). */
  steps?: number;
  /** Number of top classes considered, the true label included (default 10; the paper's "subsample"). */
  candidates?: number;
  /** Final perturbation = (1 + overshoot) * accumulated steps (default 0.02). */
  overshoot?: number;
}

function logScores(target: AttackTarget, x: tf.Tensor): tf.Tensor2D {
  const s = target.scores(x);
  return target.scoreKind === "logits" ? s : tf.log(tf.clipByValue(s, 1e-30, 1)) as tf.Tensor2D;
}

async function search(
  context: AttackContext,
  norm: "l2" | "linf",
  params: Required<DeepFoolParams>,
): Promise<SearchOutcome> {
  const { target, x, criterion, queries } = context;
  if (criterion.kind !== "misclassification") {
    throw new RangeError(`attack "deepfool-${norm}" supports only the misclassification criterion`);
  }
  const labels = criterionClasses(criterion);
  const n = x.shape[0];
  const first = await queryScores(target, x, queries);
  const numClasses = first.numClasses;
  const k = Math.min(params.candidates, numClasses);
  if (k < 2) {
    throw new RangeError(`attack "deepfool-${norm}": candidates must be >= 2, got ${params.candidates}`);
  }
  // Candidate classes per example: the true label, then the other classes by descending original score.
  const classes = new Int32Array(n * k);
  for (let i = 0; i < n; i++) {
    const row = Array.from(first.scores.subarray(i * numClasses, (i + 1) * numClasses), (v, c) => [v, c]);
    const others = row.filter(([, c]) => c !== labels[i]).sort((a, b) => b[0] - a[0]).slice(0, k - 1);
    classes[i * k] = labels[i];
    others.forEach(([, c], j) => classes[i * k + 1 + j] = c);
  }
  const done = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < numClasses; c++) {
      if (first.scores[i * numClasses + c] > first.scores[i * numClasses + best]) best = c;
    }
    done[i] = best !== labels[i] ? 1 : 0;
  }
  let total = tf.zerosLike(x) as tf.Tensor4D;
  let current = x.clone();
  const [lo, hi] = target.inputRange;
  for (let step = 0; step < params.steps; step++) {
    const active = indicesWhere(done);
    if (active.length === 0) break;
    const m = active.length;
    // One backward pass for all candidate differences: tile the active examples k-1 times.
    const pairIndex: number[] = [];
    const otherClass: number[] = [];
    const trueClass: number[] = [];
    for (let j = 1; j < k; j++) {
      for (const i of active) {
        pairIndex.push(i);
        otherClass.push(classes[i * k + j]);
        trueClass.push(classes[i * k]);
      }
    }
    const [gradients, differences] = tf.tidy(() => {
      const tiled = tf.gather(current, pairIndex);
      const select = (c: number[]) => tf.oneHot(tf.tensor1d(c, "int32"), numClasses).toFloat();
      const direction = tf.sub(select(otherClass), select(trueClass));
      const f = (input: tf.Tensor) => tf.sum(tf.mul(logScores(target, input), direction), 1);
      const g = tf.grad((input: tf.Tensor) => tf.sum(f(input)))(tiled);
      return [g, f(tiled)];
    });
    for (const i of active) queries[i] += 1;
    const fValues = (await differences.data()) as Float32Array;
    const norms = tf.tidy(() => {
      const flat = gradients.reshape([gradients.shape[0], -1]);
      return norm === "l2" ? tf.sqrt(tf.sum(tf.square(flat), 1)) : tf.sum(tf.abs(flat), 1);
    });
    const normValues = (await norms.data()) as Float32Array;
    norms.dispose();
    // Per active example, the candidate with the nearest linearised boundary.
    const chosen = new Int32Array(m);
    const scale = new Float32Array(m);
    for (let a = 0; a < m; a++) {
      let bestDistance = Infinity;
      for (let j = 0; j < k - 1; j++) {
        const row = j * m + a;
        const distance = Math.abs(fValues[row]) / Math.max(normValues[row], TINY);
        if (distance < bestDistance) {
          bestDistance = distance;
          chosen[a] = row;
          const dual = norm === "l2" ? normValues[row] ** 2 : normValues[row];
          scale[a] = (Math.abs(fValues[row]) + 1e-4) / Math.max(dual, TINY);
        }
      }
    }
    differences.dispose();
    const nextTotal = tf.tidy(() => {
      const w = tf.gather(gradients, chosen);
      const stepDelta = tf.mul(norm === "l2" ? w : exactSign(w), tf.tensor(scale, [m, 1, 1, 1]));
      return replaceRows(total, active, tf.add(tf.gather(total, active), stepDelta));
    });
    gradients.dispose();
    total.dispose();
    total = nextTotal as tf.Tensor4D;
    const nextCurrent = tf.tidy(() => tf.clipByValue(tf.add(x, tf.mul(total, 1 + params.overshoot)), lo, hi));
    current.dispose();
    current = nextCurrent as tf.Tensor4D;
    const activeBatch = tf.gather(current, active);
    const check = await queryScores(target, activeBatch, queries, active);
    activeBatch.dispose();
    active.forEach((i, a) => {
      let best = 0;
      for (let c = 1; c < numClasses; c++) {
        if (check.scores[a * numClasses + c] > check.scores[a * numClasses + best]) best = c;
      }
      if (best !== labels[i]) done[i] = 1;
    });
  }
  total.dispose();
  return { adversarial: current };
}

function build(norm: "l2" | "linf", params: DeepFoolParams): Attack {
  const resolved: Required<DeepFoolParams> = {
    steps: params.steps ?? 50,
    candidates: params.candidates ?? 10,
    overshoot: params.overshoot ?? 0.02,
  };
  const name = `deepfool-${norm}`;
  if (!Number.isInteger(resolved.steps) || resolved.steps < 1) {
    throw new RangeError(`attack "${name}": steps = ${params.steps} is invalid`);
  }
  if (!Number.isInteger(resolved.candidates) || resolved.candidates < 2) {
    throw new RangeError(`attack "${name}": candidates = ${params.candidates} is invalid (>= 2)`);
  }
  if (!(resolved.overshoot >= 0)) {
    throw new RangeError(`attack "${name}": overshoot = ${params.overshoot} is invalid`);
  }
  return minimizationAttack(
    { name, norm, kind: "white-box", params: resolved },
    (context) => search(context, norm, resolved),
  );
}

/** DeepFool under L2. */
export function deepFool(params: DeepFoolParams = {}): Attack {
  return build("l2", params);
}

/** DeepFool under L_inf. */
export function deepFoolLinf(params: DeepFoolParams = {}): Attack {
  return build("linf", params);
}
