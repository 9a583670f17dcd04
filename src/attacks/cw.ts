/**
 * Carlini & Wagner L2 (2017), Foolbox 3's formulation: optimise `w` in tanh space (x' = tanh(w) scaled into
 * the input range, so the box constraint holds by construction) with Adam on
 * `||x' - x||_2^2 + c * max(z_y - max_{j != y} z_j + kappa, 0)` (targeted: `max_{j != t} z_j - z_t + kappa`),
 * and binary-search the constant c per example (times 10 until a success, then bisection). An iterate counts
 * only when its logit margin exceeds the confidence `kappa`, so with kappa > 0 the returned examples sit at
 * least kappa inside the wrong class, not on the decision boundary. A minimisation attack (L2).
 *
 * Probability targets are attacked through log-probabilities (same class differences as logits); the margin
 * is then measured in log-probability units.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type AttackContext, minimizationAttack, type SearchOutcome } from "./base.ts";
import { criterionClasses } from "./criteria.ts";
import type { Attack, AttackTarget } from "./types.ts";

/** Parameters of {@link carliniWagnerL2}. Defaults follow Foolbox 3 except `steps` (10,000 there). */
export interface CarliniWagnerParams {
  /** Rounds of the search over c (default 9). */
  binarySearchSteps?: number;
  /** Adam steps per round (default 1000). */
  steps?: number;
  /** Adam learning rate (default 0.01). */
  stepSize?: number;
  /** Required logit margin kappa of a success (default 0). */
  confidence?: number;
  /** First c (default 0.001). */
  initialConst?: number;
  /** Stop a round when the loss stopped falling over a tenth of the steps (default true). */
  abortEarly?: boolean;
}

/** Logits, or log-probabilities for a probability target. */
export function logitsOf(target: AttackTarget, x: tf.Tensor): tf.Tensor2D {
  const scores = target.scores(x);
  return target.scoreKind === "logits" ? scores : tf.log(tf.clipByValue(scores, 1e-30, 1)) as tf.Tensor2D;
}

/**
 * Per-example margin by which the criterion is met: untargeted `max_{j != y} z_j - z_y`, targeted
 * `z_t - max_{j != t} z_j` (positive = adversarial).
 */
export function criterionMargins(
  logits: tf.Tensor2D,
  classes: Int32Array,
  targeted: boolean,
): tf.Tensor1D {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(tf.tensor1d(classes, "int32"), logits.shape[1]).toFloat();
    const chosen = tf.sum(tf.mul(logits, oneHot), 1);
    const others = tf.max(tf.sub(logits, tf.mul(oneHot, 1e9)), 1);
    return (targeted ? tf.sub(chosen, others) : tf.sub(others, chosen)) as tf.Tensor1D;
  });
}

async function search(context: AttackContext, params: Required<CarliniWagnerParams>): Promise<SearchOutcome> {
  const { target, x, criterion, queries } = context;
  const n = x.shape[0];
  const [lo, hi] = target.inputRange;
  const half = (hi - lo) / 2, middle = (hi + lo) / 2;
  const classes = criterionClasses(criterion);
  const targeted = criterion.kind === "targeted";
  const kappa = params.confidence;
  const toModel = (w: tf.Tensor) => tf.add(tf.mul(tf.tanh(w), half), middle);
  const w0 = tf.tidy(() => tf.atanh(tf.clipByValue(tf.div(tf.sub(x, middle), half), -1 + 1e-6, 1 - 1e-6)));
  let best = x.clone() as tf.Tensor4D;
  const bestL2 = new Float32Array(n).fill(Infinity);
  const consts = new Float32Array(n).fill(params.initialConst);
  const lower = new Float32Array(n);
  const upper = new Float32Array(n).fill(Infinity);
  const [beta1, beta2] = [0.9, 0.999];
  const checkEvery = Math.ceil(params.steps / 10);
  for (let round = 0; round < params.binarySearchSteps; round++) {
    if (round === params.binarySearchSteps - 1 && params.binarySearchSteps >= 10) {
      for (let i = 0; i < n; i++) consts[i] = Math.min(upper[i], 1e10);
    }
    const c = tf.tensor1d(consts);
    let delta: tf.Tensor = tf.zerosLike(x);
    let m: tf.Tensor = tf.zerosLike(x);
    let v: tf.Tensor = tf.zerosLike(x);
    const found = new Uint8Array(n);
    let lossAtLastCheck = Infinity;
    for (let step = 1; step <= params.steps; step++) {
      let marginTensor: tf.Tensor1D | undefined;
      let l2Tensor: tf.Tensor1D | undefined;
      let candidate: tf.Tensor | undefined;
      const { value, grads } = tf.valueAndGrads((d: tf.Tensor) => {
        const adversarial = toModel(tf.add(w0, d));
        const l2Squared = tf.sum(tf.square(tf.sub(adversarial, x)).reshape([n, -1]), 1);
        const margin = criterionMargins(logitsOf(target, adversarial), classes, targeted);
        marginTensor = tf.keep(margin);
        l2Tensor = tf.keep(tf.sqrt(l2Squared)) as tf.Tensor1D;
        candidate = tf.keep(adversarial);
        // The attacker drives -margin + kappa below zero.
        const hinge = tf.relu(tf.add(tf.neg(margin), kappa));
        return tf.sum(tf.add(l2Squared, tf.mul(c, hinge))) as tf.Scalar;
      })([delta]);
      for (let i = 0; i < n; i++) queries[i]++;
      const margins = (await marginTensor!.data()) as Float32Array;
      const l2 = (await l2Tensor!.data()) as Float32Array;
      const loss = (await value.data())[0];
      const improved = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        if (margins[i] > kappa) {
          found[i] = 1;
          if (l2[i] < bestL2[i]) {
            bestL2[i] = l2[i];
            improved[i] = 1;
          }
        }
      }
      if (improved.some((f) => f === 1)) {
        const next = tf.tidy(() =>
          tf.where(tf.tensor(improved, [n, 1, 1, 1], "bool"), candidate!, best)
        ) as tf.Tensor4D;
        best.dispose();
        best = next;
      }
      const [mNext, vNext, deltaNext] = tf.tidy(() => {
        const g = grads[0];
        const mN = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const vN = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        const mHat = tf.div(mN, 1 - beta1 ** step);
        const vHat = tf.div(vN, 1 - beta2 ** step);
        return [mN, vN, tf.sub(delta, tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), 1e-8)), params.stepSize))];
      });
      tf.dispose([m, v, delta, value, grads[0], marginTensor!, l2Tensor!, candidate!]);
      [m, v, delta] = [mNext, vNext, deltaNext];
      if (params.abortEarly && step % checkEvery === 0) {
        if (!(loss <= 0.9999 * lossAtLastCheck)) break;
        lossAtLastCheck = loss;
      }
    }
    tf.dispose([c, delta, m, v]);
    for (let i = 0; i < n; i++) {
      if (found[i]) upper[i] = Math.min(upper[i], consts[i]);
      else lower[i] = Math.max(lower[i], consts[i]);
      consts[i] = Number.isFinite(upper[i]) ? (lower[i] + upper[i]) / 2 : consts[i] * 10;
    }
  }
  w0.dispose();
  return { adversarial: best };
}

/** C&W L2 with confidence `kappa` (see the module doc). */
export function carliniWagnerL2(params: CarliniWagnerParams = {}): Attack {
  const resolved: Required<CarliniWagnerParams> = {
    binarySearchSteps: params.binarySearchSteps ?? 9,
    steps: params.steps ?? 1000,
    stepSize: params.stepSize ?? 0.01,
    confidence: params.confidence ?? 0,
    initialConst: params.initialConst ?? 1e-3,
    abortEarly: params.abortEarly ?? true,
  };
  const bad = (field: string, value: unknown) =>
    new RangeError(`attack "cw-l2": ${field} = ${value} is invalid`);
  for (const field of ["binarySearchSteps", "steps"] as const) {
    if (!Number.isInteger(resolved[field]) || resolved[field] < 1) throw bad(field, params[field]);
  }
  if (!(resolved.stepSize > 0)) throw bad("stepSize", params.stepSize);
  if (!(resolved.confidence >= 0)) throw bad("confidence", params.confidence);
  if (!(resolved.initialConst > 0)) throw bad("initialConst", params.initialConst);
  return minimizationAttack(
    { name: "cw-l2", norm: "l2", kind: "white-box", params: resolved },
    (context) => search(context, resolved),
  );
}
