/**
 * `deno task calibrate`: builds a NIP profile for a model from benign calibration examples, picks the
 * defense strength on held-out calibration examples (disjoint from the candidates), and saves it to `--out`
 * (default `out/profiles/<model name>`; never into the model's folder unless `--out` names it: the embedded
 * default's profile is rebuilt with `--out models/fashion-lenet/profile`).
 *
 *   deno task calibrate [--model models/fashion-lenet] [--data fashion-mnist | --calibration SOURCE] [--candidates 1000]
 *     [--held-out 1000] [--layer NAME] [--k1 5] [--k2 5] [--key knn|paper] [--scale paper|rms]
 *     [--alpha X | --budget 1] [--out DIR] [--backend wasm]
 *     [--input-range 0,255] [--mean 0.485,0.456,0.406 --std 0.229,0.224,0.225]   what the model expects of a
 *       [0, 1] image (range, per-channel normalisation); kept in the profile for every later task
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { BACKEND_NAMES, initBackend } from "../engine/backend.ts";
import { toTensor } from "../data/dataset.ts";
import { calibrateProfile } from "../nip/calibrate.ts";
import { keyUsesAllNeurons, type NipProfile } from "../nip/profile.ts";
import type { NipSettings } from "../nip/types.ts";
import { saveProfile } from "../profile_io.ts";
import { DEFAULT_MODEL_DIR, loadSplitModel, outputProfileDir } from "../pipeline.ts";
import {
  choiceFlag,
  numberFlag,
  parseFlags,
  PREPROCESSING_FLAGS,
  preprocessingFromFlags,
  runMain,
} from "./args.ts";
import { sampleFlag } from "./data_flags.ts";
import { createProgress } from "./progress.ts";

/** The NIP flags every calibration task takes. */
export const NIP_SETTING_FLAGS = {
  k1: { type: "string", default: "5" },
  k2: { type: "string", default: "5" },
  key: { type: "string", default: "knn" },
  scale: { type: "string", default: "paper" },
  alpha: { type: "string" },
  budget: { type: "string", default: "1" },
  out: { type: "string" },
  backend: { type: "string", default: "wasm" },
} as const;

/** Reads {@link NIP_SETTING_FLAGS}: the settings, a fixed strength if `--alpha` is given, the budget. */
export function nipSettingsFromFlags(
  flags: { k1: string; k2: string; key: string; scale: string; alpha?: string; budget: string },
): { settings: Partial<NipSettings>; strength?: number; budgetPoints: number } {
  return {
    settings: {
      k1: numberFlag("k1", flags.k1, 0),
      k2: numberFlag("k2", flags.k2, 0),
      keyMode: choiceFlag("key", flags.key, ["knn", "paper"] as const),
      scaleRule: choiceFlag("scale", flags.scale, ["paper", "rms"] as const),
    },
    strength: flags.alpha === undefined ? undefined : numberFlag("alpha", flags.alpha, 0),
    budgetPoints: numberFlag("budget", flags.budget, 0),
  };
}

/** Saves a profile and prints what a user checks first: layer, candidates, template, strength. */
export async function saveAndSummarize(profile: NipProfile, out: string): Promise<void> {
  await saveProfile(profile, out);
  console.log(JSON.stringify(
    {
      profile: out,
      layer: profile.layerName,
      neurons: profile.neuronCount,
      candidates: profile.candidateCount,
      template: profile.template.length,
      keyUsesAllNeurons: keyUsesAllNeurons(profile),
      settings: profile.settings,
      strengthCalibration: profile.strengthCalibration,
      provenance: profile.provenance,
    },
    null,
    2,
  ));
  const strength = profile.strengthCalibration;
  if (strength) {
    console.error(
      `strength ${strength.chosen} picked on ${strength.heldOut} held-out examples: a budget of ` +
        `${strength.budgetPoints} points allows ${strength.budgetExamples} of them to be lost ` +
        `(bare accuracy ${(strength.bareAccuracy * 100).toFixed(1)}%)`,
    );
  }
}

async function main(): Promise<void> {
  const flags = parseFlags({
    ...NIP_SETTING_FLAGS,
    model: { type: "string", default: DEFAULT_MODEL_DIR },
    data: { type: "string", default: "fashion-mnist" },
    calibration: { type: "string" },
    candidates: { type: "string", default: "1000" },
    "held-out": { type: "string", default: "1000" },
    layer: { type: "string" },
    seed: { type: "string", default: "1" },
    ...PREPROCESSING_FLAGS,
  });
  const preprocessing = preprocessingFromFlags(flags);
  const candidateCount = numberFlag("candidates", flags.candidates, 1);
  const nip = nipSettingsFromFlags(flags);
  const seed = numberFlag("seed", flags.seed);
  await initBackend(choiceFlag("backend", flags.backend, BACKEND_NAMES));
  const { split, hash } = await loadSplitModel(flags.model, { layerName: flags.layer, preprocessing });
  const source = flags.calibration ?? flags.data;
  const flag = flags.calibration === undefined ? "data" : "calibration";
  const sample = (count: number, skip: number) =>
    sampleFlag(flag, source, "calibration", count, { shape: split.inputShape, seed, skip });
  const { dataset: calibration, description } = await sample(candidateCount, 0);
  console.error(`calibration examples: ${description}`);
  const heldOut = nip.strength === undefined
    ? (await sample(numberFlag("held-out", flags["held-out"], 1), candidateCount)).dataset
    : undefined;
  const progress = createProgress();
  const x = toTensor(calibration);
  const heldOutX = heldOut ? toTensor(heldOut) : undefined;
  const profile = calibrateProfile(
    split,
    { x, labels: calibration.labels },
    heldOut && heldOutX ? { x: heldOutX, labels: heldOut.labels } : undefined,
    {
      ...nip,
      modelHash: hash,
      onProgress: (done, total) => progress.update("candidates", done, total),
      onStrengthProgress: (done, total) => progress.update("strength", done, total),
      provenance: { data: source, part: "calibration", seed, candidateDraws: candidateCount },
    },
  );
  progress.stop();
  tf.dispose([x, heldOutX].filter((t) => t !== undefined));
  await saveAndSummarize(
    preprocessing === undefined ? profile : { ...profile, preprocessing },
    flags.out ?? outputProfileDir(flags.model),
  );
}

if (import.meta.main) await runMain(main, import.meta.url);
