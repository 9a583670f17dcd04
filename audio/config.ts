/**
 * The one definition of the speaker model's audio front end: sample rate, clip length, framing and
 * mel bands. Training, calibration, serving, resynthesis and attacks all read these constants.
 *
 * @module
 */

/** Sample rate the speaker model reads (FSDD is recorded at 8 kHz). */
export const MODEL_SAMPLE_RATE = 8000;

/** Fixed clip duration in samples (1 s): shorter clips are zero-padded, longer ones cropped. */
export const CLIP_SAMPLES = 8000;

/** STFT frame length in samples (32 ms at 8 kHz; a power of two, as meyda requires). */
export const FRAME_SIZE = 256;

/** STFT hop in samples (16 ms at 8 kHz). */
export const HOP_SIZE = 128;

/** Number of mel bands (meyda's triangular filter bank from 0 Hz to Nyquist). */
export const MEL_BANDS = 40;

/**
 * Frames per clip with centred framing (the clip is zero-padded by FRAME_SIZE / 2 on both sides,
 * so frame t is centred on sample t * HOP_SIZE).
 */
export const NUM_FRAMES = 1 + Math.floor(CLIP_SAMPLES / HOP_SIZE);

/**
 * Waveforms are scaled to 16-bit integer units before the power spectrum, so meyda's `log(1 + mel)`
 * puts its floor near the 16-bit quantisation noise instead of flattening quiet speech to zero.
 */
export const PCM_SCALE = 32768;

/**
 * Range of one feature value `ln(1 + mel power)`: 0 for digital silence; the upper bound is above a
 * full-scale frame's total power (Parseval: FRAME_SIZE * sum(w^2) * PCM_SCALE^2 is about 2.6e13).
 */
export const FEATURE_RANGE: readonly [number, number] = [0, 32];

/** Shape of one feature map as the model reads it: [frames, mel bands, 1 channel]. */
export const FEATURE_SHAPE: readonly [number, number, number] = [NUM_FRAMES, MEL_BANDS, 1];

/** Default limit on the decoded duration of an input clip, in seconds. */
export const DEFAULT_MAX_SECONDS = 30;

/** Whether a model input is exactly the front end's features (shape and range): such a model is an audio model. */
export function readsAudioFeatures(shape: readonly number[], range: readonly [number, number]): boolean {
  return shape.length === FEATURE_SHAPE.length && shape.every((d, i) => d === FEATURE_SHAPE[i]) &&
    range[0] === FEATURE_RANGE[0] && range[1] === FEATURE_RANGE[1];
}
