/**
 * The denoiser of denoised smoothing (Salman et al. 2020): a small residual convolutional network that
 * maps an input with Gaussian noise back towards the clean input, placed in front of a frozen classifier.
 * `layers` 3x3 convolutions (`filters` channels, ReLU between, a linear last one back to the input's
 * channels) predict a correction that is added to the noisy input (DnCNN's residual form, so an untrained
 * denoiser starts near the identity). Its weights travel as one flat float32 array, so they can be stored
 * in a model's profile next to the stage that uses them.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** A denoiser's architecture. */
export interface DenoiserSpec {
  /** Input shape without the batch dimension, [height, width, channels]. */
  inputShape: [number, number, number];
  /** Channels of the hidden convolutions. */
  filters: number;
  /** Convolutions in all (at least 2). */
  layers: number;
}

/** The default architecture for an input shape: 5 convolutions of 16 channels. */
export function defaultDenoiserSpec(inputShape: [number, number, number]): DenoiserSpec {
  return { inputShape, filters: 16, layers: 5 };
}

/** Builds a denoiser (not compiled); `seed` seeds its initialisers, the last layer starts at zero. */
export function createDenoiser(spec: DenoiserSpec, seed = 1): tf.LayersModel {
  if (!Number.isInteger(spec.layers) || spec.layers < 2) {
    throw new RangeError(`denoiser: layers = ${spec.layers} must be an integer >= 2`);
  }
  if (!Number.isInteger(spec.filters) || spec.filters < 1) {
    throw new RangeError(`denoiser: filters = ${spec.filters} must be a positive integer`);
  }
  const input = tf.input({ shape: spec.inputShape, name: "noisy" });
  let hidden: tf.SymbolicTensor = input;
  for (let i = 0; i < spec.layers - 1; i++) {
    hidden = tf.layers.conv2d({
      name: `denoise_conv${i + 1}`,
      filters: spec.filters,
      kernelSize: 3,
      padding: "same",
      activation: "relu",
      kernelInitializer: tf.initializers.heNormal({ seed: seed * 64 + i }),
    }).apply(hidden) as tf.SymbolicTensor;
  }
  const correction = tf.layers.conv2d({
    name: `denoise_conv${spec.layers}`,
    filters: spec.inputShape[2],
    kernelSize: 3,
    padding: "same",
    kernelInitializer: "zeros",
  }).apply(hidden) as tf.SymbolicTensor;
  const output = tf.layers.add({ name: "denoised" }).apply([input, correction]) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output, name: "denoiser" });
}

/** Number of float32 weights of a denoiser with this architecture. */
export function denoiserWeightCount(spec: DenoiserSpec): number {
  const channels = spec.inputShape[2];
  const first = 9 * channels * spec.filters + spec.filters;
  const hidden = (spec.layers - 2) * (9 * spec.filters * spec.filters + spec.filters);
  const last = 9 * spec.filters * channels + channels;
  return first + hidden + last;
}

/** The denoiser's weights in layer order, concatenated. */
export function flattenWeights(model: tf.LayersModel): Float32Array {
  const parts = model.getWeights().map((w) => w.dataSync() as Float32Array);
  const flat = new Float32Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    flat.set(part, offset);
    offset += part.length;
  }
  return flat;
}

/** Builds a denoiser of `spec` holding `weights` (as written by {@link flattenWeights}). */
export function denoiserFromWeights(spec: DenoiserSpec, weights: Float32Array): tf.LayersModel {
  const expected = denoiserWeightCount(spec);
  if (weights.length !== expected) {
    throw new RangeError(
      `denoiser: ${weights.length} weights stored, the architecture ${JSON.stringify(spec)} has ${expected}`,
    );
  }
  const model = createDenoiser(spec);
  let offset = 0;
  const values = model.getWeights().map((w) => {
    const size = w.size;
    const tensor = tf.tensor(weights.subarray(offset, offset + size), w.shape);
    offset += size;
    return tensor;
  });
  model.setWeights(values);
  tf.dispose(values);
  return model;
}
