/**
 * FGSM (Goodfellow et al. 2015) and its L2 form FGM: one step of size epsilon along the steepest-ascent
 * direction of the loss. With `epsilonSearch: N` it instead reproduces Foolbox 2's `GradientSignAttack`
 * used by the paper (App. A, "max_iteration=1000"): along that same direction, the smallest of N evenly
 * spaced epsilons up to the budget that fools the model.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { addQueries, type AttackContext, fixedEpsilonAttack, type SearchOutcome } from "./base.ts";
import { isAdversarial, subsetCriterion } from "./criteria.ts";
import { checkGradientOptions, gradientDescent } from "./gradient_descent.ts";
import { lossGradient } from "./loss.ts";
import { clipToRange, steepestDirection } from "./norms.ts";
import type { Attack } from "./types.ts";

/** Parameters of {@link fgsm} and {@link fgm}. */
export interface FgsmParams {
  /** 0 (default): one step of size epsilon. N > 0: line search over N epsilons in (0, epsilon]. */
  epsilonSearch?: number;
}

async function lineSearch(
  context: AttackContext,
  norm: "linf" | "l2",
  points: number,
): Promise<SearchOutcome> {
  const { target, x, criterion, epsilon, queries } = context;
  const n = x.shape[0];
  const { gradient, scores } = lossGradient(target, x, criterion);
  scores.dispose();
  addQueries(queries, 1);
  const direction = steepestDirection(gradient, norm);
  gradient.dispose();
  const chosenEpsilon = new Float32Array(n).fill(epsilon);
  const found = new Uint8Array(n);
  for (let k = 1; k <= points && found.some((v) => v === 0); k++) {
    const active = Int32Array.from(Array.from({ length: n }, (_, i) => i).filter((i) => found[i] === 0));
    const step = (epsilon * k) / points;
    const labels = tf.tidy(() => {
      const candidate = clipToRange(
        tf.add(tf.gather(x, active), tf.mul(tf.gather(direction, active), step)),
        target.inputRange,
      );
      return tf.argMax(target.scores(candidate), 1);
    });
    const fooled = isAdversarial(
      subsetCriterion(criterion, active),
      Int32Array.from((await labels.data()) as Int32Array),
    );
    labels.dispose();
    addQueries(queries, 1, active);
    active.forEach((i, j) => {
      if (fooled[j]) {
        found[i] = 1;
        chosenEpsilon[i] = step;
      }
    });
  }
  const adversarial = tf.tidy(() =>
    clipToRange(tf.add(x, tf.mul(direction, tf.tensor(chosenEpsilon, [n, 1, 1, 1]))), target.inputRange)
  ) as tf.Tensor4D;
  direction.dispose();
  return { adversarial };
}

function fastGradient(name: string, norm: "linf" | "l2", params: FgsmParams): Attack {
  const epsilonSearch = params.epsilonSearch ?? 0;
  if (!Number.isInteger(epsilonSearch) || epsilonSearch < 0) {
    throw new RangeError(`attack "${name}": epsilonSearch = ${params.epsilonSearch} must be an integer >= 0`);
  }
  const options = {
    norm,
    steps: 1,
    relStepSize: 1,
    randomStart: false,
    restarts: 1,
    momentum: 0,
    loss: "ce" as const,
    seed: 0,
  };
  checkGradientOptions(name, options);
  return fixedEpsilonAttack(
    { name, norm, kind: "white-box", params: { epsilonSearch } },
    (context) =>
      epsilonSearch > 0 ? lineSearch(context, norm, epsilonSearch) : gradientDescent(context, options),
  );
}

/** FGSM, L_inf: `x + epsilon * sign(grad loss)`, clipped to the input range. */
export function fgsm(params: FgsmParams = {}): Attack {
  return fastGradient("fgsm", "linf", params);
}

/** FGM, L2: `x + epsilon * grad / ||grad||_2`, clipped to the input range. */
export function fgm(params: FgsmParams = {}): Attack {
  return fastGradient("fgm-l2", "l2", params);
}
