/**
 * PGD (Madry et al. 2018): projected gradient ascent from a uniform random start in the epsilon ball, with
 * restarts on the examples not yet fooled. L_inf steps along sign(grad); L2 steps along grad/||grad||.
 *
 * @module
 */
import { fixedEpsilonAttack } from "./base.ts";
import { checkGradientOptions, gradientDescent, type GradientDescentOptions } from "./gradient_descent.ts";
import type { LossKind } from "./loss.ts";
import type { Attack } from "./types.ts";

/** Parameters of {@link pgd} and {@link pgdL2}. Defaults follow Foolbox 3. */
export interface PgdParams {
  /** Default 40 (L_inf) / 50 (L2). */
  steps?: number;
  /** Absolute step size (the paper's "stepsize"); overrides `relStepSize`. */
  stepSize?: number;
  /** Default 0.01/0.3 (L_inf) / 0.025 (L2), times epsilon. */
  relStepSize?: number;
  /** Default true. */
  randomStart?: boolean;
  /** Total runs (default 1); later runs only on examples not yet fooled. */
  restarts?: number;
  /** Loss to ascend (default cross-entropy). */
  loss?: LossKind;
  seed?: number;
}

function projectedGradient(name: string, norm: "linf" | "l2", params: PgdParams): Attack {
  const options: GradientDescentOptions = {
    norm,
    steps: params.steps ?? (norm === "linf" ? 40 : 50),
    stepSize: params.stepSize,
    relStepSize: params.relStepSize ?? (norm === "linf" ? 0.01 / 0.3 : 0.025),
    randomStart: params.randomStart ?? true,
    restarts: params.restarts ?? 1,
    momentum: 0,
    loss: params.loss ?? "ce",
    seed: params.seed ?? 0,
  };
  checkGradientOptions(name, options);
  const { norm: _norm, momentum: _momentum, ...recorded } = options;
  return fixedEpsilonAttack(
    { name, norm, kind: "white-box", params: recorded },
    (context) => gradientDescent(context, options),
  );
}

/** PGD under L_inf. */
export function pgd(params: PgdParams = {}): Attack {
  return projectedGradient("pgd-linf", "linf", params);
}

/** PGD under L2. */
export function pgdL2(params: PgdParams = {}): Attack {
  return projectedGradient("pgd-l2", "l2", params);
}
