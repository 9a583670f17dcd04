/**
 * APGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse
 * parameter-free attacks"): PGD with momentum 0.75 and a step size that starts at 2 * epsilon and is halved
 * at checkpoints where the loss oscillates or stopped improving, restarting from the best point so far.
 * `apgd-ce` ascends cross-entropy; `apgd-dlr` the DLR loss; `apgd-t-dlr` the targeted DLR loss towards each
 * of the `targetClasses` most likely other classes in turn (AutoAttack's APGD-T: an example counts as broken
 * when it is misclassified, whatever the class). L_inf and L2.
 *
 * Checkpoints follow the reference implementation: the first after `max(floor(0.22 N), 1)` iterations, then
 * windows shrinking by `max(floor(0.03 N), 1)` down to `max(floor(0.06 N), 1)`. At a checkpoint the step of
 * an example is halved when fewer than `rho` (0.75) of the window's steps raised its loss, or when the
 * previous checkpoint did not halve it and its best loss has not improved since. A run stops early once
 * every example in it is adversarial.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type AttackContext, fixedEpsilonAttack, type SearchOutcome } from "./base.ts";
import { isAdversarial, subsetCriterion } from "./criteria.ts";
import { attackLoss, largestScores } from "./loss.ts";
import { projectToBall, randomInBall, scalePerExample, steepestDirection } from "./norms.ts";
import { indicesWhere, queryScores, replaceRows } from "./query.ts";
import { Rng } from "./rng.ts";
import type { Attack, AttackTarget, Criterion } from "./types.ts";

/** Parameters of the APGD attacks. Defaults follow AutoAttack's "standard" version. */
export interface ApgdParams {
  /** Iterations per run (default 100). */
  steps?: number;
  /** Runs per example (per target class for APGD-T), later ones only on unsolved examples (default 1). */
  restarts?: number;
  /** APGD-T only: how many of the most likely other classes are tried as targets (default 9). */
  targetClasses?: number;
  /** Fraction of loss-raising steps below which the step size is halved (default 0.75). */
  rho?: number;
  /** Weight of the new gradient step against the previous move (default 0.75; the paper's alpha). */
  momentum?: number;
  /** Start from a uniform random point of the ball (default true). */
  randomStart?: boolean;
  seed?: number;
}

type ApgdLoss = "ce" | "dlr" | "targeted-dlr";

/** Iteration indices (0-based, after which the check runs) of APGD's step-size checkpoints for `steps`. */
export function apgdCheckpoints(steps: number): number[] {
  const out: number[] = [];
  const decrease = Math.max(Math.floor(0.03 * steps), 1);
  const minimum = Math.max(Math.floor(0.06 * steps), 1);
  let window = Math.max(Math.floor(0.22 * steps), 1);
  let counter = 0;
  for (let i = 0; i < steps; i++) {
    counter++;
    if (counter === window) {
      out.push(i);
      window = Math.max(window - decrease, minimum);
      counter = 0;
    }
  }
  return out;
}

function pick(scores: tf.Tensor2D, classes: Int32Array): tf.Tensor1D {
  return tf.sum(tf.mul(scores, tf.oneHot(tf.tensor1d(classes, "int32"), scores.shape[1]).toFloat()), 1);
}

/** Untargeted DLR (Croce & Hein): -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3). */
export function dlrLoss(scores: tf.Tensor2D, labels: Int32Array): tf.Tensor1D {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(tf.tensor1d(labels, "int32"), scores.shape[1]).toFloat();
    const others = tf.max(tf.sub(scores, tf.mul(oneHot, 1e9)), 1);
    const [first, , third] = largestScores(scores, 3);
    const denominator = tf.add(tf.sub(first, third), 1e-12);
    return tf.neg(tf.div(tf.sub(pick(scores, labels), others), denominator)) as tf.Tensor1D;
  });
}

/**
 * Targeted DLR (Croce & Hein): -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2), with the true label y and the
 * target t; ascending it pushes z_t above z_y.
 */
export function targetedDlrLoss(scores: tf.Tensor2D, labels: Int32Array, targets: Int32Array): tf.Tensor1D {
  return tf.tidy(() => {
    const [first, , third, fourth] = largestScores(scores, 4);
    const denominator = tf.add(tf.sub(first, tf.div(tf.add(third, fourth), 2)), 1e-12);
    return tf.neg(tf.div(tf.sub(pick(scores, labels), pick(scores, targets)), denominator)) as tf.Tensor1D;
  });
}

/** Input gradient of the summed loss, the per-example losses and the predicted labels at `x`. */
async function evaluate(
  target: AttackTarget,
  x: tf.Tensor,
  lossOf: (scores: tf.Tensor2D) => tf.Tensor1D,
): Promise<{ gradient: tf.Tensor; loss: Float32Array; labels: Int32Array }> {
  let losses: tf.Tensor1D | undefined;
  let labelTensor: tf.Tensor | undefined;
  const gradient = tf.grad((input: tf.Tensor) => {
    const scores = target.scores(input);
    const loss = lossOf(scores);
    losses = tf.keep(loss);
    labelTensor = tf.keep(tf.argMax(scores, 1));
    return tf.sum(loss);
  })(x);
  const loss = Float32Array.from((await losses!.data()) as Float32Array);
  const labels = Int32Array.from((await labelTensor!.data()) as Int32Array);
  tf.dispose([losses!, labelTensor!]);
  return { gradient, loss, labels };
}

function mask(flags: Uint8Array): tf.Tensor {
  return tf.tensor(flags, [flags.length, 1, 1, 1], "bool");
}

/** Replaces `state` by `tf.where(flags, update, state)` and disposes the old one. */
function select(state: tf.Tensor, flags: Uint8Array, update: tf.Tensor): tf.Tensor {
  if (!flags.some((v) => v === 1)) return state;
  const next = tf.tidy(() => tf.where(mask(flags), update, state));
  state.dispose();
  return next;
}

interface RunSettings {
  readonly norm: "linf" | "l2";
  readonly steps: number;
  readonly rho: number;
  readonly momentum: number;
  readonly randomStart: boolean;
}

/**
 * One APGD run on a (sub)batch. Returns, per example, the last adversarial iterate when there was one,
 * else the iterate of highest loss.
 */
async function apgdRun(
  target: AttackTarget,
  x0: tf.Tensor4D,
  criterion: Criterion,
  lossOf: (scores: tf.Tensor2D) => tf.Tensor1D,
  epsilon: number,
  settings: RunSettings,
  rng: Rng,
  countQuery: () => void,
): Promise<{ adversarial: tf.Tensor4D; fooled: Uint8Array }> {
  const { norm, steps } = settings;
  const range = target.inputRange;
  const n = x0.shape[0];
  const project = (x: tf.Tensor) => projectToBall(x0, x as tf.Tensor4D, norm, epsilon, range);
  let xAdv: tf.Tensor = settings.randomStart
    ? tf.tidy(() => project(tf.add(x0, randomInBall(rng, x0.shape, norm, epsilon))))
    : x0.clone();
  let first = await evaluate(target, xAdv, lossOf);
  countQuery();
  let gradient = first.gradient;
  let xBest = xAdv.clone();
  let gradientBest = gradient.clone();
  let xBestAdversarial = xAdv.clone();
  const fooled = isAdversarial(criterion, first.labels);
  const lossBest = Float32Array.from(first.loss);
  let previousLoss: Float32Array = Float32Array.from(first.loss);
  const raised = new Int32Array(n);
  const stepSize = new Float32Array(n).fill(2 * epsilon);
  const reducedLastCheck = new Uint8Array(n);
  let lossBestLastCheck = Float32Array.from(lossBest);
  let xOld = xAdv.clone();
  const decrease = Math.max(Math.floor(0.03 * steps), 1);
  const minimum = Math.max(Math.floor(0.06 * steps), 1);
  let window = Math.max(Math.floor(0.22 * steps), 1);
  let counter = 0;
  for (let i = 0; i < steps && fooled.some((v) => v === 0); i++) {
    const alpha = i > 0 ? settings.momentum : 1;
    const next = tf.tidy(() => {
      const previousMove = tf.sub(xAdv, xOld);
      const step = scalePerExample(steepestDirection(gradient, norm), tf.tensor1d(stepSize));
      const z = project(tf.add(xAdv, step));
      return project(tf.add(tf.add(xAdv, tf.mul(tf.sub(z, xAdv), alpha)), tf.mul(previousMove, 1 - alpha)));
    });
    xOld.dispose();
    xOld = xAdv;
    xAdv = next;
    gradient.dispose();
    first = await evaluate(target, xAdv, lossOf);
    countQuery();
    gradient = first.gradient;
    const adversarialNow = isAdversarial(criterion, first.labels);
    xBestAdversarial = select(xBestAdversarial, adversarialNow, xAdv);
    const improved = new Uint8Array(n);
    for (let j = 0; j < n; j++) {
      fooled[j] |= adversarialNow[j];
      if (first.loss[j] > previousLoss[j]) raised[j]++;
      if (first.loss[j] > lossBest[j]) {
        improved[j] = 1;
        lossBest[j] = first.loss[j];
      }
    }
    previousLoss = first.loss;
    xBest = select(xBest, improved, xAdv);
    gradientBest = select(gradientBest, improved, gradient);
    counter++;
    if (counter === window) {
      const halve = new Uint8Array(n);
      for (let j = 0; j < n; j++) {
        const oscillating = raised[j] <= window * settings.rho;
        const stalled = reducedLastCheck[j] === 0 && lossBestLastCheck[j] >= lossBest[j];
        halve[j] = oscillating || stalled ? 1 : 0;
        reducedLastCheck[j] = halve[j];
        if (halve[j]) stepSize[j] /= 2;
        raised[j] = 0;
      }
      lossBestLastCheck = Float32Array.from(lossBest);
      xAdv = select(xAdv, halve, xBest);
      gradient = select(gradient, halve, gradientBest);
      window = Math.max(window - decrease, minimum);
      counter = 0;
    }
  }
  const adversarial = tf.tidy(() => tf.where(mask(fooled), xBestAdversarial, xBest)) as tf.Tensor4D;
  tf.dispose([xAdv, xOld, xBest, gradient, gradientBest, xBestAdversarial]);
  return { adversarial, fooled };
}

async function search(
  context: AttackContext,
  loss: ApgdLoss,
  settings: RunSettings,
  params: Required<ApgdParams>,
): Promise<SearchOutcome> {
  const { target, x, criterion, epsilon, queries } = context;
  const n = x.shape[0];
  const rng = new Rng(params.seed);
  let result = x.clone() as tf.Tensor4D;
  const done = new Uint8Array(n);
  // Each entry: the loss for a subset of examples (APGD-T: one entry per target-class rank).
  const plans: ((active: Int32Array) => (scores: tf.Tensor2D) => tf.Tensor1D)[] = [];
  if (loss === "targeted-dlr" && criterion.kind === "misclassification") {
    const { scores, numClasses } = await queryScores(target, x, queries);
    const labels = criterion.labels;
    const ranked = Array.from({ length: n }, (_, i) =>
      Array.from({ length: numClasses }, (_, c) => c)
        .filter((c) => c !== labels[i])
        .sort((a, b) => scores[i * numClasses + b] - scores[i * numClasses + a]));
    for (let rank = 0; rank < Math.min(params.targetClasses, numClasses - 1); rank++) {
      plans.push((active) => {
        const y = Int32Array.from(active, (i) => labels[i]);
        const t = Int32Array.from(active, (i) => ranked[i][rank]);
        return (s) => targetedDlrLoss(s, y, t);
      });
    }
  } else if (loss === "ce") {
    plans.push((active) => {
      const sub = subsetCriterion(criterion, active);
      return (s) => attackLoss(target, s, sub, "ce");
    });
  } else {
    // DLR: untargeted on the label; a targeted criterion ascends -DLR margin of the target over the runner-up.
    plans.push((active) => {
      const sub = subsetCriterion(criterion, active);
      const classes = sub.kind === "misclassification" ? sub.labels : sub.targets;
      return sub.kind === "misclassification"
        ? (s) => dlrLoss(s, classes)
        : (s) => tf.neg(dlrLoss(s, classes)) as tf.Tensor1D;
    });
  }
  for (const plan of plans) {
    for (let run = 0; run < params.restarts; run++) {
      const active = indicesWhere(done);
      if (active.length === 0) break;
      const x0 = active.length === n ? x.clone() : tf.gather(x, active) as tf.Tensor4D;
      const outcome = await apgdRun(
        target,
        x0,
        subsetCriterion(criterion, active),
        plan(active),
        epsilon,
        settings,
        rng,
        () => active.forEach((i) => queries[i]++),
      );
      x0.dispose();
      const merged = replaceRows(result, active, outcome.adversarial);
      tf.dispose([result, outcome.adversarial]);
      result = merged;
      active.forEach((i, a) => done[i] = outcome.fooled[a]);
      if (!settings.randomStart) break;
    }
  }
  return { adversarial: result };
}

function build(name: string, norm: "linf" | "l2", loss: ApgdLoss, params: ApgdParams): Attack {
  const resolved: Required<ApgdParams> = {
    steps: params.steps ?? 100,
    restarts: params.restarts ?? 1,
    targetClasses: params.targetClasses ?? 9,
    rho: params.rho ?? 0.75,
    momentum: params.momentum ?? 0.75,
    randomStart: params.randomStart ?? true,
    seed: params.seed ?? 0,
  };
  const bad = (field: string, value: unknown) =>
    new RangeError(`attack "${name}": ${field} = ${value} is invalid`);
  for (const field of ["steps", "restarts", "targetClasses"] as const) {
    if (!Number.isInteger(resolved[field]) || resolved[field] < 1) throw bad(field, params[field]);
  }
  if (!(resolved.rho > 0 && resolved.rho <= 1)) throw bad("rho", params.rho);
  if (!(resolved.momentum > 0 && resolved.momentum <= 1)) throw bad("momentum", params.momentum);
  const settings: RunSettings = { norm, ...resolved };
  const { targetClasses: _t, ...shared } = resolved;
  return fixedEpsilonAttack(
    { name, norm, kind: "white-box", params: loss === "targeted-dlr" ? resolved : shared },
    (context) => search(context, loss, settings, resolved),
  );
}

/** APGD on cross-entropy, L_inf (`norm: "l2"` for the L2 version). */
export function apgdCe(params: ApgdParams = {}, norm: "linf" | "l2" = "linf"): Attack {
  return build(norm === "linf" ? "apgd-ce" : "apgd-ce-l2", norm, "ce", params);
}

/** APGD on the (untargeted) DLR loss. */
export function apgdDlr(params: ApgdParams = {}, norm: "linf" | "l2" = "linf"): Attack {
  return build(norm === "linf" ? "apgd-dlr" : "apgd-dlr-l2", norm, "dlr", params);
}

/** APGD-T: targeted DLR towards each of the `targetClasses` most likely other classes in turn. */
export function apgdTargetedDlr(params: ApgdParams = {}, norm: "linf" | "l2" = "linf"): Attack {
  return build(norm === "linf" ? "apgd-t-dlr" : "apgd-t-dlr-l2", norm, "targeted-dlr", params);
}
