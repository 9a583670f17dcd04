/**
 * Feature-squeezing detector (Xu, Evans and Qi, "Feature Squeezing: Detecting Adversarial Examples in
 * Deep Neural Networks", NDSS 2018): an input is compared with squeezed copies of itself, and the score
 * is the largest L1 distance, over the squeezers, between the model's softmax probability vector on the
 * input and on the squeezed copy. A benign input barely moves under squeezing; an adversarial one, which
 * sits close to a decision boundary, tends to jump. Larger = more suspicious; the score lies in [0, 2].
 *
 * Squeezers (Xu et al.'s joint detector): bit-depth reduction ({@link bitDepthReduction}; 1 bit for
 * one-channel inputs, 5 for colour, 4 on an audio model's log-mel map, where 1 bit would erase the
 * spectrogram) and a 2x2 median filter ({@link medianSmoothing}). Both copies go through the model in one
 * forward of 2n; the input's own scores are the pipeline's shared forward. Deterministic. The adaptive
 * attacks' surrogate replaces each squeezer's gradient by the identity (BPDA).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { readsAudioFeatures } from "../../../audio/config.ts";
import { bitDepthReduction, defaultBitDepth } from "../image/bit_depth.ts";
import { medianSmoothing, SMOOTHING_DEFAULT_WINDOW } from "../image/median_smoothing.ts";
import { integerSetting, type StageFactory } from "../stage.ts";
import { bpda } from "../../engine/bpda.ts";
import { toProbabilities } from "../../engine/outputs.ts";

/** Bit depth on an audio model's log-mel map (its input range is [0, 32]). */
export const SQUEEZE_AUDIO_BITS = 4;

/** `squeeze`: feature-squeezing detector; override `bits` (integer in [1, 16]) and `window` (integer >= 1). */
export const SQUEEZE_DETECTOR: StageFactory = {
  name: "squeeze",
  summary:
    "feature squeezing: max L1 between softmax on the input and on bit-depth / median squeezed copies " +
    "(Xu et al. 2018)",
  modalities: ["image", "audio"],
  needsProfile: false,
  create({ split, overrides = {} }) {
    const { model, inputShape, inputRange } = split;
    const fallbackBits = readsAudioFeatures(inputShape, inputRange)
      ? SQUEEZE_AUDIO_BITS
      : defaultBitDepth(inputShape[inputShape.length - 1]);
    const bits = integerSetting("squeeze", "bits", overrides.bits, fallbackBits, [1, 16]);
    const window = integerSetting("squeeze", "window", overrides.window, SMOOTHING_DEFAULT_WINDOW, [
      1,
      Infinity,
    ]);
    const probabilities = toProbabilities(model);
    /** The two squeezed copies of a batch, bit depth first then median, row-major [2n, ...]. */
    const squeezedCopies = (x: tf.Tensor): Float32Array => {
      if (x.rank !== 4) throw new RangeError(`squeeze: expected [n, h, w, c], got shape [${x.shape}]`);
      const values = x.dataSync() as Float32Array;
      const squeezed = new Float32Array(2 * values.length);
      squeezed.set(bitDepthReduction(values, bits, inputRange), 0);
      squeezed.set(
        medianSmoothing(values, x.shape as [number, number, number, number], window),
        values.length,
      );
      return squeezed;
    };

    return {
      name: "squeeze",
      description: `feature squeezing: max L1 of softmax vs bit depth ${bits} (${2 ** bits} levels over ` +
        `[${inputRange}]) and ${window}x${window} median (bits=${bits}, window=${window})`,
      settings: { bits, window },
      role: "score",
      domain: "input",
      score(input) {
        const { x } = input;
        const squeezed = squeezedCopies(x);
        const shape = x.shape as [number, number, number, number];
        const n = shape[0];
        const original = input.forward().scores;
        // Rows [n, 2]: L1 to the bit-depth copy, L1 to the median copy.
        const distances = tf.tidy(() => {
          const copies = tf.tensor4d(squeezed, [2 * n, shape[1], shape[2], shape[3]]);
          const p = probabilities(original);
          const q = probabilities(model.apply(copies, { training: false }) as tf.Tensor);
          const [reduced, smoothed] = tf.split(q, 2, 0);
          return tf.stack([p.sub(reduced).abs().sum(1), p.sub(smoothed).abs().sum(1)], 1);
        });
        const pairs = distances.dataSync() as Float32Array;
        distances.dispose();
        const bitDepth = new Float32Array(n);
        const median = new Float32Array(n);
        const scores = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          bitDepth[i] = pairs[2 * i];
          median[i] = pairs[2 * i + 1];
          scores[i] = Math.max(bitDepth[i], median[i]);
        }
        return { scores, details: { l1BitDepth: bitDepth, l1Median: median } };
      },
      // BPDA (engine/bpda.ts): the squeezed copies forward, the identity backward.
      surrogateScore({ x }) {
        return tf.tidy(() => {
          const squeezed = squeezedCopies(x);
          const copies = bpda((v) => tf.tensor(squeezed, v.shape))(tf.concat([x, x]));
          const p = probabilities(model.apply(x, { training: false }) as tf.Tensor);
          const q = probabilities(model.apply(copies, { training: false }) as tf.Tensor);
          const [reduced, smoothed] = tf.split(q, 2, 0);
          return tf.maximum(p.sub(reduced).abs().sum(1), p.sub(smoothed).abs().sum(1)) as tf.Tensor1D;
        });
      },
      dispose() {},
    };
  },
};
