/**
 * The tfjs twin of {@link featurize}: the same log-mel features as a differentiable tfjs graph
 * (framing by slices, Hann window, DFT as two matrix products, meyda's mel bank, `log1p`), so
 * waveform-domain attacks can take gradients through the front end. `test/audio_features_tf_test.ts`
 * holds the twin to meyda.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { CLIP_SAMPLES, FRAME_SIZE, HOP_SIZE, MEL_BANDS, NUM_FRAMES, PCM_SCALE } from "./config.ts";
import { analysisWindow, melFilterBank } from "./features.ts";

/** Frequency bins meyda's melBands reads (it skips the Nyquist bin). */
const BINS = FRAME_SIZE / 2;
/** Hop-sized blocks of the padded clip that the frames read (each frame is two neighbouring blocks). */
const BLOCKS = NUM_FRAMES + 1;
if (FRAME_SIZE !== 2 * HOP_SIZE) throw new Error("features_tf assumes FRAME_SIZE = 2 * HOP_SIZE");

interface TwinConstants {
  windowedCos: tf.Tensor2D;
  windowedSin: tf.Tensor2D;
  melT: tf.Tensor2D;
}

let constants: TwinConstants | null = null;
let constantsBackend = "";

function twinConstants(): TwinConstants {
  if (constants !== null && constantsBackend === tf.getBackend()) return constants;
  if (constants !== null) { for (const t of Object.values(constants)) t.dispose(); }
  const window = analysisWindow();
  const cos = new Float32Array(FRAME_SIZE * BINS);
  const sin = new Float32Array(FRAME_SIZE * BINS);
  for (let n = 0; n < FRAME_SIZE; n++) {
    for (let k = 0; k < BINS; k++) {
      const angle = (2 * Math.PI * ((n * k) % FRAME_SIZE)) / FRAME_SIZE;
      cos[n * BINS + k] = window[n] * PCM_SCALE * Math.cos(angle);
      sin[n * BINS + k] = window[n] * PCM_SCALE * Math.sin(angle);
    }
  }
  const bank = melFilterBank();
  const melT = new Float32Array(BINS * MEL_BANDS);
  for (let k = 0; k < BINS; k++) for (let b = 0; b < MEL_BANDS; b++) melT[k * MEL_BANDS + b] = bank[b][k];
  constants = tf.tidy(() => ({
    windowedCos: tf.keep(tf.tensor2d(cos, [FRAME_SIZE, BINS])),
    windowedSin: tf.keep(tf.tensor2d(sin, [FRAME_SIZE, BINS])),
    melT: tf.keep(tf.tensor2d(melT, [BINS, MEL_BANDS])),
  }));
  constantsBackend = tf.getBackend();
  return constants;
}

/**
 * Differentiable features of a batch of 1-s clips at the model's rate.
 * `clips`: [batch, CLIP_SAMPLES] in [-1, 1] (already fitted with `fitToClip`).
 * Returns [batch, NUM_FRAMES, MEL_BANDS, 1], the model's input.
 */
export function featurizeTensor(clips: tf.Tensor2D): tf.Tensor4D {
  if (clips.shape[1] !== CLIP_SAMPLES) {
    throw new RangeError(`featurizeTensor: clips must be [batch, ${CLIP_SAMPLES}], got [${clips.shape}]`);
  }
  const c = twinConstants();
  return tf.tidy(() => {
    const batch = clips.shape[0];
    // Centred frames of 2 hops: pad by half a frame, cut into hop-sized blocks, join neighbours.
    // (Slices and concat, not gather: gather's gradient needs UnsortedSegmentSum, missing on wasm.)
    const blocks = tf.pad(clips, [[0, 0], [
      FRAME_SIZE / 2,
      BLOCKS * HOP_SIZE - CLIP_SAMPLES - FRAME_SIZE / 2,
    ]])
      .reshape([batch, BLOCKS, HOP_SIZE]);
    const frames = tf.concat([
      blocks.slice([0, 0, 0], [batch, NUM_FRAMES, HOP_SIZE]),
      blocks.slice([0, 1, 0], [batch, NUM_FRAMES, HOP_SIZE]),
    ], 2).reshape([batch * NUM_FRAMES, FRAME_SIZE]);
    const re = tf.matMul(frames, c.windowedCos);
    const im = tf.matMul(frames, c.windowedSin);
    const power = tf.add(tf.square(re), tf.square(im));
    const mel = tf.matMul(power, c.melT);
    return tf.log1p(mel).reshape([batch, NUM_FRAMES, MEL_BANDS, 1]) as tf.Tensor4D;
  });
}

/** Frees the cached constant tensors (for tests that check `tf.memory()` baselines). */
export function disposeFeatureTwin(): void {
  if (constants !== null) { for (const t of Object.values(constants)) t.dispose(); }
  constants = null;
}
