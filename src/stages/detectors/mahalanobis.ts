/**
 * The Mahalanobis detector (Lee et al., "A Simple Unified Framework for Detecting Out-of-Distribution
 * Samples and Adversarial Attacks", NeurIPS 2018) as a scoring stage (SPEC.md section 8): class-conditional
 * Gaussians with one tied covariance over the neuron outputs `phi` at the split layer, fitted on benign,
 * correctly classified calibration examples. The score of an input is the squared Mahalanobis distance of
 * its `phi` to the mean of its *predicted* class: how far, in units of the benign spread, the input lies
 * from what the model has seen of the class it is about to answer. Larger = more suspicious. No true label
 * is read at test time. Two detectors share this module: `mahalanobis` at the split layer, whose forward the
 * pipeline already shares, and `input-mahalanobis` on the input values (the ends of Lee et al.'s
 * multi-layer ensemble; their input preprocessing is left out).
 *
 * Shrinkage: the covariance of `a` neurons from a few hundred examples is singular (dead ReLU units, fewer
 * examples than neurons), so a ridge `shrinkage * mean variance` is added to its diagonal before inverting
 * (setting `shrinkage`, a fraction, default {@link DEFAULT_SHRINKAGE}). ROC AUC against FGSM at L_inf 0.1
 * for shrinkage 0.001 / 0.01 / 0.1 / 1: 0.70 / 0.71 / 0.69 / 0.67 on the test fixture, 0.80 / 0.79 / 0.78 /
 * 0.76 on the default model (500 test images): flat below 0.1, so a light ridge.
 *
 * Storage: with fewer fitting examples than features (the speaker model's 2,520 log-mel values from a few
 * hundred clips) the precision is kept as ridge plus low rank ({@link LowRankPrecision}), `a * k` values
 * instead of `a^2`.
 *
 * Speed: the precision matrix comes from a Cholesky factorisation in plain TypeScript (0.3 s for a = 800;
 * the whole fit on 1,000 images of the default model, forwards included, about 1.2 s). Scores are one tfjs
 * matrix product per batch: for a batch of 64 on the default model about 5 ms, against 35 ms for plain loops.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { choleskyInverse, symmetricEigen } from "./linear_algebra.ts";
import { forwardAtLayer, neuronOutputs } from "../../nip/neurons.ts";
import type { SplitModel } from "../../nip/types.ts";
import { constantLabels } from "./probabilities.ts";
import { type DefenseStage, numericSetting, type StageFactory, type StageState } from "../stage.ts";

/** Default ridge, as a fraction of the mean per-neuron variance added to the covariance's diagonal. */
export const DEFAULT_SHRINKAGE = 0.01;

/** Examples per forward while fitting. */
const FIT_BATCH = 256;

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
  const empty = counts.findIndex((count) => count === 0);
  if (empty >= 0) {
    throw new RangeError(
      `${name}: class ${empty} has no correctly classified benign example; calibrate on more examples`,
    );
  }
  for (let c = 0; c < classes; c++) {
    for (let j = 0; j < neurons; j++) means[c * neurons + j] /= counts[c];
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

/** Where a Mahalanobis detector reads its features. */
interface FeatureSource {
  /** Stage name. */
  name: string;
  summary: string;
  /** Human name of the feature space, for descriptions and the state's `layer`. */
  layer(split: SplitModel): string;
  /** Feature width. */
  width(split: SplitModel): number;
  /** Features [n, width] of a batch, from its forward to the split layer; a new tensor. */
  features(x: tf.Tensor, layerOutput: tf.Tensor): tf.Tensor2D;
}

/** Classes of a split model: the head's output width. */
function classCount(split: SplitModel): number {
  return (split.head.outputs[0].shape[1] ?? 1) as number;
}

/** Checks a stored state against the split model; returns its means and precision as tensors. */
function checkState(
  source: FeatureSource,
  split: SplitModel,
  state: StageState | undefined,
): { means: tf.Tensor2D; precision: PrecisionForm } {
  const name = source.name;
  if (!state) throw new RangeError(`${name}: not calibrated; run calibration with this detector`);
  const neurons = source.width(split);
  const classes = classCount(split);
  const layer = source.layer(split);
  const { means, precision, basis, weights } = state.arrays;
  const meta = state.meta;
  if (meta.layer !== layer || meta.neurons !== neurons || meta.classes !== classes) {
    throw new RangeError(
      `${name}: state was fitted at layer ${meta.layer} (${meta.neurons} neurons, ${meta.classes} classes) ` +
        `but the model is split at ${layer} (${neurons} neurons, ${classes} classes); recalibrate`,
    );
  }
  if (!(means instanceof Float32Array) || means.length !== classes * neurons) {
    throw new RangeError(`${name}: state's means must be ${classes * neurons} float32 values`);
  }
  if (precision !== undefined) {
    if (!(precision instanceof Float32Array) || precision.length !== neurons * neurons) {
      throw new RangeError(`${name}: state's precision must be ${neurons * neurons} float32 values`);
    }
    return {
      means: tf.tensor2d(means, [classes, neurons]),
      precision: densePrecision(tf.tensor2d(precision, [neurons, neurons])),
    };
  }
  const rank = weights?.length ?? 0;
  const ridge = Number(meta.ridge);
  if (
    !(weights instanceof Float32Array) || !(basis instanceof Float32Array) ||
    basis.length !== neurons * rank ||
    !(ridge > 0)
  ) {
    throw new RangeError(
      `${name}: state's precision must be ${neurons * neurons} float32 values, or a low-rank basis ` +
        `[${neurons}, k] with k weights and a positive ridge`,
    );
  }
  return {
    means: tf.tensor2d(means, [classes, neurons]),
    precision: lowRankForm(tf.tensor2d(basis, [neurons, rank]), tf.tensor1d(weights), ridge),
  };
}

/**
 * A Mahalanobis detector over one feature space. `fit` reads the model's forward of the benign examples,
 * keeps the correctly classified ones and fits the class means and tied precision (setting `shrinkage`);
 * `create` rebuilds the stage from that state. The score is a smooth function of the input once the
 * predicted label is fixed, so `surrogateScore` is exact (the label, an argmax, is held constant).
 */
function mahalanobisFactory(source: FeatureSource): StageFactory {
  const { name } = source;
  return {
    name,
    summary: source.summary,
    modalities: ["image", "audio"],
    needsProfile: false,
    fit({ split, overrides = {} }, benign): StageState {
      const shrinkage = numericSetting(name, "shrinkage", overrides.shrinkage, DEFAULT_SHRINKAGE, [
        0,
        Infinity,
      ]);
      const neurons = source.width(split);
      const classes = classCount(split);
      const n = benign.labels.length;
      const rows: Float32Array[] = [];
      const kept: number[] = [];
      for (let start = 0; start < n; start += FIT_BATCH) {
        const size = Math.min(FIT_BATCH, n - start);
        const x = benign.x.slice(start, size);
        const forward = forwardAtLayer(split, x);
        const phi = source.features(x, forward.layerOutput);
        const values = phi.dataSync() as Float32Array;
        const predicted = forward.labels.dataSync();
        for (let i = 0; i < size; i++) {
          if (predicted[i] !== benign.labels[start + i]) continue;
          rows.push(values.slice(i * neurons, (i + 1) * neurons));
          kept.push(predicted[i]);
        }
        tf.dispose([x, phi, forward.layerOutput, forward.scores, forward.labels]);
      }
      const phi = new Float32Array(kept.length * neurons);
      rows.forEach((row, i) => phi.set(row, i * neurons));
      const fitted = fitTiedGaussians(phi, Int32Array.from(kept), classes, neurons, shrinkage, name);
      const meta = { layer: source.layer(split), neurons, classes, shrinkage, examples: kept.length };
      const means = Float32Array.from(fitted.means);
      if (fitted.precision) {
        return { meta, arrays: { means, precision: Float32Array.from(fitted.precision) } };
      }
      const { basis, weights, ridge, rank } = fitted.lowRank!;
      return {
        meta: { ...meta, ridge, rank },
        arrays: { means, basis: Float32Array.from(basis), weights: Float32Array.from(weights) },
      };
    },
    create({ split, state }): DefenseStage {
      const { means, precision } = checkState(source, split, state);
      const meta = state!.meta;
      return {
        name,
        description: `Mahalanobis detector at ${meta.layer}: ${means.shape[0]} class means, ` +
          `tied covariance from ${meta.examples} benign examples, shrinkage ${meta.shrinkage}` +
          (meta.rank === undefined ? "" : ` (ridge plus rank ${meta.rank})`),
        settings: {
          layer: meta.layer as string,
          shrinkage: meta.shrinkage as number,
          examples: meta.examples as number,
        },
        role: "score",
        domain: "input",
        score(input) {
          const forward = input.forward();
          const phi = source.features(input.x, forward.layerOutput);
          const scores = mahalanobisScores(phi, forward.labels, means, precision);
          phi.dispose();
          return { scores };
        },
        surrogateScore({ x }) {
          return tf.tidy(() => {
            const layerOutput = split.body.apply(x, { training: false }) as tf.Tensor;
            const labels = constantLabels(split.head.apply(layerOutput, { training: false }) as tf.Tensor);
            return precision.quadratic(source.features(x, layerOutput).sub(means.gather(labels)));
          });
        },
        dispose() {
          means.dispose();
          precision.dispose();
        },
      };
    },
  };
}

/** Width of the split layer: its last axis (a feature map's channels). */
function layerWidth(split: SplitModel): number {
  const layer = split.body.outputs[0].shape;
  return layer[layer.length - 1] as number;
}

/**
 * Lee et al.'s detector at the split layer: the neuron outputs `phi` (a feature map's channel means), the
 * forward the pipeline already shares.
 */
export const MAHALANOBIS: StageFactory = mahalanobisFactory({
  name: "mahalanobis",
  summary: "Mahalanobis detector (Lee et al. 2018): distance to the predicted class's benign Gaussian",
  layer: (split) => split.layerName,
  width: layerWidth,
  features: (_x, layerOutput) => neuronOutputs(layerOutput),
});

/**
 * The same detector on the input itself (every pixel or log-mel cell, flattened): the first layer of Lee et
 * al.'s feature ensemble. Benign inputs of a class share their low-variance directions (a dark background,
 * silent bands); a perturbation spread over every input value, as L_inf attacks make, leaves them. On the
 * default model it detected 100% of FGSM and 99-100% of PGD examples at L_inf 0.3, where the split layer's
 * detector has 95-100% and the input Gaussian-noise corruption at sigma 0.05 raised its false positives
 * from 7% to 10% (500 test images, alpha 0.05); at L_inf 0.1 it detects 11-15%, weaker than the split layer.
 */
export const INPUT_MAHALANOBIS: StageFactory = mahalanobisFactory({
  name: "input-mahalanobis",
  summary: "Mahalanobis detector on the input values: distance to the predicted class's benign Gaussian",
  layer: () => "input",
  width: (split) => split.inputShape.reduce((a, b) => a * b, 1),
  features: (x) => x.reshape([x.shape[0], -1]) as tf.Tensor2D,
});
