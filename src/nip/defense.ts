/**
 * The test stage (SPEC.md section 3): match a candidate to each unknown input by key, add its scaled
 * inverse perturbation, reclassify. No true label is used. Also `NIP_n` (paper App. D): the same
 * perturbation added to the chosen layer's activations instead of the input.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  forwardAtLayer,
  type LayerForward,
  neuronInfluence,
  neuronOutputs,
  partitionRows,
} from "./neurons.ts";
import { knnKeys, paperDelta } from "./keys.ts";
import { DeltaMatcher, KnnMatcher, type Matches } from "./matching.ts";
import { applyPerturbation, applyPerturbationRows, normalizePerturbations } from "./scaling.ts";
import { type NipProfile, ProfileError } from "./profile.ts";
import type { DefenseOutcome, ScaleRule, SplitModel } from "./types.ts";

/** Per-call overrides of {@link NipDefense.defendBatch}. */
export interface DefendOptions {
  /** Use these candidates instead of matching (the random-candidate control, the paper-oracle protocol). */
  candidateIndex?: Int32Array;
  /** Strength override: `alpha` for the paper rule, the step for the rms rule. */
  strength?: number;
}

/** Outcome of {@link NipDefense.defendActivations} (NIP_n): only labels and scores change. */
export interface ActivationDefenseOutcome {
  labelsBefore: Int32Array;
  labelsAfter: Int32Array;
  candidateIndex: Int32Array;
}

/** A loaded defense: a split model, a profile, and the candidates held as tensors. */
export class NipDefense {
  readonly split: SplitModel;
  readonly profile: NipProfile;
  /** Scale rule in force (the profile's unless overridden at construction). */
  readonly scaleRule: ScaleRule;
  /** Strength in force: `alpha` (paper rule) or the step (rms rule). */
  readonly strength: number;
  readonly #normalizedRho: tf.Tensor;
  /** The same, as plain rows [m, size], for the forward path. */
  readonly #normalizedRhoRows: Float32Array;
  readonly #knn?: KnnMatcher;
  readonly #delta?: DeltaMatcher;

  /** Checks the profile against the split model and uploads the candidates. */
  constructor(
    split: SplitModel,
    profile: NipProfile,
    overrides: { scaleRule?: ScaleRule; strength?: number } = {},
  ) {
    if (profile.layerName !== split.layerName) {
      throw new ProfileError(
        `profile was calibrated on layer "${profile.layerName}", model is split at "${split.layerName}"`,
      );
    }
    if (profile.inputShape.join("x") !== split.inputShape.join("x")) {
      throw new ProfileError(
        `profile input shape ${profile.inputShape} does not match the model's ${split.inputShape}`,
      );
    }
    this.split = split;
    this.profile = profile;
    this.scaleRule = overrides.scaleRule ?? profile.settings.scaleRule;
    this.strength = overrides.strength ??
      (this.scaleRule === "paper" ? profile.settings.alpha : profile.settings.rmsStep);
    const m = profile.candidateCount;
    this.#normalizedRho = tf.tidy(() =>
      normalizePerturbations(tf.tensor(profile.rho, [m, ...profile.inputShape]), this.scaleRule)
    );
    this.#normalizedRhoRows = this.#normalizedRho.dataSync() as Float32Array;
    if (profile.settings.keyMode === "knn") {
      const keys = tf.tensor2d(profile.keys, [m, profile.keyNeurons.length]);
      this.#knn = new KnnMatcher(keys);
      keys.dispose();
    } else {
      this.#delta = new DeltaMatcher(profile.deltas);
    }
  }

  /** Number of candidates. */
  get candidateCount(): number {
    return this.profile.candidateCount;
  }

  /** Matches candidates to inputs from their forward at the chosen layer (no forward of its own). */
  matchForward(forward: LayerForward): Matches {
    return this.#match(forward.layerOutput, forward.labels);
  }

  /** Matches candidates to inputs from the chosen layer's output and the predicted labels. */
  #match(layerOutput: tf.Tensor, predicted: tf.Tensor1D): Matches {
    if (this.#knn) {
      const phi = layerOutput.rank === 2
        ? layerOutput.dataSync() as Float32Array
        : tf.tidy(() => neuronOutputs(layerOutput).dataSync() as Float32Array);
      const rows = knnKeys(phi, this.profile.neuronCount, this.profile.keyNeurons);
      const queries = tf.tensor2d(rows, [layerOutput.shape[0], this.profile.keyNeurons.length]);
      const matches = this.#knn.match(queries);
      queries.dispose();
      return matches;
    }
    const influence = neuronInfluence(this.split.head, layerOutput, predicted);
    const { k1, k2 } = this.profile.settings;
    const partitions = partitionRows(influence.dataSync() as Float32Array, influence.shape[1], k1, k2);
    influence.dispose();
    return this.#delta!.match(partitions.map((p) => paperDelta(p, this.profile.template)));
  }

  /** Matched candidate per input, without perturbing (for analysis and the adaptive attacks). */
  match(x: tf.Tensor): Matches {
    const forward = forwardAtLayer(this.split, x);
    const matches = this.#match(forward.layerOutput, forward.labels);
    tf.dispose([forward.layerOutput, forward.scores, forward.labels]);
    return matches;
  }

  /** The perturbed inputs for given candidates, without classifying them (differentiable in `x`). */
  perturb(x: tf.Tensor, candidateIndex: Int32Array, strength = this.strength): tf.Tensor {
    return tf.tidy(() => {
      const rho = this.#normalizedRho.gather(tf.tensor1d(candidateIndex, "int32"));
      return applyPerturbation(x, rho, this.scaleRule, strength, this.split.inputRange);
    });
  }

  /**
   * The perturbed inputs as plain rows: the same values as {@link perturb}, computed without kernel
   * launches (the serving path); `x` is row-major [n, ...inputShape].
   */
  perturbRows(x: Float32Array, candidateIndex: Int32Array, strength = this.strength): Float32Array {
    return applyPerturbationRows(
      x,
      this.#normalizedRhoRows,
      candidateIndex,
      this.scaleRule,
      strength,
      this.split.inputRange,
    );
  }

  /** Defends a batch: match, perturb, reclassify. The caller disposes `outcome.defended`. */
  defendBatch(x: tf.Tensor, options: DefendOptions = {}): DefenseOutcome {
    const forward = forwardAtLayer(this.split, x);
    const matches = options.candidateIndex
      ? {
        index: options.candidateIndex,
        similarity: new Float32Array(options.candidateIndex.length).fill(NaN),
      }
      : this.#match(forward.layerOutput, forward.labels);
    const defended = this.perturb(x, matches.index, options.strength);
    const scoresAfter = tf.tidy(() => this.split.model.apply(defended, { training: false }) as tf.Tensor2D);
    const labelsAfter = tf.tidy(() => scoresAfter.argMax(1));
    const outcome: DefenseOutcome = {
      defended,
      labelsBefore: forward.labels.dataSync() as Int32Array,
      labelsAfter: labelsAfter.dataSync() as Int32Array,
      scoresBefore: forward.scores.dataSync() as Float32Array,
      scoresAfter: scoresAfter.dataSync() as Float32Array,
      candidateIndex: matches.index,
      similarity: matches.similarity,
    };
    tf.dispose([forward.layerOutput, forward.scores, forward.labels, scoresAfter, labelsAfter]);
    return outcome;
  }

  /**
   * NIP_n (paper App. D): adds the matched candidate's inverse perturbation at the chosen layer. On that
   * layer the gradient of `sum_front phi - sum_tail phi` is +1 / -1 on the candidate's front / tail
   * neurons (spread evenly over a feature map), scaled like Eq. 8 with the activations' mean; activations
   * are not clipped, since a layer has no declared range.
   */
  defendActivations(x: tf.Tensor, options: DefendOptions = {}): ActivationDefenseOutcome {
    const forward = forwardAtLayer(this.split, x);
    const index = options.candidateIndex ?? this.#match(forward.layerOutput, forward.labels).index;
    const { k1, k2 } = this.profile.settings;
    const a = this.profile.neuronCount;
    const signs = new Float32Array(index.length * a);
    index.forEach((candidate, i) => {
      const row = this.profile.frontTail.subarray(candidate * (k1 + k2), (candidate + 1) * (k1 + k2));
      row.forEach((neuron, j) => signs[i * a + neuron] = j < k1 ? 1 : -1);
    });
    const labelsAfter = tf.tidy(() => {
      const out = forward.layerOutput;
      const n = out.shape[0];
      const spatial = out.size / (n * a);
      const direction = tf.tensor2d(signs, [n, a]).div(spatial).reshape([
        n,
        ...out.shape.slice(1, -1).map(() => 1),
        a,
      ])
        .mul(tf.ones(out.shape));
      const normalized = normalizePerturbations(direction, "paper");
      const perturbed = applyPerturbation(out, normalized, "paper", options.strength ?? this.strength, [
        -Infinity,
        Infinity,
      ]);
      return (this.split.head.apply(perturbed, { training: false }) as tf.Tensor).argMax(1);
    });
    const outcome = {
      labelsBefore: forward.labels.dataSync() as Int32Array,
      labelsAfter: labelsAfter.dataSync() as Int32Array,
      candidateIndex: index,
    };
    tf.dispose([forward.layerOutput, forward.scores, forward.labels, labelsAfter]);
    return outcome;
  }

  /** Frees the candidate tensors. */
  dispose(): void {
    this.#knn?.dispose();
    this.#normalizedRho.dispose();
  }
}
