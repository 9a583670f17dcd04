/**
 * What the one evaluation harness (`src/eval/harness.ts`) needs to evaluate a speaker model: FSDD
 * validation clips as an evaluation set (log-mel maps for the model, the fitted waveforms as raw signals),
 * and the two places an attacker perturbs:
 * - `spectrogram`: the log-mel map (the paper's setting); waveform stages get the adversarial map
 *   resynthesised with the clean clip's phase (`audio/resynth.ts`);
 * - `waveform`: the sound itself, through the tfjs twin of the front end; success is judged on what the
 *   real front end (meyda) gives the model, and the SNR and 16-bit L_inf of each example are measured.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { getAttack } from "../attacks/mod.ts";
import type { AttackDomain, AttackSpec, EvalSet } from "./harness.ts";
import {
  clipsFromBatch,
  perturbationLinfInt16,
  perturbationSnrDb,
  spectrogramLinfBudget,
  spectrogramTarget,
  waveformBatch,
  waveformLinfBudget,
  waveformTarget,
} from "../attacks/audio_targets.ts";
import { fitToClip } from "../../audio/clip.ts";
import { featuresToTensor, featurize } from "../../audio/features.ts";
import { resynthesize } from "../../audio/resynth.ts";
import { decodeAudioFile } from "../../audio/folder_dataset.ts";

function rows(x: tf.Tensor): Float32Array[] {
  const flat = x.dataSync() as Float32Array;
  const size = flat.length / Math.max(1, x.shape[0]);
  return Array.from({ length: x.shape[0] }, (_, i) => flat.slice(i * size, (i + 1) * size));
}

function signalsOf(set: EvalSet, indices: readonly number[]): Float32Array[] {
  if (!set.signals) throw new RangeError("speaker attacks need the clips' waveforms in the evaluation set");
  return indices.map((i) => set.signals![i]);
}

/** Attacks on the log-mel map; waveform stages get the adversarial map resynthesised with the clean phase. */
export const SPECTROGRAM_DOMAIN: AttackDomain = {
  name: "spectrogram",
  target: (split) => spectrogramTarget(split.model),
  inputs: (set, indices) =>
    tf.tidy(() => set.x.gather(tf.tensor1d(Int32Array.from(indices), "int32"))) as tf.Tensor4D,
  toModel(adversarial, set, indices) {
    const clean = signalsOf(set, indices);
    const maps = rows(adversarial);
    const benign = tf.tidy(() => set.x.gather(tf.tensor1d(Int32Array.from(indices), "int32")));
    const benignMaps = rows(benign);
    benign.dispose();
    return {
      x: adversarial.clone(),
      signals: maps.map((map, i) => resynthesize(clean[i], map)),
      measures: {
        "feature L_inf": maps.map((map, i) =>
          map.reduce((m, v, j) => Math.max(m, Math.abs(v - benignMaps[i][j])), 0)
        ),
      },
    };
  },
};

/** Attacks on the waveform through the front end's tfjs twin; the real front end makes the model's input. */
export const WAVEFORM_DOMAIN: AttackDomain = {
  name: "waveform",
  target: (split) => waveformTarget(split.model),
  inputs: (set, indices) => waveformBatch(signalsOf(set, indices)),
  toModel(adversarial, set, indices) {
    const clean = signalsOf(set, indices);
    const waves = clipsFromBatch(adversarial as tf.Tensor4D);
    return {
      x: featuresToTensor(waves.map((w) => featurize(w))),
      signals: waves,
      measures: {
        "SNR dB": waves.map((w, i) => perturbationSnrDb(clean[i], w)),
        "L_inf 16-bit steps": waves.map((w, i) => perturbationLinfInt16(clean[i], w)),
      },
    };
  },
};

/** The default speaker comparison: FGSM and PGD on the map, PGD on the waveform, two budgets each. */
export const DEFAULT_SPEAKER_ATTACKS: readonly string[] = [
  "spectrogram:fgsm:2",
  "spectrogram:fgsm:6",
  "spectrogram:pgd-linf:2",
  "spectrogram:pgd-linf:4",
  "waveform:pgd-linf:4",
  "waveform:pgd-linf:16",
];

/**
 * Parses `domain:attack:budget` (e.g. `waveform:pgd-linf:8`): budgets are L_inf in dB of mel power on the
 * map, or in 16-bit sample steps on the waveform. Only fixed-epsilon L_inf attacks take such a budget.
 */
export function speakerAttackSpec(text: string, params: Record<string, unknown> = {}): AttackSpec {
  const [domain, name, budget, extra] = text.split(":");
  const value = Number(budget);
  if (extra !== undefined || (domain !== "spectrogram" && domain !== "waveform") || !name) {
    throw new RangeError(`attack "${text}": expected spectrogram|waveform:ATTACK:BUDGET`);
  }
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`attack "${text}": budget must be a positive number (dB or 16-bit steps)`);
  }
  const attack = getAttack(name, params);
  if (attack.norm !== "linf" || attack.mode !== "fixed-epsilon") {
    throw new RangeError(`speaker attack "${name}" must be a fixed-epsilon L_inf attack`);
  }
  return domain === "spectrogram"
    ? { attack, budget: spectrogramLinfBudget(value), domain: SPECTROGRAM_DOMAIN }
    : { attack, budget: waveformLinfBudget(value), domain: WAVEFORM_DOMAIN };
}

/** `n` entries spread evenly over the sorted list (every speaker, digit and take). */
export function spreadEntries<T>(entries: T[], n: number): T[] {
  if (n >= entries.length) return entries;
  return Array.from({ length: n }, (_, i) => entries[Math.floor((i * entries.length) / n)]);
}

/** Decodes recordings (FSDD entries, or a speaker folder's WAV/FLAC files) into an evaluation set: log-mel maps, speakers, and the fitted 1-s clips. */
export async function speakerEvalSet(
  entries: readonly { path: string; label: number }[],
  onProgress?: (done: number, total: number) => void,
): Promise<EvalSet> {
  const clips: Float32Array[] = [];
  for (const [i, entry] of entries.entries()) {
    clips.push(fitToClip((await decodeAudioFile(entry.path)).samples));
    onProgress?.(i + 1, entries.length);
  }
  return {
    x: featuresToTensor(clips.map((c) => featurize(c))),
    labels: Int32Array.from(entries, (e) => e.label),
    signals: clips,
  };
}
