/**
 * `deno task calibrate`: builds a NIP profile for a model from benign calibration examples, picks the
 * defense strength on held-out calibration examples (disjoint from the candidates), and saves it.
 *
 *   deno task calibrate [--model models/fashion-lenet] [--data fashion-mnist] [--candidates 1000]
 *     [--held-out 1000] [--layer NAME] [--k1 5] [--k2 5] [--key knn|paper] [--scale paper|rms]
 *     [--alpha X | --budget 1] [--out DIR] [--backend wasm]
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { BACKEND_NAMES, initBackend } from "../engine/backend.ts";
import { toTensor } from "../data/dataset.ts";
import { buildProfile } from "../nip/calibrate.ts";
import { NipDefense } from "../nip/defense.ts";
import { calibrateStrength } from "../nip/strength.ts";
import { keyUsesAllNeurons } from "../nip/profile.ts";
import { saveProfile } from "../profile_io.ts";
import { DEFAULT_MODEL_DIR, defaultProfileDir, loadSplitModel } from "../pipeline.ts";
import { choiceFlag, numberFlag, parseFlags, runMain } from "./args.ts";
import { loadNamedDataset, samplePart } from "./datasets.ts";
import { createProgress } from "./progress.ts";

async function main(): Promise<void> {
  const flags = parseFlags({
    model: { type: "string", default: DEFAULT_MODEL_DIR },
    data: { type: "string", default: "fashion-mnist" },
    candidates: { type: "string", default: "1000" },
    "held-out": { type: "string", default: "1000" },
    layer: { type: "string" },
    k1: { type: "string", default: "5" },
    k2: { type: "string", default: "5" },
    key: { type: "string", default: "knn" },
    scale: { type: "string", default: "paper" },
    alpha: { type: "string" },
    budget: { type: "string", default: "1" },
    out: { type: "string" },
    backend: { type: "string", default: "wasm" },
    seed: { type: "string", default: "1" },
  });
  const candidateCount = numberFlag("candidates", flags.candidates, 1);
  const heldOutCount = flags.alpha === undefined ? numberFlag("held-out", flags["held-out"], 1) : 0;
  const scaleRule = choiceFlag("scale", flags.scale, ["paper", "rms"] as const);
  const settings = {
    k1: numberFlag("k1", flags.k1, 0),
    k2: numberFlag("k2", flags.k2, 0),
    keyMode: choiceFlag("key", flags.key, ["knn", "paper"] as const),
    scaleRule,
  };
  await initBackend(choiceFlag("backend", flags.backend, BACKEND_NAMES));
  const { split, hash } = await loadSplitModel(flags.model, { layerName: flags.layer });
  const { dataset, split: parts } = await loadNamedDataset(flags.data);
  const seed = numberFlag("seed", flags.seed);
  const calibration = samplePart(dataset, parts, "calibration", candidateCount, { seed });
  const progress = createProgress();
  const started = performance.now();
  const x = toTensor(calibration);
  const profile = buildProfile(split, x, calibration.labels, {
    settings,
    modelHash: hash,
    onProgress: (done, total) => progress.update("candidates", done, total),
    provenance: { data: flags.data, part: "calibration", seed, candidateDraws: candidateCount },
  });
  x.dispose();
  const calibrationSeconds = (performance.now() - started) / 1000;
  progress.stop();
  profile.provenance.calibrationSeconds = Number(calibrationSeconds.toFixed(2));
  profile.provenance.candidatesPerSecond = Number((candidateCount / calibrationSeconds).toFixed(1));

  if (flags.alpha !== undefined) {
    const strength = numberFlag("alpha", flags.alpha, 0);
    if (scaleRule === "paper") profile.settings.alpha = strength;
    else profile.settings.rmsStep = strength;
  } else {
    const heldOut = samplePart(dataset, parts, "calibration", heldOutCount, { seed, skip: candidateCount });
    const defense = new NipDefense(split, profile);
    const heldOutX = toTensor(heldOut);
    profile.strengthCalibration = calibrateStrength(defense, heldOutX, heldOut.labels, {
      budgetPoints: numberFlag("budget", flags.budget, 0),
      onProgress: (done, total) => progress.update("strength", done, total),
    });
    progress.stop();
    tf.dispose(heldOutX);
    defense.dispose();
    if (scaleRule === "paper") profile.settings.alpha = profile.strengthCalibration.chosen;
    else profile.settings.rmsStep = profile.strengthCalibration.chosen;
  }
  const out = flags.out ?? defaultProfileDir(flags.model);
  await saveProfile(profile, out);
  const summary = {
    profile: out,
    layer: profile.layerName,
    neurons: profile.neuronCount,
    candidates: profile.candidateCount,
    template: profile.template.length,
    keyUsesAllNeurons: keyUsesAllNeurons(profile),
    settings: profile.settings,
    strengthCalibration: profile.strengthCalibration,
    calibrationSeconds: profile.provenance.calibrationSeconds,
    candidatesPerSecond: profile.provenance.candidatesPerSecond,
  };
  console.log(JSON.stringify(summary, null, 2));
}

if (import.meta.main) await runMain(main);
