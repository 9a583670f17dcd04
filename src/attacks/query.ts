/**
 * Counted queries for black-box searches: every call adds one query to each example it scores.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { addQueries } from "./base.ts";
import type { AttackTarget } from "./types.ts";

/** Scores of `x` (row-major [n, classes]); adds one query to each of `indices` (all when absent). */
export async function queryScores(
  target: AttackTarget,
  x: tf.Tensor,
  queries: Int32Array,
  indices?: ArrayLike<number>,
): Promise<{ scores: Float32Array; numClasses: number }> {
  const scores = tf.tidy(() => target.scores(x));
  const values = Float32Array.from((await scores.data()) as Float32Array);
  const numClasses = scores.shape[1];
  scores.dispose();
  addQueries(queries, 1, indices);
  return { scores: values, numClasses };
}

/** Predicted labels of `x`; adds one query to each of `indices` (all when absent). */
export async function queryLabels(
  target: AttackTarget,
  x: tf.Tensor,
  queries: Int32Array,
  indices?: ArrayLike<number>,
): Promise<Int32Array> {
  const labels = tf.tidy(() => tf.argMax(target.scores(x), 1));
  const values = Int32Array.from((await labels.data()) as Int32Array);
  labels.dispose();
  addQueries(queries, 1, indices);
  return values;
}

/** Indices i with `flags[i] === value`. */
export function indicesWhere(flags: Uint8Array, value = 0): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < flags.length; i++) if (flags[i] === value) out.push(i);
  return Int32Array.from(out);
}

/** Replaces the rows `indices` of `base` with `rows` (same order); returns a new tensor. */
export function replaceRows<T extends tf.Tensor>(base: T, indices: ArrayLike<number>, rows: tf.Tensor): T {
  return tf.tidy(() => {
    const n = base.shape[0];
    if (indices.length === n) return rows.clone() as T;
    const index = tf.tensor2d(Int32Array.from(indices), [indices.length, 1], "int32");
    const scattered = tf.scatterND(index, rows, base.shape);
    const mask = tf.scatterND(index, tf.ones([indices.length], "int32"), [n]).cast("bool");
    return tf.where(mask.reshape([n, ...base.shape.slice(1).map(() => 1)]), scattered, base) as T;
  });
}
