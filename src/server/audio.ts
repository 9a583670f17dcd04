/**
 * The sidecar's audio side: which models read audio, and the WAV front end of the speaker model wired into
 * the server (`audio/request.ts`): WAV bytes -> log-mel features for the model, and defended features ->
 * the defended WAV, resynthesised with the input's phase and put back to the input's length.
 *
 * A model is an audio model when `modality` says so or, with `modality: "auto"`, when its input is exactly
 * what the audio front end produces: shape {@link FEATURE_SHAPE} and range {@link FEATURE_RANGE} (the
 * profile records both; `models/fsdd-speaker` has [63, 40, 1] in [0, 32], image models [h, w, c] in [0, 1]).
 *
 * @module
 */
import { CLIP_SAMPLES, FEATURE_RANGE, FEATURE_SHAPE, MODEL_SAMPLE_RATE } from "../../audio/config.ts";
import { AudioInputError } from "../../audio/errors.ts";
import { checkFeatures, wavRequestToInput } from "../../audio/request.ts";
import { resynthesize } from "../../audio/resynth.ts";
import { encodeWav } from "../../audio/wav.ts";
import type { Modality } from "./config.ts";

/** The audio front end the server runs for an audio model. */
export interface AudioFrontEnd {
  /** Rate WAVs are read at and returned at (Hz). */
  readonly sampleRate: number;
  /** Longest accepted WAV, in seconds. */
  readonly maxSeconds: number;
  /** Feature shape the front end produces, [frames, bands, 1]. */
  readonly shape: readonly [number, number, number];
  /** Range of the feature values. */
  readonly range: readonly [number, number];
  /**
   * WAV bytes -> one example's features (row-major `shape`) and the decoded mono samples at `sampleRate`,
   * kept for resynthesis. Throws {@link AudioInputError} for bytes that are not a usable WAV.
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

/**
 * Start of the window `fitToClip` (audio/clip.ts) keeps of a clip longer than CLIP_SAMPLES: the loudest
 * one, first on ties. Kept identical to it so the defended second goes back where it was read.
 */
function loudestWindowStart(samples: Float32Array, length: number): number {
  let energy = 0;
  for (let i = 0; i < length; i++) energy += samples[i] * samples[i];
  let best = energy;
  let bestStart = 0;
  for (let start = 1; start + length <= samples.length; start++) {
    const leaving = samples[start - 1];
    const entering = samples[start + length - 1];
    energy += entering * entering - leaving * leaving;
    if (energy > best) {
      best = energy;
      bestStart = start;
    }
  }
  return bestStart;
}

/**
 * Puts a resynthesised model clip (CLIP_SAMPLES long) back to the input's length: a shorter input was
 * centred in zeros, so its span is cut out of the clip; a longer one had its loudest second read, so that
 * second is replaced in a copy of the input and the rest passes through as sent.
 */
export function restoreLength(clip: Float32Array, samples: Float32Array): Float32Array {
  if (samples.length <= CLIP_SAMPLES) {
    const start = Math.floor((CLIP_SAMPLES - samples.length) / 2);
    return clip.slice(start, start + samples.length);
  }
  const out = samples.slice();
  out.set(clip, loudestWindowStart(samples, CLIP_SAMPLES));
  return out;
}

/** The speaker model's front end (`audio/request.ts`) with the server's limits. */
export function createSpeakerFrontEnd(options: SpeakerFrontEndOptions): AudioFrontEnd {
  return {
    sampleRate: MODEL_SAMPLE_RATE,
    maxSeconds: options.maxSeconds,
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
      if (samples.length === 0) throw new AudioInputError("empty", "samples for resynthesis are empty");
      checkFeatures(defendedFeatures, "defendedFeatures");
      const clip = resynthesize(samples, defendedFeatures);
      return encodeWav(restoreLength(clip, samples), MODEL_SAMPLE_RATE);
    },
    warmUp() {
      const tone = Float32Array.from({ length: MODEL_SAMPLE_RATE / 2 }, (_, i) => 0.3 * Math.sin(i / 7));
      const { features, samples } = this.decode(encodeWav(tone, MODEL_SAMPLE_RATE));
      this.encode(samples, features);
    },
  };
}

/** Whether a model input is the audio front end's features (shape and range). */
export function readsAudioFeatures(
  shape: readonly number[],
  range: readonly [number, number],
): boolean {
  return shape.length === FEATURE_SHAPE.length && shape.every((d, i) => d === FEATURE_SHAPE[i]) &&
    range[0] === FEATURE_RANGE[0] && range[1] === FEATURE_RANGE[1];
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
