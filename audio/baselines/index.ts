/**
 * The paper's four waveform baselines for speaker recognition (Sec. 6.4.1, App. Table 4) as defense
 * stages of the `signal` domain: DS, RC, MC and QTZ run on the raw waveform before the front end, each
 * with the paper's setting scaled to the model's 8 kHz. {@link audioFrontEnd} turns their output into the
 * model's input. (The feature-map baselines SS and CBDR are the image stages, run on the log-mel map.)
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { DefenseStage, StageFactory } from "../../src/stages/stage.ts";
import { fitToClip } from "../clip.ts";
import { featuresToTensor, featurize } from "../features.ts";
import { DOWNSAMPLE_DEFAULT_RATE, downsampleDefense } from "./downsample.ts";
import { MP3_DEFAULT_BITRATE, mp3Compression } from "./mp3.ts";
import { QUANTIZE_DEFAULT_STEP, quantizeWaveform } from "./quantize.ts";
import { RANDOM_CROP_DEFAULT_COUNT, randomCrop } from "./random_crop.ts";

/** The speaker model's front end for a batch of raw waveforms: fit to the clip, log-mel features. */
export function audioFrontEnd(signals: Float32Array[]): tf.Tensor {
  return featuresToTensor(signals.map((s) => featurize(fitToClip(s))));
}

function waveformStage(
  name: string,
  description: string,
  settings: Record<string, number>,
  apply: (samples: Float32Array, random: () => number) => Float32Array | Promise<Float32Array>,
): DefenseStage {
  return {
    name,
    description,
    settings,
    role: "transform",
    domain: "signal",
    async transformSignals(signals, random) {
      const out: Float32Array[] = [];
      for (const samples of signals) out.push(await apply(samples, random));
      return out;
    },
    dispose() {},
  };
}

/** Builds a waveform stage whose one setting may be overridden (a positive number). */
function waveformFactory(
  name: string,
  summary: string,
  setting: string,
  fallback: number,
  describe: (value: number) => string,
  apply: (
    value: number,
  ) => (samples: Float32Array, random: () => number) => Float32Array | Promise<Float32Array>,
): StageFactory {
  return {
    name,
    summary,
    modalities: ["audio"],
    needsProfile: false,
    create({ overrides = {} }) {
      const raw = overrides[setting];
      const value = raw === undefined ? fallback : Number(raw);
      if (!Number.isFinite(value) || value <= 0) {
        throw new RangeError(`${name}: setting ${setting} = ${raw} must be a positive number`);
      }
      return waveformStage(name, describe(value), { [setting]: value }, apply(value));
    },
  };
}

/** DS, RC, MC, QTZ with the paper's defaults (scaled to the model's rate). */
export const AUDIO_BASELINES: readonly StageFactory[] = [
  waveformFactory(
    "ds",
    "down-sampling: resample to a lower rate and back (Yang et al. 2019)",
    "rate",
    DOWNSAMPLE_DEFAULT_RATE,
    (rate) => `DS: down-sample to ${rate} Hz and back`,
    (rate) => (samples) => downsampleDefense(samples, rate),
  ),
  waveformFactory(
    "rc",
    "random crop: delete random samples of the waveform",
    "count",
    RANDOM_CROP_DEFAULT_COUNT,
    (count) => `RC: delete ${count} random samples`,
    (count) => (samples, random) => randomCrop(samples, count, random),
  ),
  waveformFactory(
    "mc",
    "MP3 compression round trip (Andronic et al. 2020)",
    "bitrate",
    MP3_DEFAULT_BITRATE,
    (bitrate) => `MC: MP3 round trip at ${bitrate} kbit/s`,
    (bitrate) => (samples) => mp3Compression(samples, bitrate),
  ),
  waveformFactory(
    "qtz",
    "quantization of 16-bit samples (Yang et al. 2019)",
    "step",
    QUANTIZE_DEFAULT_STEP,
    (step) => `QTZ: round 16-bit samples to multiples of ${step}`,
    (step) => (samples) => quantizeWaveform(samples, step),
  ),
];
