/**
 * PGD against a detecting pipeline (Carlini & Wagner, "Adversarial Examples Are Not Easily Detected",
 * 2017; SPEC.md section 8): L_inf steps on a loss that both misclassifies and keeps the detection's combined
 * p-value above `alpha`. Per example, with `z` the model's log-probabilities and `y` the true label (the
 * attacker's knowledge, never the detector's):
 *
 *   loss = relu(z_y - max_{j != y} z_j + kappa) + weight * relu(D(x) + ln alpha + margin)
 *
 * where `D` is the detection stage's `surrogateScore`, `-ln` of a smoothed combined p-value built from each
 * detector's differentiable stand-in (exact gradients for the distances, BPDA for the squeezers and NIP's
 * match, one EOT draw of the noise per sample, averaged over `eotSamples`). Every `checkEvery` steps and at
 * the end the *deployed* pipeline (its real scores, a fresh seed) decides: an example whose current
 * iterate is misclassified and not flagged is kept as evading and no longer moved. The attack is run for
 * each of `weights` (Carlini and Wagner search the trade-off; a short list stands in) and an example counts
 * as evading when any run evaded. Random start in the ball.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { mulberry32 } from "../random.ts";
import type { DefensePipeline } from "../stages/pipeline.ts";
import { outputsProbabilities } from "../engine/outputs.ts";

/** Options of {@link detectionPgd}. */
export interface DetectionPgdOptions {
  /** L_inf radius. */
  epsilon: number;
  /** Steps per weight (default 100). */
  steps?: number;
  /** Step size (default 2.5 * epsilon / steps, Madry et al.'s rule). */
  stepSize?: number;
  /** Weights of the detection term, one run each (default [1, 10]). */
  weights?: readonly number[];
  /** EOT draws of the randomised detectors per step (default 1). */
  eotSamples?: number;
  /** Confidence margin of the classification term, in log-probability (default 0). */
  kappa?: number;
  /** Safety margin below the flagging threshold, in `-ln p` (default 0.5). */
  margin?: number;
  /** Deployed check every this many steps (default 10). */
  checkEvery?: number;
  /** Seeds the random start, the EOT draws and the deployed checks. */
  seed?: number;
  onStep?: (done: number, total: number) => void;
}

/** What {@link detectionPgd} returns. */
export interface DetectionPgdResult {
  /** The evading iterate where one was found, else the last; the caller disposes it. */
  adversarial: tf.Tensor;
  /** 1 where the deployed pipeline classified the example wrongly without flagging it. */
  evaded: Uint8Array;
}

/**
 * The deployed decision on a batch: the model's labels and scores (row-major [n, classes]) as the pipeline
 * saw them, and whether each example is flagged at the pipeline's alpha.
 */
export function deployedDecision(
  pipeline: DefensePipeline,
  x: tf.Tensor,
  seed: number,
): { labels: Int32Array; scores: Float32Array; flagged: Uint8Array } {
  const outcome = pipeline.run(x, { verdictAfter: false, transforms: false, seed });
  outcome.defended.dispose();
  if (!outcome.pValue) throw new RangeError(`pipeline ${pipeline.name} has no detection stage`);
  return {
    labels: outcome.labelsBefore,
    scores: outcome.scoresBefore,
    flagged: Uint8Array.from(outcome.pValue, (p) => (p <= pipeline.alpha ? 1 : 0)),
  };
}

/** Runs the attack on one batch `x` [n, ...] with its true labels. */
export function detectionPgd(
  pipeline: DefensePipeline,
  x: tf.Tensor,
  labels: Int32Array,
  options: DetectionPgdOptions,
): DetectionPgdResult {
  const detection = pipeline.detection?.stage;
  if (!detection?.surrogateScore) {
    throw new RangeError(`pipeline ${pipeline.name} has no detection stage with a differentiable surrogate`);
  }
  const { epsilon } = options;
  const steps = options.steps ?? 100;
  const stepSize = options.stepSize ?? 2.5 * epsilon / steps;
  const weights = options.weights ?? [1, 10];
  const samples = options.eotSamples ?? 1;
  const kappa = options.kappa ?? 0;
  const margin = options.margin ?? 0.5;
  const checkEvery = options.checkEvery ?? 10;
  const random = mulberry32(options.seed ?? 1);
  const [lo, hi] = pipeline.split.inputRange;
  const n = labels.length;
  const model = pipeline.split.model;
  const logProbabilities = outputsProbabilities(model)
    ? (t: tf.Tensor) => t.maximum(1e-12).log()
    : (t: tf.Tensor) => tf.logSoftmax(t);
  const hot = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, "int32"), model.outputs[0].shape[1] as number));
  const threshold = -Math.log(pipeline.alpha) - margin;

  const evaded = new Uint8Array(n);
  let best = x.clone();
  /** Marks and keeps the rows of `candidate` the deployed pipeline misclassifies without flagging. */
  const check = (candidate: tf.Tensor) => {
    const decision = deployedDecision(pipeline, candidate, Math.floor(random() * 2 ** 31));
    const fresh = Array.from(labels.keys()).filter((i) =>
      evaded[i] === 0 && decision.flagged[i] === 0 && decision.labels[i] !== labels[i]
    );
    if (fresh.length === 0) return;
    const taken = new Uint8Array(n);
    fresh.forEach((i) => evaded[i] = taken[i] = 1);
    const next = takeRows(taken, candidate, best);
    best.dispose();
    best = next;
  };

  const loss = (current: tf.Tensor, weight: number, active: tf.Tensor) => {
    const z = logProbabilities(model.apply(current, { training: false }) as tf.Tensor);
    const own = z.mul(hot).sum(1);
    const rival = z.sub(hot.mul(1e9)).max(1);
    const classification = own.sub(rival).add(kappa).relu();
    // The EOT seeds are drawn whatever the weight, so that runs with and without the detection term see
    // the same random starts and deployed checks; the surrogate itself is skipped when it has no weight.
    const draws = Array.from({ length: samples }, () => mulberry32(Math.floor(random() * 2 ** 31)));
    if (weight === 0) return classification.mul(active).sum();
    const suspicion = tf.addN(
      draws.map((draw) => detection.surrogateScore!({ x: current, forward: noForward, random: draw })),
    );
    const detected = suspicion.div(samples).sub(threshold).relu();
    return classification.add(detected.mul(weight)).mul(active).sum();
  };

  const total = weights.length * steps;
  let done = 0;
  try {
    for (const weight of weights) {
      let current = tf.tidy(() =>
        x.add(tf.randomUniform(x.shape, -epsilon, epsilon, "float32", Math.floor(random() * 2 ** 31)))
          .clipByValue(lo, hi)
      );
      for (let step = 1; step <= steps; step++) {
        const active = tf.tensor1d(Float32Array.from(evaded, (e) => 1 - e));
        const next = tf.tidy(() => {
          const gradient = tf.grad((v: tf.Tensor) => loss(v, weight, active))(current);
          const moved = current.sub(gradient.sign().mul(stepSize));
          return tf.minimum(tf.maximum(moved, x.sub(epsilon)), x.add(epsilon)).clipByValue(lo, hi);
        });
        tf.dispose([current, active]);
        current = next;
        if (step % checkEvery === 0 || step === steps) check(current);
        options.onStep?.(++done, total);
        if (evaded.every((e) => e === 1)) break;
      }
      if (evaded.every((e) => e === 1)) {
        current.dispose();
        break;
      }
      // Rows that did not evade keep the last iterate of the last weight.
      const merged = takeRows(Uint8Array.from(evaded, (e) => 1 - e), current, best);
      tf.dispose([best, current]);
      best = merged;
    }
  } finally {
    hot.dispose();
  }
  return { adversarial: best, evaded };
}

/** A new batch with the rows of `taken` where `rows[i]` is 1 and the rows of `kept` elsewhere. */
function takeRows(rows: Uint8Array, taken: tf.Tensor, kept: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const mask = tf.tensor(rows, [rows.length, ...taken.shape.slice(1).map(() => 1)], "bool");
    return tf.where(mask.broadcastTo(taken.shape), taken, kept);
  });
}

/** The surrogates compute their own forward inside the gradient tape; the shared one is not offered. */
function noForward(): never {
  throw new Error("detectionPgd: surrogates run their own forward");
}
