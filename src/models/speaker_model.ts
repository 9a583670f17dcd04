/**
 * The speaker model: a small CNN over the log-mel features (see `features.ts`), with the layer
 * between the convolutional body and the dense head named "flatten" (NIP's default layer).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { FEATURE_RANGE, FEATURE_SHAPE } from "../../audio/config.ts";

/** Name of the layer NIP reads by default (between the conv body and the dense head). */
export const SPEAKER_NIP_LAYER = "flatten";

/** Options of {@link buildSpeakerModel}. */
export interface SpeakerModelOptions {
  /** Seed for the weight initialisers and dropout (default 1). */
  seed?: number;
  /** Learning rate of the Adam optimiser the model is compiled with (default 1e-3). */
  learningRate?: number;
}

/**
 * Builds and compiles the CNN: rescale (features / FEATURE_RANGE max) -> 3 x [conv3x3 + ReLU + maxpool2]
 * (16, 32, 48 filters) -> flatten -> dropout 0.3 -> dense 64 ReLU -> dense `numSpeakers` softmax.
 * Input [batch, NUM_FRAMES, MEL_BANDS, 1], output speaker probabilities.
 */
export function buildSpeakerModel(numSpeakers: number, options: SpeakerModelOptions = {}): tf.Sequential {
  const seed = options.seed ?? 1;
  let layerSeed = seed * 1000;
  const init = () => tf.initializers.glorotUniform({ seed: layerSeed++ });
  const model = tf.sequential({ name: "fsdd_speaker_cnn" });
  model.add(
    tf.layers.rescaling({ inputShape: [...FEATURE_SHAPE], scale: 1 / FEATURE_RANGE[1], name: "rescale" }),
  );
  for (const [i, filters] of [16, 32, 48].entries()) {
    model.add(tf.layers.conv2d({
      filters,
      kernelSize: 3,
      padding: "same",
      activation: "relu",
      kernelInitializer: init(),
      name: `conv${i + 1}`,
    }));
    model.add(tf.layers.maxPooling2d({ poolSize: 2, name: `pool${i + 1}` }));
  }
  model.add(tf.layers.flatten({ name: SPEAKER_NIP_LAYER }));
  model.add(tf.layers.dropout({ rate: 0.3, seed, name: "dropout" }));
  model.add(tf.layers.dense({ units: 64, activation: "relu", kernelInitializer: init(), name: "dense1" }));
  model.add(
    tf.layers.dense({
      units: numSpeakers,
      activation: "softmax",
      kernelInitializer: init(),
      name: "speaker",
    }),
  );
  model.compile({
    optimizer: tf.train.adam(options.learningRate ?? 1e-3),
    loss: "categoricalCrossentropy",
    metrics: ["accuracy"],
  });
  return model;
}
