/**
 * The loop shared by S-ALA and R-ALA (paper Eqs. 11-12): projected sign steps on
 * `lambda * CE(x*, y) + direction * D(sigma(x*), sigma(x))`, where `D` is a per-example distance between the
 * iterate's neuron influence (for its currently predicted label) and the benign example's. S-ALA descends
 * the distance (`direction = -1`), R-ALA ascends it (`+1`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { AttackContext } from "../attacks/base.ts";
import { attackLoss } from "../attacks/loss.ts";
import type { Attack } from "../attacks/types.ts";
import type { SplitModel } from "../nip/types.ts";
import { influenceOf, predictedLabels } from "./influence.ts";
import { signedAscentAttack, type SignedAscentSettings } from "./signed_ascent.ts";

/** Parameters shared by the influence-matching attacks (S-ALA, R-ALA: paper Eqs. 11-12). */
export interface InfluenceLossParams {
  /** Weight of the cross-entropy term (paper: 1). */
  lambda?: number;
  /** Iterations (paper: 10). */
  steps?: number;
  /** Absolute L_inf step; overrides `relStepSize`. */
  stepSize?: number;
  /** Step as a fraction of epsilon (default 0.25: 10 steps can cross the ball 2.5 times). */
  relStepSize?: number;
}

/** Resolves {@link InfluenceLossParams} to `lambda` and step settings; the error names the attack. */
export function influenceLossSettings(
  name: string,
  params: InfluenceLossParams,
): { lambda: number; settings: SignedAscentSettings } {
  const lambda = params.lambda ?? 1;
  if (!Number.isFinite(lambda) || lambda < 0) {
    throw new RangeError(`attack "${name}": lambda = ${lambda} must be >= 0`);
  }
  return {
    lambda,
    settings: {
      steps: params.steps ?? 10,
      stepSize: params.stepSize,
      relStepSize: params.relStepSize ?? 0.25,
    },
  };
}

/** Per-run distance between influences: [n, a] iterate vs [n, a] benign -> [n]. */
export interface InfluenceDistance {
  distance(iterate: tf.Tensor2D, benign: tf.Tensor2D): tf.Tensor1D;
  /** Frees per-run state. */
  dispose?(): void;
}

/**
 * An influence-matching attack: `start` builds the run's distance from the batch (e.g. a mask of the benign
 * example's remaining neurons); `record` is what the attack reports as its parameters.
 */
export function influenceLossAttack(
  name: string,
  split: SplitModel,
  params: InfluenceLossParams,
  direction: 1 | -1,
  record: Record<string, unknown>,
  start: (context: AttackContext) => InfluenceDistance,
): Attack {
  const { lambda, settings } = influenceLossSettings(name, params);
  return signedAscentAttack(name, { lambda, ...record, ...settings }, settings, (context) => {
    const benign = influenceOf(split, context.x, predictedLabels(split, context.x));
    const run = start(context);
    return {
      step(current) {
        const labels = predictedLabels(split, current);
        return (input) =>
          tf.tidy(() => {
            const ce = attackLoss(context.target, context.target.scores(input), context.criterion, "ce");
            const distance = run.distance(influenceOf(split, input, labels), benign);
            return tf.add(tf.mul(ce, lambda), tf.mul(distance, direction)) as tf.Tensor1D;
          });
      },
      dispose: () => {
        benign.dispose();
        run.dispose?.();
      },
    };
  });
}
