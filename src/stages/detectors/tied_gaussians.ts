/**
 * Class-conditional Gaussians with one tied covariance (Lee et al. 2018), fitted on plain arrays: class
 * means, the covariance shrunk by a ridge, and its inverse, dense or (with fewer examples than features) as
 * ridge plus low rank; and the squared Mahalanobis distance under either form, in tfjs. Free of I/O.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { choleskyInverse, symmetricEigen } from "./linear_algebra.ts";

/**
 * The precision with fewer examples than features: the tied covariance is `S + ridge I` with `S` of rank
 * `k` = `U diag(lambda) U^T`, so `P = (I - U diag(weights) U^T) / ridge` with `weights = lambda / (lambda +
 * ridge)`. Stored as `basis` U (row-major [neurons, k], orthonormal columns) and the weights: `neurons * k`
 * values instead of `neurons^2`.
 */
export interface LowRankPrecision {
  basis: Float64Array;
  weights: Float64Array;
  ridge: number;
  rank: number;
}

/** Class means and shared precision of {@link fitTiedGaussians}: dense, or ridge plus low rank. */
export interface TiedGaussians {
  /** Row-major [classes, neurons]. */
  means: Float64Array;
  /** Inverse of the shrunk tied covariance, row-major [neurons, neurons], with at least as many examples as neurons. */
  precision?: Float64Array;
  /** The same inverse with fewer examples than neurons. */
  lowRank?: LowRankPrecision;
  /** Examples per class. */
  counts: Int32Array;
}

/**
 * Fits class means and one tied covariance (the mean outer product of each example's deviation from its
 * class mean, divided by the number of examples) to rows of `phi` (row-major [n, neurons]), adds
 * `shrinkage * trace / neurons` to the diagonal and inverts it. Every class needs at least one example.
 * With fewer examples than neurons the inverse is kept in its ridge-plus-low-rank form
 * ({@link LowRankPrecision}), from the eigen-decomposition of the examples' [n, n] Gram matrix.
 */
export function fitTiedGaussians(
  phi: Float32Array,
  labels: Int32Array,
  classes: number,
  neurons: number,
  shrinkage: number,
  name = "mahalanobis",
): TiedGaussians {
  const n = labels.length;
  const means = new Float64Array(classes * neurons);
  const counts = new Int32Array(classes);
  for (let i = 0; i < n; i++) {
    const c = labels[i];
    counts[c]++;
    for (let j = 0; j < neurons; j++) means[c * neurons + j] += phi[i * neurons + j];
  }
  if (n === 0) {
    throw new RangeError(`${name}: no correctly classified benign example; calibrate on more examples`);
  }
  // A class the fit set lacks (GTSRB's calibration split holds one sign of some classes) is scored against
  // the mean of all benign examples: the shared covariance still holds, and no class is left without one.
  const pooled = new Float64Array(neurons);
  for (let c = 0; c < classes; c++) {
    for (let j = 0; j < neurons; j++) pooled[j] += means[c * neurons + j] / n;
  }
  for (let c = 0; c < classes; c++) {
    for (let j = 0; j < neurons; j++) {
      means[c * neurons + j] = counts[c] === 0 ? pooled[j] : means[c * neurons + j] / counts[c];
    }
  }
  if (n < neurons) {
    return { means, lowRank: lowRankPrecision(phi, labels, means, neurons, shrinkage), counts };
  }
  // Upper triangle of the scatter matrix, one rank-1 update per example.
  const covariance = new Float64Array(neurons * neurons);
  const deviation = new Float64Array(neurons);
  for (let i = 0; i < n; i++) {
    const mean = labels[i] * neurons;
    for (let j = 0; j < neurons; j++) deviation[j] = phi[i * neurons + j] - means[mean + j];
    for (let j = 0; j < neurons; j++) {
      const dj = deviation[j];
      if (dj === 0) continue;
      const row = j * neurons;
      for (let k = j; k < neurons; k++) covariance[row + k] += dj * deviation[k];
    }
  }
  let trace = 0;
  for (let j = 0; j < neurons; j++) trace += covariance[j * neurons + j] / n;
  // A floor keeps the ridge positive when every neuron is constant.
  const ridge = Math.max(shrinkage * trace / neurons, 1e-12);
  for (let j = 0; j < neurons; j++) {
    for (let k = j; k < neurons; k++) {
      const value = covariance[j * neurons + k] / n + (j === k ? ridge : 0);
      covariance[j * neurons + k] = value;
      covariance[k * neurons + j] = value;
    }
  }
  return { means, precision: choleskyInverse(covariance, neurons), counts };
}

/** {@link LowRankPrecision} of the deviations of `phi`'s rows from their class means. */
function lowRankPrecision(
  phi: Float32Array,
  labels: Int32Array,
  means: Float64Array,
  neurons: number,
  shrinkage: number,
): LowRankPrecision {
  const n = labels.length;
  const deviations = new Float64Array(n * neurons);
  for (let i = 0; i < n; i++) {
    const mean = labels[i] * neurons;
    for (let j = 0; j < neurons; j++) deviations[i * neurons + j] = phi[i * neurons + j] - means[mean + j];
  }
  // Gram matrix D D^T / n: its eigenvalues are S's non-zero ones, U = D^T V / sqrt(n lambda).
  const gram = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = i; k < n; k++) {
      let sum = 0;
      for (let j = 0; j < neurons; j++) sum += deviations[i * neurons + j] * deviations[k * neurons + j];
      gram[i * n + k] = sum / n;
      gram[k * n + i] = sum / n;
    }
  }
  const { values, vectors } = symmetricEigen(gram, n);
  const trace = values.reduce((a, b) => a + Math.max(b, 0), 0);
  const ridge = Math.max(shrinkage * trace / neurons, 1e-12);
  const rank = values.filter((value) => value > 1e-9 * Math.max(trace, 1e-300)).length;
  const basis = new Float64Array(neurons * rank);
  const weights = new Float64Array(rank);
  for (let k = 0; k < rank; k++) {
    weights[k] = values[k] / (values[k] + ridge);
    const scale = 1 / Math.sqrt(n * values[k]);
    for (let j = 0; j < neurons; j++) {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += deviations[i * neurons + j] * vectors[i * n + k];
      basis[j * rank + k] = sum * scale;
    }
  }
  return { basis, weights, ridge, rank };
}

/** The quadratic form `c^T P c` of each row of centred features [n, a], for a dense or low-rank precision. */
export interface PrecisionForm {
  quadratic(centred: tf.Tensor2D): tf.Tensor1D;
  dispose(): void;
}

/** A dense precision matrix [a, a] as a {@link PrecisionForm}. */
export function densePrecision(precision: tf.Tensor2D): PrecisionForm {
  return {
    quadratic: (centred) => tf.tidy(() => centred.matMul(precision).mul(centred).sum(1) as tf.Tensor1D),
    dispose: () => precision.dispose(),
  };
}

/** A {@link LowRankPrecision} as a {@link PrecisionForm}: `(|c|^2 - sum_k w_k (u_k . c)^2) / ridge`. */
export function lowRankForm(basis: tf.Tensor2D, weights: tf.Tensor1D, ridge: number): PrecisionForm {
  return {
    quadratic: (centred) =>
      tf.tidy(() =>
        centred.square().sum(1).sub(centred.matMul(basis).square().mul(weights).sum(1)).div(
          ridge,
        ) as tf.Tensor1D
      ),
    dispose: () => tf.dispose([basis, weights]),
  };
}

/**
 * Squared Mahalanobis distance of each row of `phi` [n, a] to the mean of its label's class:
 * `(phi - mu_y)^T P (phi - mu_y)` with `means` [classes, a] and the precision P. One matrix product.
 */
export function mahalanobisScores(
  phi: tf.Tensor2D,
  labels: tf.Tensor1D,
  means: tf.Tensor2D,
  precision: PrecisionForm,
): Float32Array {
  const scores = tf.tidy(() => precision.quadratic(phi.sub(means.gather(labels))));
  const values = Float32Array.from(scores.dataSync() as Float32Array);
  scores.dispose();
  return values;
}
