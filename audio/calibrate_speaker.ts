/**
 * `deno task calibrate:speaker`: builds the speaker model's NIP profile from FSDD calibration takes
 * (candidates from takes 15-17, strength picked on takes 18-19) and saves it next to the model.
 *
 *   deno task calibrate:speaker [--model models/fsdd-speaker] [--data ../shared/data/fsdd/train]
 *     [--k1 5] [--k2 5] [--key knn|paper] [--scale paper|rms] [--alpha X | --budget 1] [--out DIR]
 *     [--backend wasm]
 *
 * @module
 */
import { BACKEND_NAMES, initBackend } from "../src/engine/backend.ts";
import { keyUsesAllNeurons } from "../src/nip/profile.ts";
import { saveProfile } from "../src/profile_io.ts";
import { choiceFlag, numberFlag, parseFlags, runMain } from "../src/cli/args.ts";
import { createProgress } from "../src/cli/progress.ts";
import { calibrateSpeakerProfile, FSDD_DIR, SPEAKER_MODEL_DIR } from "./nip_speaker.ts";

async function main(): Promise<void> {
  const flags = parseFlags({
    model: { type: "string", default: SPEAKER_MODEL_DIR },
    data: { type: "string", default: FSDD_DIR },
    k1: { type: "string", default: "5" },
    k2: { type: "string", default: "5" },
    key: { type: "string", default: "knn" },
    scale: { type: "string", default: "paper" },
    alpha: { type: "string" },
    budget: { type: "string", default: "1" },
    out: { type: "string" },
    backend: { type: "string", default: "wasm" },
  });
  await initBackend(choiceFlag("backend", flags.backend, BACKEND_NAMES));
  const progress = createProgress();
  const profile = await calibrateSpeakerProfile({
    modelDir: flags.model,
    dataDir: flags.data,
    settings: {
      k1: numberFlag("k1", flags.k1, 0),
      k2: numberFlag("k2", flags.k2, 0),
      keyMode: choiceFlag("key", flags.key, ["knn", "paper"] as const),
      scaleRule: choiceFlag("scale", flags.scale, ["paper", "rms"] as const),
    },
    budgetPoints: numberFlag("budget", flags.budget, 0),
    strength: flags.alpha === undefined ? undefined : numberFlag("alpha", flags.alpha, 0),
    onProgress: (stage, done, total) => progress.update(stage, done, total),
  });
  progress.stop();
  const out = flags.out ?? `${flags.model}/profile`;
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
}

if (import.meta.main) await runMain(main);
