/**
 * BIM, the basic iterative method (Kurakin et al. 2017): FGSM repeated with a small step, projected back onto
 * the epsilon ball and the input range after every step; starts at the input.
 *
 * @module
 */
import { fixedEpsilonAttack } from "./base.ts";
import { checkGradientOptions, gradientDescent, type GradientDescentOptions } from "./gradient_descent.ts";
import type { Attack } from "./types.ts";

/** Parameters of {@link bim}. Defaults follow Foolbox 3 (10 steps, step 0.2 * epsilon). */
export interface BimParams {
  steps?: number;
  /** Absolute step size (the paper's "stepsize"); overrides `relStepSize`. */
  stepSize?: number;
  relStepSize?: number;
}

function basicIterative(name: string, norm: "linf" | "l2", params: BimParams): Attack {
  const options: GradientDescentOptions = {
    norm,
    steps: params.steps ?? 10,
    stepSize: params.stepSize,
    relStepSize: params.relStepSize ?? 0.2,
    randomStart: false,
    restarts: 1,
    momentum: 0,
    loss: "ce",
    seed: 0,
  };
  checkGradientOptions(name, options);
  return fixedEpsilonAttack(
    {
      name,
      norm,
      kind: "white-box",
      params: { steps: options.steps, stepSize: options.stepSize, relStepSize: options.relStepSize },
    },
    (context) => gradientDescent(context, options),
  );
}

/** BIM under L_inf. */
export function bim(params: BimParams = {}): Attack {
  return basicIterative("bim", "linf", params);
}

/** BIM under L2 (normalised-gradient steps). */
export function bimL2(params: BimParams = {}): Attack {
  return basicIterative("bim-l2", "l2", params);
}
