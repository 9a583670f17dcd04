/**
 * The sidecar's audio side: which models read audio, and the WAV front end of the speaker model wired into
 * the server (`audio/request.ts`): WAV bytes -> log-mel features for the model, and defended features ->
 * the defended WAV, resynthesised with the input's phase and put back to the input's length
 * (`restoreLength` in `audio/clip.ts`).
 *
 * A model is an audio model when `modality` says so or, with `modality: "auto"`, when its input is exactly
 * what the audio front end produces: shape {@link FEATURE_SHAPE} and range {@link FEATURE_RANGE} (the
 * profile records both; `models/fsdd-speaker` has [63, 40, 1] in [0, 32], image models [h, w, c] in [0, 1]).
 *
 * @module
 */
import { FEATURE_RANGE, FEATURE_SHAPE, MODEL_SAMPLE_RATE, readsAudioFeatures } from "../../audio/config.ts";
import { defendedFeaturesToWav, wavRequestToInput } from "../../audio/request.ts";
import { encodeWav } from "../../audio/wav.ts";
import type { Modality } from "./config.ts";

/** The audio front end the server runs for an audio model. */
export interface AudioFrontEnd {
  /** Rate WAVs are read at and returned at (Hz). */
  readonly sampleRate: number;
  /** Longest accepted WAV, in seconds. */
  readonly maxSeconds: number;
  /** Largest accepted WAV, in bytes. */
  readonly maxBytes: number;
  /** Feature shape the front end produces, [frames, bands, 1]. */
  readonly shape: readonly [number, number, number];
  /** Range of the feature values. */
  readonly range: readonly [number, number];
  /**
   * WAV bytes -> one example's features (row-major `shape`) and the decoded mono samples at `sampleRate`,
   * kept for resynthesis. Throws `AudioInputError` (`audio/errors.ts`) for bytes that are not a usable WAV.
   */
  decode(wav: Uint8Array): { features: Float32Array; samples: Float32Array };
  /** Defended features + the request's samples -> the defended WAV (16-bit PCM, the input's length). */
  encode(samples: Float32Array, defendedFeatures: Float32Array): Uint8Array;
  /** Runs one decode and one encode so the first request does not pay for JIT and table set-up. */
  warmUp(): void;
}

/** Limits of {@link createSpeakerFrontEnd}. */
export interface SpeakerFrontEndOptions {
  /** Longest accepted WAV in seconds. */
  maxSeconds: number;
  /** Largest accepted WAV in bytes. */
  maxBytes: number;
}

/** The speaker model's front end (`audio/request.ts`) with the server's limits. */
export function createSpeakerFrontEnd(options: SpeakerFrontEndOptions): AudioFrontEnd {
  return {
    sampleRate: MODEL_SAMPLE_RATE,
    maxSeconds: options.maxSeconds,
    maxBytes: options.maxBytes,
    shape: FEATURE_SHAPE,
    range: FEATURE_RANGE,
    decode(wav) {
      const { features, samples } = wavRequestToInput(wav, {
        maxSeconds: options.maxSeconds,
        maxBytes: options.maxBytes,
      });
      return { features, samples };
    },
    encode(samples, defendedFeatures) {
      return defendedFeaturesToWav(samples, defendedFeatures, { inputLength: true });
    },
    warmUp() {
      const tone = Float32Array.from({ length: MODEL_SAMPLE_RATE / 2 }, (_, i) => 0.3 * Math.sin(i / 7));
      const { features, samples } = this.decode(encodeWav(tone, MODEL_SAMPLE_RATE));
      this.encode(samples, features);
    },
  };
}

/**
 * The modality a model is served with. "auto" -> audio when the model reads the audio front end's
 * features; "audio" on a model that does not throws, naming what it reads and what the front end gives.
 */
export function resolveModality(
  configured: Modality,
  model: { name: string; inputShape: readonly number[]; inputRange: readonly [number, number] },
): "image" | "audio" {
  const audio = readsAudioFeatures(model.inputShape, model.inputRange);
  if (configured === "auto") return audio ? "audio" : "image";
  if (configured === "audio" && !audio) {
    throw new Error(
      `modality audio: model ${model.name} reads [${model.inputShape}] in [${model.inputRange}], ` +
        `but the audio front end gives [${FEATURE_SHAPE}] in [${FEATURE_RANGE}]`,
    );
  }
  return configured;
}
