/**
 * The audio side of a sidecar request: WAV bytes in -> the speaker model's features (plus the samples,
 * kept for resynthesis), and defended features -> WAV bytes out (the model's 1-s clip, or, as the server
 * returns it, a WAV as long as the input). Everything a caller can get wrong is an
 * {@link AudioInputError} with a reason code (the gRPC server maps it to INVALID_ARGUMENT).
 *
 * @module
 */
import {
  DEFAULT_MAX_SECONDS,
  FEATURE_RANGE,
  FEATURE_SHAPE,
  MEL_BANDS,
  MODEL_SAMPLE_RATE,
  NUM_FRAMES,
} from "./config.ts";
import { restoreLength } from "./clip.ts";
import { AudioInputError } from "./errors.ts";
import { featurize } from "./features.ts";
import { resynthesize } from "./resynth.ts";
import { decodeWav, type EncodeOptions, encodeWav } from "./wav.ts";

/** Limits a request's audio must meet. */
export interface AudioRequestLimits {
  /** Longest accepted clip in seconds (default {@link DEFAULT_MAX_SECONDS}). */
  maxSeconds?: number;
  /** Largest accepted WAV in bytes (default {@link DEFAULT_MAX_WAV_BYTES}); checked before parsing. */
  maxBytes?: number;
}

/** Default byte limit: 30 s of 48 kHz stereo 32-bit audio plus headers. */
export const DEFAULT_MAX_WAV_BYTES = 12 * 1024 * 1024;

/** A decoded request, ready for the model. */
export interface AudioModelInput {
  /** Log-mel features, row-major [NUM_FRAMES, MEL_BANDS] (the model's [63, 40, 1] input). */
  features: Float32Array;
  /** Shape of `features` as the model reads it (without batch). */
  shape: [number, number, number];
  /** Mono samples at the model's rate, as decoded (before fitting to the clip); for resynthesis. */
  samples: Float32Array;
}

/**
 * Decodes a WAV request (any PCM/float depth, channels mixed to mono, resampled to the model's rate) and
 * computes the model's features. Throws {@link AudioInputError} for empty, oversized, malformed or too
 * long audio.
 */
export function wavRequestToInput(bytes: Uint8Array, limits: AudioRequestLimits = {}): AudioModelInput {
  if (!(bytes instanceof Uint8Array)) {
    throw new AudioInputError("not-wav", `audio must be bytes (Uint8Array), got ${typeof bytes}`);
  }
  if (bytes.length === 0) throw new AudioInputError("empty", "audio is empty (0 bytes)");
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_WAV_BYTES;
  if (bytes.length > maxBytes) {
    throw new AudioInputError("too-large", `audio is ${bytes.length} bytes; the limit is ${maxBytes}`);
  }
  const decoded = decodeWav(bytes, { maxSeconds: limits.maxSeconds ?? DEFAULT_MAX_SECONDS });
  return { features: featurize(decoded.samples), shape: [...FEATURE_SHAPE], samples: decoded.samples };
}

/** Checks a feature map's size and values; `field` names it in the error. */
export function checkFeatures(features: Float32Array, field = "features"): void {
  const expected = NUM_FRAMES * MEL_BANDS;
  if (!(features instanceof Float32Array) || features.length !== expected) {
    throw new AudioInputError(
      "bad-features",
      `${field} has ${features?.length ?? 0} values, expected ${NUM_FRAMES}x${MEL_BANDS} = ${expected}`,
    );
  }
  for (let i = 0; i < features.length; i++) {
    const v = features[i];
    if (!Number.isFinite(v) || v < FEATURE_RANGE[0] - 1e-3 || v > FEATURE_RANGE[1] + 1e-3) {
      throw new AudioInputError(
        "bad-features",
        `${field}[${i}] (frame ${Math.floor(i / MEL_BANDS)}, band ${i % MEL_BANDS}) is ${v}, ` +
          `outside [${FEATURE_RANGE.join(", ")}]`,
      );
    }
  }
}

/** Options of {@link defendedFeaturesToWav}: the WAV encoding, and whether to keep the input's length. */
export interface DefendedWavOptions extends EncodeOptions {
  /**
   * Return a WAV as long as `samples` (the defended clip put back where the model read it, the rest as
   * sent; see `restoreLength` in `clip.ts`) instead of the 1-s clip. Default false.
   */
  inputLength?: boolean;
}

/**
 * Defended audio out: resynthesizes a waveform from the request's samples and the defended features
 * (original phase, see `resynth.ts`) and encodes it as a WAV at the model's rate (16-bit PCM unless
 * `options` say otherwise). The output is the 1-s clip the model read, or with `inputLength` the whole
 * request's length (what the sidecar returns and forwards).
 */
export function defendedFeaturesToWav(
  samples: Float32Array,
  defendedFeatures: Float32Array,
  options: DefendedWavOptions = {},
): Uint8Array {
  if (!(samples instanceof Float32Array) || samples.length === 0) {
    throw new AudioInputError("empty", "samples for resynthesis are empty");
  }
  checkFeatures(defendedFeatures, "defendedFeatures");
  const clip = resynthesize(samples, defendedFeatures);
  return encodeWav(options.inputLength ? restoreLength(clip, samples) : clip, MODEL_SAMPLE_RATE, options);
}
