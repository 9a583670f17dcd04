/**
 * The default protected model: a LeNet-5-style CNN for 28x28x1 images (Fashion-MNIST, MNIST).
 *
 * conv 5x5 (16, same, ReLU) - max-pool 2 - conv 5x5 (32, valid, ReLU) - max-pool 2 - Flatten ("flatten",
 * 800 features) - dense 128 ReLU ("dense1") - dense `classes` ("logits") - softmax ("softmax").
 * About 117k parameters (470 KB of float32 weights). Optionally a per-image standardisation first and a
 * dropout before the logits (`lenet-norm` in `deno task train`). The logits and softmax are separate layers so that
 * attacks and defences can read pre-softmax scores; NIP hooks the "flatten" layer.
 *
 * Every initializer is seeded, so a given seed builds the same weights on every backend.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Options for {@link createLeNet}. */
export interface LeNetOptions {
  /** Input image shape; default [28, 28, 1]. */
  inputShape?: [number, number, number];
  /** Number of classes; default 10. */
  classes?: number;
  /** Filters of the two conv layers; default [16, 32]. */
  filters?: [number, number];
  /** Units of the hidden dense layer; default 128. */
  denseUnits?: number;
  /** Seed of the weight initialisers; default 1. */
  seed?: number;
  /** Adam learning rate; default 0.001. */
  learningRate?: number;
  /**
   * Standardise each image over its pixels and channels first (a layer normalisation, "input_norm", with a
   * learned scale and offset): the images' own brightness and contrast no longer reach the convolutions.
   * Default false.
   */
  perImageNormalization?: boolean;
  /** Dropout rate before the logits during training ("dropout"); default 0 (no layer). */
  dropout?: number;
}

/** Name of the flatten layer whose activations NIP inspects. */
export const LENET_FLATTEN_LAYER = "flatten";
/** Name of the pre-softmax layer. */
export const LENET_LOGITS_LAYER = "logits";

/**
 * Builds and compiles the LeNet-style classifier (Adam, categorical cross-entropy on one-hot labels,
 * accuracy metric).
 */
export function createLeNet(options: LeNetOptions = {}): tf.Sequential {
  const inputShape = options.inputShape ?? [28, 28, 1];
  const classes = options.classes ?? 10;
  const [filters1, filters2] = options.filters ?? [16, 32];
  const seed = options.seed ?? 1;
  const kernel = (offset: number) => tf.initializers.glorotUniform({ seed: seed * 16 + offset });

  const model = tf.sequential({ name: "lenet" });
  if (options.perImageNormalization) {
    model.add(
      tf.layers.layerNormalization({ name: "input_norm", inputShape, axis: [1, 2, 3], epsilon: 1e-5 }),
    );
  }
  model.add(tf.layers.conv2d({
    name: "conv1",
    ...(options.perImageNormalization ? {} : { inputShape }),
    filters: filters1,
    kernelSize: 5,
    padding: "same",
    activation: "relu",
    kernelInitializer: kernel(1),
  }));
  model.add(tf.layers.maxPooling2d({ name: "pool1", poolSize: 2, strides: 2 }));
  model.add(tf.layers.conv2d({
    name: "conv2",
    filters: filters2,
    kernelSize: 5,
    padding: "valid",
    activation: "relu",
    kernelInitializer: kernel(2),
  }));
  model.add(tf.layers.maxPooling2d({ name: "pool2", poolSize: 2, strides: 2 }));
  model.add(tf.layers.flatten({ name: LENET_FLATTEN_LAYER }));
  model.add(tf.layers.dense({
    name: "dense1",
    units: options.denseUnits ?? 128,
    activation: "relu",
    kernelInitializer: kernel(3),
  }));
  if (options.dropout) model.add(tf.layers.dropout({ name: "dropout", rate: options.dropout, seed }));
  model.add(tf.layers.dense({ name: LENET_LOGITS_LAYER, units: classes, kernelInitializer: kernel(4) }));
  model.add(tf.layers.activation({ name: "softmax", activation: "softmax" }));
  model.compile({
    optimizer: tf.train.adam(options.learningRate ?? 0.001),
    loss: "categoricalCrossentropy",
    metrics: ["accuracy"],
  });
  return model;
}
