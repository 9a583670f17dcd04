/**
 * JSMA, the Jacobian-based saliency map attack (Papernot et al. 2016), in Foolbox 2's single-element form
 * (SaliencyMapAttack, used by the paper). Per iteration, with `a = d z_t / d x` (target class) and
 * `b = sum_{j != t} d z_j / d x` (all other classes), the element with the most negative `a * b` (the target
 * rises while the others fall, in either direction) is moved by `theta * (input range)` towards `sign(a)`.
 * An element leaves the search when it reaches the range's edge or has been changed
 * `maxPerturbationsPerPixel` times. Untargeted runs aim at the class that is second most likely on the clean
 * input (Foolbox 2 with no random targets) and stop at the first misclassification.
 *
 * An L0 minimisation attack. Elements are searched one at a time (for colour images, channels separately;
 * L0 counts pixel positions). With a finite `budget.epsilon`, an example stops once it has more changed
 * pixel positions than that. Probability targets are attacked through log-probabilities.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type AttackContext, minimizationAttack, type SearchOutcome } from "./base.ts";
import { criterionClasses, isAdversarial, subsetCriterion } from "./criteria.ts";
import { logitsOf } from "./cw.ts";
import { queryScores } from "./query.ts";
import type { Attack } from "./types.ts";

/** Parameters of {@link jsma}. Defaults follow Foolbox 2 (and the paper). */
export interface JsmaParams {
  /** Change per step as a fraction of the input range (default 0.1). */
  theta?: number;
  /** Maximum iterations (default 2000). */
  maxIter?: number;
  /** How often one element may be changed (default 7). */
  maxPerturbationsPerPixel?: number;
}

async function search(context: AttackContext, params: Required<JsmaParams>): Promise<SearchOutcome> {
  const { target, x, criterion, epsilon, queries } = context;
  const [n, h, w, c] = x.shape;
  const d = h * w * c;
  const [lo, hi] = target.inputRange;
  const step = params.theta * (hi - lo);
  const current = Float32Array.from((await x.data()) as Float32Array);
  const first = await queryScores(target, x, queries);
  const numClasses = first.numClasses;
  const labels = criterionClasses(criterion);
  // The class each example is pushed towards.
  const aim = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (criterion.kind === "targeted") aim[i] = labels[i];
    else {
      let bestClass = -1;
      for (let k = 0; k < numClasses; k++) {
        if (k === labels[i]) continue;
        if (bestClass < 0 || first.scores[i * numClasses + k] > first.scores[i * numClasses + bestClass]) {
          bestClass = k;
        }
      }
      aim[i] = bestClass;
    }
  }
  const searchable = new Uint8Array(n * d).fill(1);
  const counts = new Uint8Array(n * d);
  const changedPixels = new Int32Array(n);
  const pixelChanged = new Uint8Array(n * h * w);
  const done = new Uint8Array(n);
  let predicted: Int32Array | undefined = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let top = 0;
    for (let k = 1; k < numClasses; k++) {
      if (first.scores[i * numClasses + k] > first.scores[i * numClasses + top]) top = k;
    }
    predicted[i] = top;
  }
  isAdversarial(criterion, predicted).forEach((v, i) => done[i] = v);
  for (let iteration = 0; iteration < params.maxIter; iteration++) {
    const active = Int32Array.from(done.keys()).filter((i) => done[i] === 0);
    if (active.length === 0) break;
    const m = active.length;
    const batch = new Float32Array(m * d);
    active.forEach((i, a) => batch.set(current.subarray(i * d, (i + 1) * d), a * d));
    // One backward pass: rows [0, m) give a (target), rows [m, 2m) give b (sum of the other classes).
    let labelTensor: tf.Tensor | undefined;
    const gradient = tf.tidy(() => {
      const input = tf.tensor4d(batch, [m, h, w, c]);
      const tiled = tf.concat([input, input]);
      const aimHot = tf.oneHot(tf.tensor1d(Int32Array.from(active, (i) => aim[i]), "int32"), numClasses)
        .toFloat();
      const weights = tf.concat([aimHot, tf.sub(1, aimHot)]);
      return tf.grad((t: tf.Tensor) => {
        const logits = logitsOf(target, t);
        labelTensor = tf.keep(tf.argMax(logits.slice([0, 0], [m, -1]), 1));
        return tf.sum(tf.mul(logits, weights));
      })(tiled);
    });
    active.forEach((i) => queries[i]++);
    const g = (await gradient.data()) as Float32Array;
    const labelsNow = Int32Array.from((await labelTensor!.data()) as Int32Array);
    tf.dispose([gradient, labelTensor!]);
    const adversarialNow = isAdversarial(subsetCriterion(criterion, active), labelsNow);
    active.forEach((i, a) => {
      predicted![i] = labelsNow[a];
      if (adversarialNow[a]) {
        done[i] = 1;
        return;
      }
      let chosen = -1, lowest = Infinity;
      for (let j = 0; j < d; j++) {
        if (!searchable[i * d + j]) continue;
        const alpha = g[a * d + j], beta = g[(m + a) * d + j];
        if (alpha === 0) continue;
        const product = alpha * beta;
        if (product < lowest) {
          lowest = product;
          chosen = j;
        }
      }
      if (chosen < 0) {
        done[i] = 2; // nothing left to change
        return;
      }
      const index = i * d + chosen;
      const value = Math.min(hi, Math.max(lo, current[index] + Math.sign(g[a * d + chosen]) * step));
      current[index] = value;
      counts[index]++;
      if (value <= lo || value >= hi || counts[index] >= params.maxPerturbationsPerPixel) {
        searchable[index] = 0;
      }
      const pixel = i * h * w + Math.floor(chosen / c);
      if (!pixelChanged[pixel]) {
        pixelChanged[pixel] = 1;
        changedPixels[i]++;
      }
      if (changedPixels[i] > epsilon) done[i] = 2; // beyond the L0 budget: cannot succeed any more
    });
  }
  // Labels from the last gradient pass are those of the returned points only for examples that were not moved after it.
  if (Array.from(done).some((v) => v !== 1)) predicted = undefined;
  return { adversarial: tf.tensor4d(current, x.shape), predicted };
}

/** JSMA (L0; see the module doc). */
export function jsma(params: JsmaParams = {}): Attack {
  const resolved: Required<JsmaParams> = {
    theta: params.theta ?? 0.1,
    maxIter: params.maxIter ?? 2000,
    maxPerturbationsPerPixel: params.maxPerturbationsPerPixel ?? 7,
  };
  const bad = (field: string, value: unknown) =>
    new RangeError(`attack "jsma": ${field} = ${value} is invalid`);
  if (!(resolved.theta > 0 && resolved.theta <= 1)) throw bad("theta", params.theta);
  for (const field of ["maxIter", "maxPerturbationsPerPixel"] as const) {
    if (!Number.isInteger(resolved[field]) || resolved[field] < 1) throw bad(field, params[field]);
  }
  return minimizationAttack(
    { name: "jsma", norm: "l0", kind: "white-box", params: resolved },
    (context) => search(context, resolved),
  );
}
