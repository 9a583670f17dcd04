/**
 * EOT, Expectation over Transformation (Athalye et al. 2018): a wrapper that runs any attack on the target
 * averaged over a distribution of transformations, so the adversarial survives them. The wrapped target
 * scores `x` by the mean of the target's scores over `samples` fresh draws of the transformation (its
 * gradient is the Monte-Carlo expectation of gradients). Success is then decided on the real target.
 *
 * Transformations must be built from differentiable tf ops for white-box attacks; `transforms` has the
 * common ones. A randomised defense is itself such a distribution: wrap it with `bpda` (bpda.ts) if it is
 * not differentiable.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { isAdversarial } from "./criteria.ts";
import { computeDistances } from "./norms.ts";
import { Rng } from "./rng.ts";
import type { Attack, AttackTarget } from "./types.ts";

/** A random transformation of a batch; draws its randomness from `rng`. */
export type Transform = (x: tf.Tensor, rng: Rng) => tf.Tensor;

/** Common random transformations (each differentiable in x). */
export const transforms = {
  /** Adds Gaussian noise of standard deviation `sigma`. */
  gaussianNoise(sigma: number): Transform {
    return (x, rng) => tf.tidy(() => tf.add(x, tf.tensor(rng.normalArray(x.size), x.shape).mul(sigma)));
  },
  /** Shifts the batch by a random offset of up to `maxPixels` in each direction (zero padding). */
  randomShift(maxPixels: number): Transform {
    return (x, rng) =>
      tf.tidy(() => {
        const [, h, w] = x.shape;
        const dy = rng.int(2 * maxPixels + 1), dx = rng.int(2 * maxPixels + 1);
        const padded = tf.pad(x as tf.Tensor4D, [[0, 0], [maxPixels, maxPixels], [maxPixels, maxPixels], [
          0,
          0,
        ]]);
        return tf.slice(padded, [0, dy, dx, 0], [-1, h, w, -1]);
      });
  },
  /** Adds a random brightness offset in [-delta, delta]. */
  brightness(delta: number): Transform {
    return (x, rng) => tf.add(x, rng.uniform(-delta, delta));
  },
  /** Applies the given transformations in order. */
  compose(...steps: Transform[]): Transform {
    return (x, rng) =>
      tf.tidy(() => {
        let out = x;
        for (const step of steps) out = step(out, rng);
        return out;
      });
  },
};

/** The target averaged over `samples` draws of `transform` (one wrapped query = `samples` real queries). */
export function eotTarget(
  target: AttackTarget,
  transform: Transform,
  samples: number,
  rng: Rng,
): AttackTarget {
  return {
    ...target,
    scores: (x) =>
      tf.tidy(() => {
        const all: tf.Tensor[] = [];
        for (let s = 0; s < samples; s++) {
          const scores = target.scores(transform(x, rng));
          // Average probabilities, not logits: the expectation of the classifier's output.
          all.push(target.scoreKind === "logits" ? tf.softmax(scores) : scores);
        }
        const mean = tf.div(tf.addN(all), samples) as tf.Tensor2D;
        return target.scoreKind === "logits" ? tf.log(tf.clipByValue(mean, 1e-30, 1)) as tf.Tensor2D : mean;
      }),
  };
}

/** Parameters of {@link eot}. */
export interface EotParams {
  /** The distribution of transformations (default: Gaussian noise, sigma 0.05). */
  transform?: Transform;
  /** Draws per wrapped query (default 10). */
  samples?: number;
  seed?: number;
}

/** Wraps `base` so it attacks the expectation over transformations. */
export function eot(base: Attack, params: EotParams = {}): Attack {
  const samples = params.samples ?? 10;
  if (!Number.isInteger(samples) || samples < 1) {
    throw new RangeError(`attack "eot": samples = ${params.samples} is invalid`);
  }
  const transform = params.transform ?? transforms.gaussianNoise(0.05);
  const seed = params.seed ?? 0;
  return {
    name: `eot-${base.name}`,
    norm: base.norm,
    kind: base.kind,
    mode: base.mode,
    params: { base: base.name, baseParams: base.params, samples, seed },
    async run(target, x, criterion, budget) {
      const wrapped = eotTarget(target, transform, samples, new Rng(seed));
      const inner = await base.run(wrapped, x, criterion, budget);
      // Decide success on the real target, once, on exactly the returned batch.
      const labels = tf.tidy(() => tf.argMax(target.scores(inner.adversarial), 1));
      const predicted = Int32Array.from((await labels.data()) as Int32Array);
      labels.dispose();
      const success = isAdversarial(criterion, predicted);
      const distances = await computeDistances(x, inner.adversarial);
      for (let i = 0; i < success.length; i++) success[i] &= inner.success[i];
      return {
        ...inner,
        success,
        predicted,
        distances,
        queries: inner.queries.map((q) => q * samples + 1),
        attack: `eot-${base.name}`,
      };
    },
  };
}
