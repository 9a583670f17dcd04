/**
 * The whole defended pipeline as an attack target (SPEC.md section 7, "adaptive"):
 * `scores(x) = model(clip(x + alpha * Mean(x) * nrho_c(x)))` with `c(x)` the candidate NIP matches to `x`.
 *
 * The match is an argmax over keys, so it has no useful gradient. BPDA (Athalye et al. 2018): the matched
 * candidate is taken as a constant for the gradient (it is computed outside the differentiated path and
 * enters as an index), while the rest of the pipeline (Eq. 8's `Mean(x)` scaling, the clip, the model) is
 * differentiated exactly as it runs. Forward values are those of the deployed defense.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { targetFromModel } from "../attacks/target.ts";
import type { AttackTarget } from "../attacks/types.ts";
import type { NipDefense } from "../nip/defense.ts";

/** Options of {@link defendedTarget}. */
export interface DefendedTargetOptions {
  /**
   * False marks the target as query-only (for the black-box attacks run against the deployed pipeline);
   * white-box attacks then refuse it. Default true (BPDA gradients).
   */
  differentiable?: boolean;
  /** Strength override (`alpha` for the paper rule, the step for the rms rule); default the defense's. */
  strength?: number;
  /**
   * EOT hook: number of draws averaged per query (default 1). NIP is deterministic, so draws only differ
   * when `randomize` makes them differ; more than one draw without it is refused as pointless.
   */
  samples?: number;
  /**
   * EOT hook: a random transformation applied to the input before the defense, for a randomised variant of
   * the defense (`draw` counts 0..samples-1). Must be built from tf ops to stay differentiable.
   */
  randomize?: (x: tf.Tensor, draw: number) => tf.Tensor;
}

/** Candidate matched to each input; no gradient flows through it (BPDA's constant). */
export function matchedCandidates(defense: NipDefense, x: tf.Tensor): Int32Array {
  return defense.match(x).index;
}

/** The defended pipeline's scores for `x`, with the candidates matched to `x` held constant. */
function defendedScores(defense: NipDefense, x: tf.Tensor, strength: number): tf.Tensor2D {
  const candidates = matchedCandidates(defense, x);
  return tf.tidy(() => {
    const defended = defense.perturb(x, candidates, strength);
    return defense.split.model.apply(defended, { training: false }) as tf.Tensor2D;
  });
}

/**
 * An {@link AttackTarget} for the whole defended pipeline: match, perturb, classify. Differentiable by
 * BPDA (see the module doc) unless `differentiable: false`.
 */
export function defendedTarget(defense: NipDefense, options: DefendedTargetOptions = {}): AttackTarget {
  const samples = options.samples ?? 1;
  if (!Number.isInteger(samples) || samples < 1) {
    throw new RangeError(`defendedTarget: samples = ${samples} must be an integer >= 1`);
  }
  if (samples > 1 && options.randomize === undefined) {
    throw new RangeError(
      "defendedTarget: samples > 1 needs options.randomize; NIP is deterministic, so EOT over identical draws is pointless",
    );
  }
  const strength = options.strength ?? defense.strength;
  const bare = targetFromModel(defense.split.model, { inputRange: defense.split.inputRange });
  const randomize = options.randomize;
  return {
    scores(x: tf.Tensor): tf.Tensor2D {
      if (randomize === undefined) return defendedScores(defense, x, strength);
      // EOT: average the scores over draws of the randomised pipeline.
      let total: tf.Tensor2D | undefined;
      for (let draw = 0; draw < samples; draw++) {
        const drawn = randomize(x, draw);
        const scores = defendedScores(defense, drawn, strength);
        if (drawn !== x) drawn.dispose();
        const next = total === undefined ? scores : tf.tidy(() => total!.add(scores) as tf.Tensor2D);
        if (total !== undefined) tf.dispose([total, scores]);
        total = next;
      }
      const mean = tf.tidy(() => total!.div(samples) as tf.Tensor2D);
      total!.dispose();
      return mean;
    },
    inputRange: [...defense.split.inputRange] as [number, number],
    scoreKind: bare.scoreKind,
    differentiable: options.differentiable ?? true,
  };
}
