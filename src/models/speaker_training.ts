/**
 * Training loop of the speaker model: mini-batches with feature-domain augmentation (time shift,
 * gain), seeded shuffling, per-epoch validation accuracy, and a progress callback.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { MEL_BANDS, NUM_FRAMES } from "../../audio/config.ts";
import { mulberry32 } from "../random.ts";
import { featuresToTensor } from "../../audio/features.ts";
import type { LabelledFeatures } from "../../audio/fsdd.ts";

/**
 * One augmented copy of a feature map: shifted in time by up to `maxShift` frames (zeros fill) and
 * scaled in power by a gain of -6..+6 dB (`ln(1 + g (e^v - 1))`, exact for the log-mel definition).
 */
export function augmentFeatures(map: Float32Array, random: () => number, maxShift = 6): Float32Array {
  const shift = Math.round((random() * 2 - 1) * maxShift);
  const gain = Math.pow(10, (random() * 12 - 6) / 10);
  const out = new Float32Array(map.length);
  for (let t = 0; t < NUM_FRAMES; t++) {
    const from = t - shift;
    if (from < 0 || from >= NUM_FRAMES) continue;
    for (let b = 0; b < MEL_BANDS; b++) {
      out[t * MEL_BANDS + b] = Math.log1p(Math.expm1(map[from * MEL_BANDS + b]) * gain);
    }
  }
  return out;
}

/** Fraction of `data` the model labels correctly (batched, no tensors left behind). */
export async function speakerAccuracy(model: tf.LayersModel, data: LabelledFeatures, batchSize = 128) {
  let correct = 0;
  for (let start = 0; start < data.features.length; start += batchSize) {
    const x = featuresToTensor(data.features.slice(start, start + batchSize));
    const predicted = tf.tidy(() => (model.predict(x) as tf.Tensor).argMax(1));
    const labels = await predicted.data();
    tf.dispose([x, predicted]);
    labels.forEach((label, i) => (correct += label === data.labels[start + i] ? 1 : 0));
  }
  return correct / data.features.length;
}

/** Options of {@link trainSpeakerModel}. */
export interface TrainOptions {
  epochs: number;
  batchSize?: number;
  seed?: number;
  /** Augment training examples (default true). */
  augment?: boolean;
  /** Called after every batch and every epoch. */
  onProgress?: (event: TrainProgress) => void;
}

/** Progress of a training run. */
export interface TrainProgress {
  epoch: number;
  batch: number;
  batches: number;
  loss: number;
  /** Set at the end of an epoch when validation data was given. */
  validationAccuracy?: number;
}

/** Trains `model` (compiled, softmax over `numClasses`) in place; returns per-epoch validation accuracy. */
export async function trainSpeakerModel(
  model: tf.LayersModel,
  train: LabelledFeatures,
  validation: LabelledFeatures | null,
  options: TrainOptions,
): Promise<number[]> {
  const batchSize = options.batchSize ?? 32;
  const random = mulberry32(options.seed ?? 1);
  const numClasses = model.outputs[0].shape[1] as number;
  const order = Array.from(train.features.keys());
  const batches = Math.ceil(order.length / batchSize);
  const history: number[] = [];
  for (let epoch = 1; epoch <= options.epochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (let batch = 0; batch < batches; batch++) {
      const ids = order.slice(batch * batchSize, (batch + 1) * batchSize);
      const maps = ids.map((id) =>
        options.augment === false ? train.features[id] : augmentFeatures(train.features[id], random)
      );
      const x = featuresToTensor(maps);
      const y = tf.tidy(() => tf.oneHot(tf.tensor1d(ids.map((id) => train.labels[id]), "int32"), numClasses));
      const result = await model.trainOnBatch(x, y);
      tf.dispose([x, y]);
      const loss = Array.isArray(result) ? result[0] : result;
      options.onProgress?.({ epoch, batch: batch + 1, batches, loss });
    }
    if (validation !== null) {
      const accuracy = await speakerAccuracy(model, validation);
      history.push(accuracy);
      options.onProgress?.({ epoch, batch: batches, batches, loss: NaN, validationAccuracy: accuracy });
    }
  }
  return history;
}
