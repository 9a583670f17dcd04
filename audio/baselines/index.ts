/**
 * The audio baselines NIP is compared with (paper Sec. 6.4.1, Fig. 6): DS, RC, MC, QTZ on the
 * waveform and SS, BDR on the log-mel feature map, each with the paper's default setting scaled to
 * 8 kHz. {@link baselineFeatures} turns a waveform into defended model features for any of them.
 *
 * @module
 */
import { featurize } from "../features.ts";
import { fitToClip } from "../clip.ts";
import { DOWNSAMPLE_DEFAULT_RATE, downsampleDefense } from "./downsample.ts";
import { RANDOM_CROP_DEFAULT_COUNT, randomCrop } from "./random_crop.ts";
import { MP3_DEFAULT_BITRATE, mp3Compression } from "./mp3.ts";
import { QUANTIZE_DEFAULT_STEP, quantizeWaveform } from "./quantize.ts";
import {
  BIT_DEPTH_DEFAULT_BITS,
  bitDepthReduction,
  SMOOTHING_DEFAULT_WINDOW,
  spatialSmoothing,
} from "./spectrogram.ts";

/** One baseline defense. */
export interface AudioBaseline {
  /** Short name as in the paper's Fig. 6. */
  readonly name: "DS" | "RC" | "MC" | "QTZ" | "SS" | "BDR";
  /** What it does, with its setting. */
  readonly description: string;
  /** Whether it transforms the waveform (before the features) or the feature map. */
  readonly domain: "waveform" | "features";
  /** Applies the defense (to samples at the model's rate, or to a feature map). */
  apply(input: Float32Array, random: () => number): Promise<Float32Array>;
}

/** All baselines with their default settings. */
export const AUDIO_BASELINES: readonly AudioBaseline[] = [
  {
    name: "DS",
    description: `down-sample to ${DOWNSAMPLE_DEFAULT_RATE} Hz and back`,
    domain: "waveform",
    apply: (x) => Promise.resolve(downsampleDefense(x)),
  },
  {
    name: "RC",
    description: `delete ${RANDOM_CROP_DEFAULT_COUNT} random samples`,
    domain: "waveform",
    apply: (x, random) => Promise.resolve(randomCrop(x, RANDOM_CROP_DEFAULT_COUNT, random)),
  },
  {
    name: "MC",
    description: `MP3 round trip at ${MP3_DEFAULT_BITRATE} kbit/s`,
    domain: "waveform",
    apply: (x) => mp3Compression(x),
  },
  {
    name: "QTZ",
    description: `round 16-bit samples to multiples of ${QUANTIZE_DEFAULT_STEP}`,
    domain: "waveform",
    apply: (x) => Promise.resolve(quantizeWaveform(x)),
  },
  {
    name: "SS",
    description: `median filter ${SMOOTHING_DEFAULT_WINDOW}x${SMOOTHING_DEFAULT_WINDOW} on the log-mel map`,
    domain: "features",
    apply: (x) => Promise.resolve(spatialSmoothing(x)),
  },
  {
    name: "BDR",
    description: `log-mel map reduced to ${BIT_DEPTH_DEFAULT_BITS} bits`,
    domain: "features",
    apply: (x) => Promise.resolve(bitDepthReduction(x)),
  },
];

/** Looks a baseline up by name; throws listing the valid names. */
export function audioBaseline(name: string): AudioBaseline {
  const found = AUDIO_BASELINES.find((b) => b.name === name.toUpperCase());
  if (!found) {
    throw new RangeError(
      `unknown audio baseline "${name}"; expected one of ${AUDIO_BASELINES.map((b) => b.name)}`,
    );
  }
  return found;
}

/**
 * Defended model features of a waveform (model rate) under `baseline`: waveform baselines run on the
 * fitted clip and are then featurized; feature baselines run on the clip's features.
 */
export async function baselineFeatures(
  baseline: AudioBaseline,
  samples: Float32Array,
  random: () => number = Math.random,
): Promise<Float32Array> {
  const clip = fitToClip(samples);
  return baseline.domain === "waveform"
    ? featurize(await baseline.apply(clip, random))
    : await baseline.apply(featurize(clip), random);
}
