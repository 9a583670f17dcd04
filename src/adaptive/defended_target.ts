/**
 * The whole deployed defense pipeline as an attack target (SPEC.md section 7, "adaptive"):
 * `scores(x) = model(pipeline(x))`, differentiated by each stage's BPDA rule (Athalye et al. 2018). For
 * NIP, `model(clip(x + alpha * Mean(x) * nrho_c(x)))` with the matched candidate `c(x)` held constant (it is
 * computed outside the differentiated path and enters as an index), while Eq. 8's `Mean(x)` scaling, the
 * clip and the model are differentiated exactly as they run; for an input transformation (JPEG, median,
 * TV minimisation, ...) the transformation's gradient is the identity. Forward values are the deployed
 * pipeline's.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { targetFromModel } from "../attacks/target.ts";
import type { AttackTarget } from "../attacks/types.ts";
import type { DefensePipeline } from "../stages/pipeline.ts";

/** Options of {@link defendedTarget}. */
export interface DefendedTargetOptions {
  /**
   * False marks the target as query-only (for the black-box attacks run against the deployed pipeline);
   * white-box attacks then refuse it. Default true (BPDA gradients).
   */
  differentiable?: boolean;
  /**
   * EOT hook: number of draws averaged per query (default 1). Draws only differ when `randomize` makes
   * them differ; more than one draw without it is refused as pointless.
   */
  samples?: number;
  /**
   * EOT hook: a random transformation applied to the input before the defense, for a randomised variant of
   * the defense (`draw` counts 0..samples-1). Must be built from tf ops to stay differentiable.
   */
  randomize?: (x: tf.Tensor, draw: number) => tf.Tensor;
}

/** The defended pipeline's scores for `x`, differentiable by BPDA. */
function defendedScores(pipeline: DefensePipeline, x: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() =>
    pipeline.split.model.apply(pipeline.differentiable(x), { training: false }) as tf.Tensor2D
  );
}

/**
 * An {@link AttackTarget} for the whole defended pipeline: every stage, then the model. Differentiable by
 * BPDA (see the module doc) unless `differentiable: false`.
 */
export function defendedTarget(pipeline: DefensePipeline, options: DefendedTargetOptions = {}): AttackTarget {
  const samples = options.samples ?? 1;
  if (!Number.isInteger(samples) || samples < 1) {
    throw new RangeError(`defendedTarget: samples = ${samples} must be an integer >= 1`);
  }
  if (samples > 1 && options.randomize === undefined) {
    throw new RangeError(
      "defendedTarget: samples > 1 needs options.randomize; EOT over identical draws is pointless",
    );
  }
  const { split } = pipeline;
  const bare = targetFromModel(split.model, { inputRange: split.inputRange });
  const randomize = options.randomize;
  return {
    scores(x: tf.Tensor): tf.Tensor2D {
      if (randomize === undefined) return defendedScores(pipeline, x);
      // EOT: average the scores over draws of the randomised pipeline.
      let total: tf.Tensor2D | undefined;
      for (let draw = 0; draw < samples; draw++) {
        const drawn = randomize(x, draw);
        const scores = defendedScores(pipeline, drawn);
        if (drawn !== x) drawn.dispose();
        const next = total === undefined ? scores : tf.tidy(() => total!.add(scores) as tf.Tensor2D);
        if (total !== undefined) tf.dispose([total, scores]);
        total = next;
      }
      const mean = tf.tidy(() => total!.div(samples) as tf.Tensor2D);
      total!.dispose();
      return mean;
    },
    inputRange: [...split.inputRange] as [number, number],
    scoreKind: bare.scoreKind,
    differentiable: options.differentiable ?? true,
  };
}
