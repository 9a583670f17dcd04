/**
 * `deno task calibrate:speaker`: builds the speaker model's NIP profile from FSDD calibration takes
 * (candidates from takes 15-17, strength picked on takes 18-19) and saves it to `--out` (default
 * `out/profiles/fsdd-speaker`; the committed one is rebuilt with `--out models/fsdd-speaker/profile`).
 *
 *   deno task calibrate:speaker [--model models/fsdd-speaker] [--data ../shared/data/fsdd/train]
 *     [--k1 5] [--k2 5] [--key knn|paper] [--scale paper|rms] [--alpha X | --budget 1] [--out DIR]
 *     [--backend wasm]
 *
 * @module
 */
import { BACKEND_NAMES, initBackend } from "../engine/backend.ts";
import { outputProfileDir } from "../pipeline.ts";
import { choiceFlag, parseFlags, runMain } from "./args.ts";
import { NIP_SETTING_FLAGS, nipSettingsFromFlags, saveAndSummarize } from "./calibrate.ts";
import { createProgress } from "./progress.ts";
import { calibrateSpeakerProfile, FSDD_DIR, SPEAKER_MODEL_DIR } from "../speaker_pipeline.ts";

async function main(): Promise<void> {
  const flags = parseFlags({
    ...NIP_SETTING_FLAGS,
    model: { type: "string", default: SPEAKER_MODEL_DIR },
    data: { type: "string", default: FSDD_DIR },
  });
  const nip = nipSettingsFromFlags(flags);
  await initBackend(choiceFlag("backend", flags.backend, BACKEND_NAMES));
  const progress = createProgress();
  const profile = await calibrateSpeakerProfile({
    modelDir: flags.model,
    dataDir: flags.data,
    ...nip,
    onProgress: (stage, done, total) => progress.update(stage, done, total),
  });
  progress.stop();
  await saveAndSummarize(profile, flags.out ?? outputProfileDir(flags.model));
}

if (import.meta.main) await runMain(main, import.meta.url);
