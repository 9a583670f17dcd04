/**
 * Evaluation measures (SPEC.md section 6): PSNR of defended vs benign inputs (paper App. C.4), top-k
 * neuron consistency TKNC (paper Eq. 13), and per-example change norms.
 *
 * @module
 */
import { meanOf } from "./tally.ts";
import * as tf from "@tensorflow/tfjs";
import { forwardAtLayer, neuronInfluence } from "../nip/neurons.ts";
import type { SplitModel } from "../nip/types.ts";

/** Per-example L2 and L_inf norms of `a - b`. */
export function changeNorms(a: tf.Tensor, b: tf.Tensor): { l2: Float32Array; linf: Float32Array } {
  return tf.tidy(() => {
    const diff = a.sub(b).reshape([a.shape[0], -1]);
    return {
      l2: diff.square().sum(1).sqrt().dataSync() as Float32Array,
      linf: diff.abs().max(1).dataSync() as Float32Array,
    };
  });
}

/** Per-example PSNR in dB of `x` against `reference`, for inputs with the given range (Infinity when equal). */
export function psnr(x: tf.Tensor, reference: tf.Tensor, range: readonly [number, number]): Float32Array {
  const peak = range[1] - range[0];
  return tf.tidy(() => {
    const mse = x.sub(reference).reshape([x.shape[0], -1]).square().mean(1);
    return mse.reciprocal().mul(peak * peak).log().div(Math.LN10).mul(10).dataSync() as Float32Array;
  });
}

/** Indices of the k largest values of each row of an [n, a] matrix. */
function topK(values: tf.Tensor2D, k: number): Int32Array[] {
  const top = tf.topk(values, k);
  const flat = top.indices.dataSync() as Int32Array;
  tf.dispose([top.values, top.indices]);
  return Array.from({ length: values.shape[0] }, (_, i) => flat.slice(i * k, (i + 1) * k));
}

/** Top-k influence neurons of each example at the chosen layer, for its predicted label. */
export function topInfluenceNeurons(split: SplitModel, x: tf.Tensor, k: number): Int32Array[] {
  const forward = forwardAtLayer(split, x);
  const influence = neuronInfluence(split.head, forward.layerOutput, forward.labels);
  const top = topK(influence, k);
  tf.dispose([forward.layerOutput, forward.scores, forward.labels, influence]);
  return top;
}

/** TKNC (Eq. 13): per-example Jaccard index of the top-k influence neurons of `benign` and `defended`. */
export function tknc(split: SplitModel, benign: tf.Tensor, defended: tf.Tensor, k = 5): Float32Array {
  const before = topInfluenceNeurons(split, benign, k);
  const after = topInfluenceNeurons(split, defended, k);
  return Float32Array.from(before, (set, i) => {
    const other = new Set(after[i]);
    const shared = set.filter((n) => other.has(n)).length;
    return shared / (2 * k - shared);
  });
}

/** Mean of the finite values (NaN when none). */
export function finiteMean(values: ArrayLike<number>): number {
  const { sum, count } = meanOf(values);
  return count === 0 ? NaN : sum / count;
}

/**
 * ROC AUC of separating `positives` from `negatives` by score (larger = positive): the probability that a
 * random positive scores above a random negative, ties counting half (the Mann-Whitney statistic).
 */
export function rocAuc(negatives: ArrayLike<number>, positives: ArrayLike<number>): number {
  if (negatives.length === 0 || positives.length === 0) return NaN;
  const all = [
    ...Array.from(negatives, (v) => ({ v, positive: false })),
    ...Array.from(positives, (v) => ({ v, positive: true })),
  ].sort((a, b) => a.v - b.v);
  let rankSum = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j < all.length && all[j].v === all[i].v) j++;
    const rank = (i + 1 + j) / 2; // average 1-based rank of the tie group
    for (let k = i; k < j; k++) if (all[k].positive) rankSum += rank;
    i = j;
  }
  const p = positives.length;
  return (rankSum - (p * (p + 1)) / 2) / (p * negatives.length);
}
