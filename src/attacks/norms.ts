/**
 * Norm geometry shared by all attacks: per-example norms, projections onto epsilon balls, steepest-ascent
 * directions, random starts, and distances.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Distances, Norm } from "./types.ts";
import type { Rng } from "./rng.ts";

/** Below this a change counts as no change (L0) and a norm as zero (division guards). */
export const TINY = 1e-12;
const L0_THRESHOLD = 1e-7;

function flat(t: tf.Tensor): tf.Tensor2D {
  return t.reshape([t.shape[0], -1]) as tf.Tensor2D;
}

/** Multiplies each example of `t` by its own factor `factors` [n]. */
export function scalePerExample<T extends tf.Tensor>(t: T, factors: tf.Tensor1D): T {
  return tf.tidy(() => {
    const shape = [t.shape[0], ...t.shape.slice(1).map(() => 1)];
    return tf.mul(t, factors.reshape(shape)) as T;
  });
}

/** Per-example L2 norm of `t` [n, ...] as [n]. */
export function l2Norms(t: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => tf.sqrt(tf.sum(tf.square(flat(t)), 1)) as tf.Tensor1D);
}

/** Per-example L_inf norm of `t` [n, ...] as [n]. */
export function linfNorms(t: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => tf.max(tf.abs(flat(t)), 1) as tf.Tensor1D);
}

/** Clips `x` into the input range. */
export function clipToRange<T extends tf.Tensor>(x: T, range: [number, number]): T {
  return tf.clipByValue(x, range[0], range[1]) as T;
}

/**
 * Projects `x` onto the `norm` ball of radius `epsilon` around `x0` (L_inf: clip; L2: rescale), then into the
 * input range. L0 has no cheap projection and is rejected.
 */
export function projectToBall<T extends tf.Tensor>(
  x0: T,
  x: T,
  norm: Norm,
  epsilon: number,
  range: [number, number],
): T {
  return tf.tidy(() => {
    let delta = tf.sub(x, x0);
    if (Number.isFinite(epsilon)) {
      if (norm === "linf") delta = tf.clipByValue(delta, -epsilon, epsilon);
      else if (norm === "l2") {
        const factor = tf.minimum(1, tf.div(epsilon, tf.maximum(l2Norms(delta), TINY))) as tf.Tensor1D;
        delta = scalePerExample(delta, factor);
      } else throw new RangeError("projectToBall: the l0 ball has no projection here");
    }
    return clipToRange(tf.add(x0, delta), range) as T;
  });
}

/**
 * Exact sign (-1, 0, 1). The wasm backend's `tf.sign` returns 0 for |x| below about 1e-6, which silently drops
 * the small gradient components of confident examples.
 */
export function exactSign<T extends tf.Tensor>(t: T): T {
  return tf.tidy(() => tf.sub(tf.cast(tf.greater(t, 0), "float32"), tf.cast(tf.less(t, 0), "float32")) as T);
}

/**
 * Direction of steepest ascent of a linear function with gradient `g` under a unit `norm` step:
 * sign(g) for L_inf, g/||g||_2 for L2.
 */
export function steepestDirection<T extends tf.Tensor>(g: T, norm: "linf" | "l2"): T {
  return tf.tidy(() => {
    if (norm === "linf") return exactSign(g);
    return scalePerExample(g, tf.div(1, tf.maximum(l2Norms(g), TINY)) as tf.Tensor1D);
  });
}

/**
 * A random point in the `norm` ball of radius `epsilon` (uniform in the L_inf box; uniform in the L2 ball:
 * Gaussian direction, radius epsilon * u^(1/d)).
 */
export function randomInBall(rng: Rng, shape: number[], norm: "linf" | "l2", epsilon: number): tf.Tensor {
  const n = shape[0];
  const d = shape.slice(1).reduce((a, b) => a * b, 1);
  if (norm === "linf") return tf.tensor(rng.uniformArray(n * d, -epsilon, epsilon), shape);
  const values = rng.normalArray(n * d);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let j = 0; j < d; j++) sum += values[i * d + j] ** 2;
    const radius = epsilon * Math.pow(rng.next(), 1 / d) / Math.max(Math.sqrt(sum), TINY);
    for (let j = 0; j < d; j++) values[i * d + j] *= radius;
  }
  return tf.tensor(values, shape);
}

/** Distances between `x0` and `x` ([n, h, w, c]) in every norm, per example. */
export async function computeDistances(x0: tf.Tensor, x: tf.Tensor): Promise<Distances> {
  const [linf, l2, l0] = tf.tidy(() => {
    const delta = tf.sub(x, x0);
    const abs = tf.abs(delta);
    // L0 counts pixel positions: a pixel changed when any of its channels changed.
    const perPixel = abs.rank === 4 ? tf.max(abs, 3) : abs;
    const changed = tf.sum(flat(tf.cast(tf.greater(perPixel, L0_THRESHOLD), "float32")), 1);
    return [linfNorms(delta), l2Norms(delta), changed];
  });
  const out = {
    linf: (await linf.data()) as Float32Array,
    l2: (await l2.data()) as Float32Array,
    l0: (await l0.data()) as Float32Array,
  };
  tf.dispose([linf, l2, l0]);
  return out;
}
