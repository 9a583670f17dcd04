/**
 * MI-FGSM (Dong et al. 2018): BIM with momentum. The velocity accumulates L1-normalised gradients with decay
 * `mu`; each step moves `stepSize * sign(velocity)`, then projects onto the L_inf ball and the input range.
 *
 * @module
 */
import { fixedEpsilonAttack } from "./base.ts";
import { checkGradientOptions, gradientDescent, type GradientDescentOptions } from "./gradient_descent.ts";
import type { Attack } from "./types.ts";

/** Parameters of {@link miFgsm}. Defaults: 10 steps of epsilon/10 (Dong et al.), decay 1.0. */
export interface MiFgsmParams {
  steps?: number;
  /** Absolute step size; overrides `relStepSize`. */
  stepSize?: number;
  relStepSize?: number;
  /** Momentum decay factor mu (the paper's "decay_factor"). */
  decay?: number;
}

/** MI-FGSM under L_inf. */
export function miFgsm(params: MiFgsmParams = {}): Attack {
  const options: GradientDescentOptions = {
    norm: "linf",
    steps: params.steps ?? 10,
    stepSize: params.stepSize,
    relStepSize: params.relStepSize ?? 0.1,
    randomStart: false,
    restarts: 1,
    momentum: params.decay ?? 1.0,
    loss: "ce",
    seed: 0,
  };
  checkGradientOptions("mi-fgsm", options);
  if (!(options.momentum > 0)) throw new RangeError(`attack "mi-fgsm": decay = ${params.decay} must be > 0`);
  return fixedEpsilonAttack(
    {
      name: "mi-fgsm",
      norm: "linf",
      kind: "white-box",
      params: {
        steps: options.steps,
        stepSize: options.stepSize,
        relStepSize: options.relStepSize,
        decay: options.momentum,
      },
    },
    (context) => gradientDescent(context, options),
  );
}
