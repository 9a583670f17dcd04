/**
 * The loop shared by the fixed-epsilon gradient attacks (FGSM, BIM, MI-FGSM, PGD; L_inf and L2): steepest
 * ascent of a loss under the norm, projection onto the epsilon ball and the input range after every step,
 * optional random start, momentum, and restarts on the examples not yet fooled.
 *
 * Per example it returns the final iterate when that is adversarial, else the last adversarial iterate it
 * saw, else the final iterate, so more steps or restarts never lose a success.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { AttackContext, SearchOutcome } from "./base.ts";
import { addQueries } from "./base.ts";
import { isAdversarial, subsetCriterion } from "./criteria.ts";
import { lossGradient, type LossKind } from "./loss.ts";
import { projectToBall, randomInBall, steepestDirection, TINY } from "./norms.ts";
import { Rng } from "./rng.ts";
import type { AttackTarget, Criterion } from "./types.ts";

/** Settings of {@link gradientDescent}. */
export interface GradientDescentOptions {
  readonly norm: "linf" | "l2";
  readonly steps: number;
  /** Absolute step size; when absent, `relStepSize * epsilon`. */
  readonly stepSize?: number;
  readonly relStepSize: number;
  /** Start from a uniform random point of the epsilon ball instead of the input. */
  readonly randomStart: boolean;
  /** Total runs; runs after the first start afresh (random start) on the examples not yet fooled. */
  readonly restarts: number;
  /** Momentum decay (MI-FGSM's mu); 0 = plain gradient. */
  readonly momentum: number;
  readonly loss: LossKind;
  readonly seed: number;
}

/** Checks the integer/positive settings shared by the gradient attacks. */
export function checkGradientOptions(name: string, options: GradientDescentOptions): void {
  const bad = (field: string, value: unknown) =>
    new RangeError(`attack "${name}": ${field} = ${value} is invalid`);
  if (!Number.isInteger(options.steps) || options.steps < 1) throw bad("steps", options.steps);
  if (!Number.isInteger(options.restarts) || options.restarts < 1) throw bad("restarts", options.restarts);
  if (options.stepSize !== undefined && !(options.stepSize > 0)) throw bad("stepSize", options.stepSize);
  if (!(options.relStepSize > 0)) throw bad("relStepSize", options.relStepSize);
  if (!(options.momentum >= 0)) throw bad("momentum", options.momentum);
}

async function labelsOf(scores: tf.Tensor2D): Promise<Int32Array> {
  const labels = tf.argMax(scores, 1);
  const out = Int32Array.from((await labels.data()) as Int32Array);
  labels.dispose();
  return out;
}

function maskOf(flags: Uint8Array, rank: number): tf.Tensor {
  return tf.tensor(flags, [flags.length, ...new Array(rank - 1).fill(1)], "bool");
}

/** One run of the descent on a (sub)batch; returns the chosen iterate and its labels. */
async function descend(
  target: AttackTarget,
  x0: tf.Tensor4D,
  criterion: Criterion,
  epsilon: number,
  options: GradientDescentOptions,
  rng: Rng,
  countQuery: () => void,
): Promise<{ adversarial: tf.Tensor4D; fooled: Uint8Array; predicted: Int32Array }> {
  const stepSize = options.stepSize ?? options.relStepSize * epsilon;
  const range = target.inputRange;
  let x: tf.Tensor4D = options.randomStart
    ? tf.tidy(() =>
      projectToBall(
        x0,
        tf.add(x0, randomInBall(rng, x0.shape, options.norm, epsilon)),
        options.norm,
        epsilon,
        range,
      )
    ) as tf.Tensor4D
    : x0.clone();
  let velocity: tf.Tensor | null = options.momentum > 0 ? tf.zerosLike(x0) : null;
  let lastAdversarial = x0.clone();
  let seen = new Uint8Array(x0.shape[0]);
  const lastLabels = new Int32Array(x0.shape[0]);
  for (let step = 0; step < options.steps; step++) {
    const { gradient, scores } = lossGradient(target, x, criterion, options.loss);
    countQuery();
    const labelsNow = await labelsOf(scores);
    const adversarialNow = isAdversarial(criterion, labelsNow);
    scores.dispose();
    if (adversarialNow.some((v) => v === 1)) {
      const updated = tf.tidy(() => tf.where(maskOf(adversarialNow, 4), x, lastAdversarial)) as tf.Tensor4D;
      lastAdversarial.dispose();
      lastAdversarial = updated;
      seen = seen.map((v, i) => v | adversarialNow[i]);
      adversarialNow.forEach((v, i) => v === 1 && (lastLabels[i] = labelsNow[i]));
    }
    let direction: tf.Tensor;
    if (velocity !== null) {
      const next = tf.tidy(() => {
        // MI-FGSM: accumulate the L1-normalised gradient (mean |g| instead of sum: same direction, saner scale).
        const flatAbs = tf.mean(tf.abs(gradient.reshape([gradient.shape[0], -1])), 1);
        const normalised = tf.div(gradient, tf.maximum(flatAbs, TINY).reshape([-1, 1, 1, 1]));
        return tf.add(tf.mul(velocity!, options.momentum), normalised);
      });
      velocity.dispose();
      velocity = next;
      direction = steepestDirection(velocity, options.norm);
    } else {
      direction = steepestDirection(gradient, options.norm);
    }
    gradient.dispose();
    const moved = tf.tidy(() =>
      projectToBall(x0, tf.add(x, tf.mul(direction, stepSize)) as tf.Tensor4D, options.norm, epsilon, range)
    );
    direction.dispose();
    x.dispose();
    x = moved;
  }
  velocity?.dispose();
  const finalScores = tf.tidy(() => target.scores(x));
  countQuery();
  const finalLabels = await labelsOf(finalScores);
  const finalAdversarial = isAdversarial(criterion, finalLabels);
  finalScores.dispose();
  // Keep the final iterate where it fools the model or where no iterate ever did; else the last one that did.
  const keepFinal = finalAdversarial.map((v, i) => v | (seen[i] ^ 1));
  const chosen = tf.tidy(() => tf.where(maskOf(keepFinal, 4), x, lastAdversarial)) as tf.Tensor4D;
  tf.dispose([x, lastAdversarial]);
  return {
    adversarial: chosen,
    fooled: finalAdversarial.map((v, i) => v | seen[i]),
    predicted: finalLabels.map((label, i) => keepFinal[i] ? label : lastLabels[i]),
  };
}

/** Runs the shared gradient loop with restarts on the examples still not adversarial. */
export async function gradientDescent(
  context: AttackContext,
  options: GradientDescentOptions,
): Promise<SearchOutcome> {
  const { target, x, criterion, epsilon, queries } = context;
  const n = x.shape[0];
  const rng = new Rng(options.seed);
  let result: tf.Tensor4D | null = null;
  const done = new Uint8Array(n);
  const predicted = new Int32Array(n);
  for (let run = 0; run < options.restarts; run++) {
    const active = Int32Array.from(Array.from({ length: n }, (_, i) => i).filter((i) => done[i] === 0));
    if (active.length === 0) break;
    const whole = active.length === n;
    const x0 = whole ? x : tf.gather(x, active) as tf.Tensor4D;
    const subCriterion = whole ? criterion : subsetCriterion(criterion, active);
    const outcome = await descend(
      target,
      x0,
      subCriterion,
      epsilon,
      options,
      rng,
      () => addQueries(queries, 1, active),
    );
    if (!whole) x0.dispose();
    if (result === null) {
      result = outcome.adversarial;
    } else {
      const merged = tf.tidy(() => {
        const indices = tf.tensor2d(active, [active.length, 1], "int32");
        const scattered = tf.scatterND(indices, outcome.adversarial, x.shape);
        const mask = tf.scatterND(indices, tf.ones([active.length], "int32"), [n]).cast("bool");
        return tf.where(mask.reshape([n, 1, 1, 1]), scattered, result!);
      }) as tf.Tensor4D;
      tf.dispose([result, outcome.adversarial]);
      result = merged;
    }
    active.forEach((i, j) => {
      done[i] = outcome.fooled[j];
      predicted[i] = outcome.predicted[j];
    });
    // A deterministic start would only repeat itself.
    if (!options.randomStart) break;
  }
  return { adversarial: result!, predicted };
}
