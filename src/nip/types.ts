/**
 * Shared types of the NIP core (SPEC.md sections 1-5). The core is free of I/O: it takes tensors and
 * returns tensors or plain typed arrays.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";

/** How candidates are matched to an unknown input (SPEC.md section 4). */
export type KeyMode = "knn" | "paper";

/** How the inverse perturbation is scaled (SPEC.md section 3): Eq. 8 or the authors' RMS step. */
export type ScaleRule = "paper" | "rms";

/** What `y_c` means: the model's softmax probabilities or its logits (SPEC.md section 1). */
export type ScoreKind = "probs" | "logits";

/**
 * What the core needs of a model or a part of one: apply it to a batch (gradients flow through), read its
 * output shape, release it. A tfjs LayersModel is one; a GraphModel split at a node is wrapped as one
 * (`engine/graph_split.ts`).
 */
export interface ModelPart {
  apply(
    inputs: tf.Tensor,
    kwargs?: { training?: boolean },
  ): tf.Tensor | tf.Tensor[] | tf.SymbolicTensor | tf.SymbolicTensor[];
  predict(x: tf.Tensor): tf.Tensor | tf.Tensor[];
  readonly inputs: readonly { readonly shape: readonly (number | null)[] }[];
  readonly outputs: readonly { readonly shape: readonly (number | null)[] }[];
  /** What the output holds, when the part declares it (a LayersModel does not: its last layer tells). */
  readonly scoreKind?: "probs" | "logits";
  dispose(): unknown;
}

/**
 * A classifier split at the chosen layer `l`: `body` maps inputs to the layer's output, `head` maps that
 * output to the model's scores. `model` is the whole classifier.
 */
export interface SplitModel {
  /** The whole classifier: input batch -> scores. */
  readonly model: ModelPart;
  /** Input -> output of the chosen layer (flat [n, a] or feature maps [n, h, w, a]). */
  readonly body: ModelPart;
  /** Output of the chosen layer -> scores. */
  readonly head: ModelPart;
  /** Name of the chosen layer. */
  readonly layerName: string;
  /** Input shape without the batch dimension, e.g. [28, 28, 1]. */
  readonly inputShape: number[];
  /** Valid input range, e.g. [0, 1]. */
  readonly inputRange: [number, number];
}

/** NIP's settings, recorded in every profile. */
export interface NipSettings {
  /** Front size (top-influence neurons). */
  k1: number;
  /** Tail size (bottom-influence neurons). */
  k2: number;
  keyMode: KeyMode;
  scaleRule: ScaleRule;
  /** Strength of the paper's Eq. 8 scaling (`alpha`). */
  alpha: number;
  /** Step of the `rms` scale rule (authors' code: 0.001). */
  rmsStep: number;
  scoreKind: ScoreKind;
}

/** Per-example defense outcome for a batch, as plain arrays (index i = example i). */
export interface DefenseOutcome {
  /** Defended inputs, same shape as the inputs; the caller disposes it. */
  defended: tf.Tensor;
  labelsBefore: Int32Array;
  labelsAfter: Int32Array;
  /** Row-major [n, classes]. */
  scoresBefore: Float32Array;
  /** Row-major [n, classes]. */
  scoresAfter: Float32Array;
  /** Index of the matched candidate for each example. */
  candidateIndex: Int32Array;
  /** Cosine similarity (knn) or negative |delta| distance (paper) of the match. */
  similarity: Float32Array;
}
