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
 * hundred clips) the precision is kept as ridge plus low rank (`LowRankPrecision` in `tied_gaussians.ts`), `a * k` values
 * instead of `a^2`.
 *
 * Speed: the precision matrix comes from a Cholesky factorisation in plain TypeScript (0.3 s for a = 800;
 * the whole fit on 1,000 images of the default model, forwards included, about 1.2 s). Scores are one tfjs
 * matrix product per batch: for a batch of 64 on the default model about 5 ms, against 35 ms for plain loops.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  densePrecision,
  fitTiedGaussians,
  lowRankForm,
  mahalanobisScores,
  type PrecisionForm,
} from "./tied_gaussians.ts";
import { forwardAtLayer, neuronOutputs } from "../../nip/neurons.ts";
import type { SplitModel } from "../../nip/types.ts";
import { constantLabels } from "../../engine/outputs.ts";
import { type DefenseStage, numericSetting, type StageFactory, type StageState } from "../stage.ts";

/** Default ridge, as a fraction of the mean per-neuron variance added to the covariance's diagonal. */
export const DEFAULT_SHRINKAGE = 0.01;

/** Examples per forward while fitting. */
const FIT_BATCH = 256;

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
