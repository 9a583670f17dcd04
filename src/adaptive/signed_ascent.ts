/**
 * The loop shared by the paper's adaptive attacks (S-ALA, R-ALA, ALA, I-ALA): from the input, take `steps`
 * signed-gradient ascent steps `x <- Proj(x + stepSize * sign(grad objective))` onto the L_inf ball of the
 * budget and the input range. The paper gives no norm bound for these attacks and writes raw-gradient steps
 * (`x + s * grad`), whose size depends on the scale of the objective; sign steps make the step size an
 * input-space distance, and the projection makes the budget explicit (recorded in every result).
 *
 * The objective may depend on state of the benign input (its neuron influence, its remaining neurons),
 * computed once per run, and on non-differentiable state of the current iterate (its predicted label, its
 * front/tail neurons), computed outside the gradient once per step.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type AttackContext, fixedEpsilonAttack, type SearchOutcome } from "../attacks/base.ts";
import { exactSign, projectToBall } from "../attacks/norms.ts";
import type { Attack } from "../attacks/types.ts";

/** Per-example objective to ascend for the current iterate: input -> [n] values (summed for the gradient). */
export type StepObjective = (input: tf.Tensor4D) => tf.Tensor1D;

/** One run of an attack: per-run state, the objective of each step, and cleanup. */
export interface AscentRun {
  /** The objective of one step, built from the current iterate (non-differentiable state is read here). */
  step(current: tf.Tensor4D): StepObjective;
  /** Frees the per-run state. */
  dispose?(): void;
}

/** Starts one run on a batch (reads `context.x`, `context.criterion`). */
export type StartRun = (context: AttackContext) => AscentRun;

/** Step settings of {@link signedAscentAttack}. */
export interface SignedAscentSettings {
  readonly steps: number;
  /** Absolute step; when absent `relStepSize * epsilon`. */
  readonly stepSize?: number;
  readonly relStepSize: number;
}

/** Checks step settings; the error names the attack and the field. */
export function checkSignedAscent(name: string, settings: SignedAscentSettings): void {
  if (!Number.isInteger(settings.steps) || settings.steps < 1) {
    throw new RangeError(`attack "${name}": steps = ${settings.steps} must be an integer >= 1`);
  }
  if (settings.stepSize !== undefined && !(settings.stepSize > 0)) {
    throw new RangeError(`attack "${name}": stepSize = ${settings.stepSize} must be > 0`);
  }
  if (!(settings.relStepSize > 0)) {
    throw new RangeError(`attack "${name}": relStepSize = ${settings.relStepSize} must be > 0`);
  }
}

async function ascend(
  context: AttackContext,
  settings: SignedAscentSettings,
  start: StartRun,
): Promise<SearchOutcome> {
  const { x, target, epsilon, queries } = context;
  const stepSize = settings.stepSize ?? settings.relStepSize * epsilon;
  const run = start(context);
  let current = x.clone();
  for (let step = 0; step < settings.steps; step++) {
    const objective = run.step(current);
    const gradient = tf.grad((input: tf.Tensor) => tf.sum(objective(input as tf.Tensor4D)))(current);
    const next = tf.tidy(() =>
      projectToBall(
        x,
        tf.add(current, tf.mul(exactSign(gradient), stepSize)) as tf.Tensor4D,
        "linf",
        epsilon,
        target.inputRange,
      )
    );
    tf.dispose([gradient, current]);
    current = next;
    for (let i = 0; i < queries.length; i++) queries[i] += 1;
    // Let the event loop breathe between steps (progress output, timers).
    await Promise.resolve();
  }
  run.dispose?.();
  return { adversarial: current };
}

/**
 * A white-box, L_inf, fixed-epsilon attack (the library's `fixedEpsilonAttack`: validation, projection,
 * final query, distances) whose search is the signed ascent of the objective `start` sets up.
 */
export function signedAscentAttack(
  name: string,
  params: Readonly<Record<string, unknown>>,
  settings: SignedAscentSettings,
  start: StartRun,
): Attack {
  checkSignedAscent(name, settings);
  return fixedEpsilonAttack(
    { name, norm: "linf", kind: "white-box", params },
    (context) => ascend(context, settings, start),
  );
}
