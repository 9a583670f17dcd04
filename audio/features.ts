/**
 * The speaker model's features: log-mel spectrogram `ln(1 + mel power)` computed with meyda's
 * `melBands` extractor (Hann window, 256-sample frames, 128-sample hop, 40 mel bands, 8 kHz), on
 * centred frames of a fixed-length clip scaled to 16-bit units. This is THE definition: training,
 * calibration, serving and attacks call {@link featurize} (or its tfjs twin in `features_tf.ts`).
 *
 * @module
 */
import Meyda from "meyda";
import * as tf from "@tensorflow/tfjs";
import {
  FEATURE_SHAPE,
  FRAME_SIZE,
  HOP_SIZE,
  MEL_BANDS,
  MODEL_SAMPLE_RATE,
  NUM_FRAMES,
  PCM_SCALE,
} from "./config.ts";
import { fitToClip } from "./clip.ts";

// deno-lint-ignore no-explicit-any
const meyda = Meyda as any;
let ownFilterBank: number[][] | null = null;

/**
 * Puts meyda's global settings to ours. meyda rebuilds its mel filter bank only when the band count
 * changes, not when the sample rate does, so the bank is dropped whenever it is not the one we built.
 */
function configureMeyda(): void {
  meyda.bufferSize = FRAME_SIZE;
  meyda.sampleRate = MODEL_SAMPLE_RATE;
  meyda.melBands = MEL_BANDS;
  meyda.windowingFunction = "hanning";
  if (ownFilterBank === null || meyda.melFilterBank !== ownFilterBank) {
    meyda.melFilterBank = undefined;
    meyda.extract("melBands", new Float32Array(FRAME_SIZE));
    ownFilterBank = meyda.melFilterBank as number[][];
  }
}

/** meyda's mel filter bank as used by the features: [MEL_BANDS][FRAME_SIZE / 2 + 1] weights. */
export function melFilterBank(): number[][] {
  configureMeyda();
  return ownFilterBank!.map((row) => row.slice());
}

/** meyda's Hann window (symmetric, `0.5 - 0.5 cos(2 pi i / (N - 1))`), the analysis window. */
export function analysisWindow(): Float32Array {
  return Float32Array.from(
    { length: FRAME_SIZE },
    (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (FRAME_SIZE - 1)),
  );
}

/**
 * Centred frame `t` of a clip, scaled to 16-bit units: samples `t * HOP - FRAME/2 .. + FRAME/2`,
 * zeros outside the clip.
 */
export function frameAt(clip: Float32Array, t: number, scale: number = PCM_SCALE): Float32Array {
  const frame = new Float32Array(FRAME_SIZE);
  const start = t * HOP_SIZE - FRAME_SIZE / 2;
  for (let i = 0; i < FRAME_SIZE; i++) {
    const at = start + i;
    if (at >= 0 && at < clip.length) frame[i] = clip[at] * scale;
  }
  return frame;
}

/**
 * Features of one waveform at the model's rate: the clip is fitted to 1 s, then each of the
 * {@link NUM_FRAMES} frames gives {@link MEL_BANDS} values `ln(1 + mel power)`.
 * Returns a row-major Float32Array of shape [NUM_FRAMES, MEL_BANDS].
 */
export function featurize(samples: Float32Array): Float32Array {
  configureMeyda();
  const clip = fitToClip(samples);
  const features = new Float32Array(NUM_FRAMES * MEL_BANDS);
  for (let t = 0; t < NUM_FRAMES; t++) {
    const bands = meyda.extract("melBands", frameAt(clip, t)) as number[];
    features.set(bands, t * MEL_BANDS);
  }
  return features;
}

/** Stacks feature maps from {@link featurize} into the model's input tensor [batch, frames, bands, 1]. */
export function featuresToTensor(features: Float32Array | Float32Array[]): tf.Tensor4D {
  const list = Array.isArray(features) ? features : [features];
  const size = NUM_FRAMES * MEL_BANDS;
  const data = new Float32Array(list.length * size);
  list.forEach((map, i) => {
    if (map.length !== size) {
      throw new RangeError(`feature map ${i} has ${map.length} values, expected ${NUM_FRAMES}x${MEL_BANDS}`);
    }
    data.set(map, i * size);
  });
  return tf.tensor4d(data, [list.length, ...FEATURE_SHAPE]);
}
