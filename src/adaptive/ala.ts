/**
 * ALA and I-ALA, the adaptive loss attacks of the paper's App. B: strengthen the tail neurons and weaken
 * the front ones, the reverse of NIP's inverse perturbation, `x* = x + s * grad_x loss` with
 * `loss = sum_{tail} phi - sum_{front} phi`, `k1 = k2 = 3`, `s = 0.01`; I-ALA iterates it 20 times.
 *
 * Readings:
 * - **Erratum:** App. B Eq. 1 writes `loss = sum_front phi - sum_tail phi`, whose ascent would *strengthen*
 *   the front (that is NIP's own defense direction); the text says ALA "strengthens tail neurons and
 *   weakens front ones". This follows the text (same erratum family as SPEC.md section 2).
 * - The raw-gradient step `s * grad` has no input-space scale (it depends on the layer's magnitudes), so the
 *   step is `s * sign(grad)`: ALA moves every pixel by at most `s` (L_inf `s`), I-ALA by at most `steps * s`.
 *   Each result is still projected onto the budget passed to `run` (see `adaptiveBudgets`).
 * - Front and tail come from the influence for the label the model predicts for the current iterate, and
 *   are recomputed at every I-ALA step.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Attack } from "../attacks/types.ts";
import type { SplitModel } from "../nip/types.ts";
import { frontTailSignTensor, neuronOutputsOf, partitionsOf } from "./influence.ts";
import { signedAscentAttack } from "./signed_ascent.ts";

/** Parameters of {@link ala} and {@link iAla}. */
export interface AlaParams {
  /** Front size (paper: 3). */
  k1?: number;
  /** Tail size (paper: 3). */
  k2?: number;
  /** Step `s` per iteration, as an L_inf distance (paper: 0.01). */
  stepSize?: number;
  /** Iterations (ALA: 1; I-ALA: 20). */
  steps?: number;
}

function adaptiveLoss(name: string, split: SplitModel, params: AlaParams, defaultSteps: number): Attack {
  const k1 = params.k1 ?? 3;
  const k2 = params.k2 ?? 3;
  for (const [field, value] of [["k1", k1], ["k2", k2]] as const) {
    if (!Number.isInteger(value) || value < 0) {
      throw new RangeError(`attack "${name}": ${field} = ${value} is invalid`);
    }
  }
  const settings = { steps: params.steps ?? defaultSteps, stepSize: params.stepSize ?? 0.01, relStepSize: 1 };
  return signedAscentAttack(
    name,
    { k1, k2, steps: settings.steps, stepSize: settings.stepSize },
    settings,
    () => ({
      step(current) {
        const partitions = partitionsOf(split, current, k1, k2);
        return (input) =>
          tf.tidy(() => {
            const phi = neuronOutputsOf(split, input);
            // Signs are +1 front / -1 tail: minus their weighted sum is sum_tail phi - sum_front phi.
            return tf.neg(
              tf.sum(tf.mul(phi, frontTailSignTensor(partitions, phi.shape[1])), 1),
            ) as tf.Tensor1D;
          });
      },
    }),
  );
}

/** ALA: one signed step of size `s` that strengthens the tail neurons and weakens the front ones. */
export function ala(split: SplitModel, params: AlaParams = {}): Attack {
  return adaptiveLoss("ala", split, params, 1);
}

/** I-ALA: ALA iterated (paper: 20 steps of `s = 0.01`), front and tail recomputed at each step. */
export function iAla(split: SplitModel, params: AlaParams = {}): Attack {
  return adaptiveLoss("i-ala", split, params, 20);
}
