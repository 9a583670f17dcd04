/**
 * Attacks on the speaker model, with budgets stated in the input's own units:
 * - on the log-mel feature map (the paper's setting): {@link spectrogramTarget}, budgets in dB of mel
 *   power ({@link spectrogramLinfFromDb});
 * - on the waveform (the attacker controls the sound): {@link waveformTarget} runs the tfjs feature twin
 *   inside the scores, budgets as L_inf in 16-bit sample units ({@link waveformLinfBudget}) or as an
 *   L2 norm for a signal-to-noise ratio in dB ({@link waveformSnrBudget}).
 *
 * @module
 */
import { outputsProbabilities } from "../engine/outputs.ts";
import * as tf from "@tensorflow/tfjs";
import type { ModelPart } from "../nip/types.ts";
import type { AttackBudget, AttackTarget } from "./types.ts";
import { CLIP_SAMPLES, FEATURE_RANGE, PCM_SCALE } from "../../audio/config.ts";
import { featurizeTensor } from "../../audio/features_tf.ts";

/** Input range of waveform targets: samples in [-1, 1]. */
export const WAVEFORM_RANGE: [number, number] = [-1, 1];

/** Waveform L_inf budget (input units) for a bound of `units` 16-bit steps, e.g. 64 -> 64/32768. */
export function int16ToWaveform(units: number): number {
  return units / PCM_SCALE;
}

/** L2 norm of a perturbation that sits `snrDb` below `clip` (`||clip|| * 10^(-snr/20)`). */
export function l2ForSnr(clip: Float32Array, snrDb: number): number {
  let energy = 0;
  for (const v of clip) energy += v * v;
  return Math.sqrt(energy) * Math.pow(10, -snrDb / 20);
}

/** Signal-to-perturbation ratio in dB of `adversarial` against `clean` (Infinity when identical). */
export function perturbationSnrDb(clean: Float32Array, adversarial: Float32Array): number {
  let signal = 0;
  let noise = 0;
  for (let i = 0; i < clean.length; i++) {
    signal += clean[i] ** 2;
    noise += (adversarial[i] - clean[i]) ** 2;
  }
  return noise === 0 ? Infinity : 10 * Math.log10(signal / noise);
}

/** Largest sample change between two waveforms, in 16-bit steps. */
export function perturbationLinfInt16(clean: Float32Array, adversarial: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < clean.length; i++) worst = Math.max(worst, Math.abs(adversarial[i] - clean[i]));
  return worst * PCM_SCALE;
}

/** An L_inf waveform budget of `units` 16-bit steps, labelled with its units. */
export function waveformLinfBudget(units: number): AttackBudget {
  return {
    epsilon: int16ToWaveform(units),
    label: `waveform L_inf ${units}/32768 (16-bit steps)`,
    source: "custom",
  };
}

/**
 * An L2 waveform budget for a perturbation `snrDb` below `clip`. The bound depends on the clip's
 * energy, so it is per clip: attack clips one at a time (or group clips of similar energy).
 */
export function waveformSnrBudget(clip: Float32Array, snrDb: number): AttackBudget {
  return { epsilon: l2ForSnr(clip, snrDb), label: `waveform L2 at SNR ${snrDb} dB`, source: "custom" };
}

/**
 * Feature-map L_inf for a change of `db` decibels of mel power: features are `ln(1 + mel)`, so
 * `db` dB is `ln(10) * db / 10` natural-log units (exact where mel power is far above 1).
 */
export function spectrogramLinfFromDb(db: number): number {
  return (Math.LN10 * db) / 10;
}

/** An L_inf budget on the log-mel map of `db` dB of mel power. */
export function spectrogramLinfBudget(db: number): AttackBudget {
  return { epsilon: spectrogramLinfFromDb(db), label: `log-mel L_inf ${db} dB`, source: "custom" };
}

function scoreKindOf(model: ModelPart): "probs" | "logits" {
  return outputsProbabilities(model) ? "probs" : "logits";
}

/** Attack target over the feature map: inputs [batch, frames, bands, 1] in FEATURE_RANGE. */
export function spectrogramTarget(model: ModelPart): AttackTarget {
  return {
    scores: (x) => model.apply(x, { training: false }) as tf.Tensor2D,
    inputRange: [FEATURE_RANGE[0], FEATURE_RANGE[1]],
    scoreKind: scoreKindOf(model),
    differentiable: true,
  };
}

/**
 * Attack target over the waveform: inputs [batch, 1, CLIP_SAMPLES, 1] (rank 4, as the attack library
 * expects; see {@link waveformBatch}) in [-1, 1]; scores = model(featurizeTensor(x)).
 */
export function waveformTarget(model: ModelPart): AttackTarget {
  return {
    scores: (x) =>
      tf.tidy(() => {
        const features = featurizeTensor(x.reshape([x.shape[0], CLIP_SAMPLES]) as tf.Tensor2D);
        return model.apply(features, { training: false }) as tf.Tensor2D;
      }),
    inputRange: [...WAVEFORM_RANGE],
    scoreKind: scoreKindOf(model),
    differentiable: true,
  };
}

/** Stacks fitted clips into a waveform batch [batch, 1, CLIP_SAMPLES, 1]. */
export function waveformBatch(clips: Float32Array[]): tf.Tensor4D {
  const data = new Float32Array(clips.length * CLIP_SAMPLES);
  clips.forEach((clip, i) => {
    if (clip.length !== CLIP_SAMPLES) {
      throw new RangeError(`clip ${i} has ${clip.length} samples, expected ${CLIP_SAMPLES}`);
    }
    data.set(clip, i * CLIP_SAMPLES);
  });
  return tf.tensor4d(data, [clips.length, 1, CLIP_SAMPLES, 1]);
}

/** Splits a waveform batch back into clips. */
export function clipsFromBatch(batch: tf.Tensor4D): Float32Array[] {
  const data = batch.dataSync() as Float32Array;
  return Array.from(
    { length: batch.shape[0] },
    (_, i) => data.slice(i * CLIP_SAMPLES, (i + 1) * CLIP_SAMPLES),
  );
}
