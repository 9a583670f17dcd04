/**
 * `deno task calibrate:detectors`: fits the named detectors on benign calibration examples and calibrates
 * them and their combination (SPEC.md section 8), then saves the profile with them to `--out` (default
 * `out/profiles/<model name>`; the profile read is left as it was). The three sets
 * (fit, reference, held-out) come from the calibration split after the examples NIP's profile used
 * (its candidates and its strength's held-out examples), so they are disjoint from those and from the test
 * split.
 *
 *   deno task calibrate:detectors [--model models/fashion-lenet] [--profile DIR] [--out DIR]
 *     [--detectors influence,nip-response,squeeze,mahalanobis,input-mahalanobis,knn] [--data fashion-mnist]
 *     [--rule fisher|min] [--fit 2000] [--reference 1000] [--held-out 2000] [--skip N] [--backend wasm]
 *   deno task calibrate:detectors --data fsdd   the speaker model (models/fsdd-speaker) on FSDD's validation
 *     takes 5-9, split into the three sets (at most a third each for fit and reference)
 *
 * @module
 */
import { toTensor } from "../data/dataset.ts";
import { BACKEND_NAMES } from "../engine/backend.ts";
import type { NipProfile } from "../nip/profile.ts";
import { DEFAULT_MODEL_DIR, defaultProfileDir, loadPipeline, outputProfileDir } from "../pipeline.ts";
import { saveProfile } from "../profile_io.ts";
import { calibrateDetection, DETECTION } from "../stages/detection.ts";
import { DETECTOR_NAMES, stageFactory } from "../stages/registry.ts";
import { choiceFlag, listFlag, numberFlag, parseFlags, runMain, UsageError } from "./args.ts";
import { sampleFlag } from "./data_flags.ts";
import { groupSizeOf } from "../data/named_datasets.ts";
import { DETECTION_CALIBRATION_TAKES, isDetectionCalibrationTake, listFsdd } from "../../audio/fsdd.ts";
import { fsddTrainDir } from "../data/shared_data.ts";
import { seededShuffle } from "../data/splits.ts";
import { speakerEvalSet } from "../eval/speech_domains.ts";
import { SPEAKER_MODEL_DIR } from "../speaker_pipeline.ts";

/**
 * Calibration examples NIP's profile used, counted from the start of the seeded calibration order; for a set
 * sampled by groups (GTSRB tracks) up to the end of the held-out examples' last group.
 */
export function examplesUsedByNip(profile: NipProfile, data: string): number {
  const { provenance } = profile;
  if (
    provenance.part !== "calibration" || provenance.data !== data || provenance.candidateDraws === undefined
  ) {
    throw new UsageError(
      `the profile does not say which ${data} calibration examples NIP used (provenance ` +
        `${JSON.stringify(provenance)}); give --skip N so the detectors' sets start after them`,
    );
  }
  return alignUp(Number(provenance.candidateDraws), groupSizeOf(data)) +
    (profile.strengthCalibration?.heldOut ?? 0);
}

function alignUp(n: number, groupSize: number): number {
  return Math.ceil(n / groupSize) * groupSize;
}

/** Counts of the three calibration sets. */
interface SetCounts {
  fit: number;
  reference: number;
  heldOut: number;
}

/** Consecutive sets from the seeded calibration order of an image data set, after `skip` examples. */
async function imageSets(data: string, shape: number[], counts: SetCounts, seed: number, skip: number) {
  const start = skip;
  const draw = async (count: number) => {
    const { dataset: part } = await sampleFlag("data", data, "calibration", count, { shape, seed, skip });
    // Sampling by groups starts each set at a whole group: the next one starts after this one's last group.
    skip = alignUp(skip, groupSizeOf(data)) + count;
    return { x: toTensor(part), labels: part.labels };
  };
  const sets = {
    fit: await draw(counts.fit),
    reference: await draw(counts.reference),
    heldOut: await draw(counts.heldOut),
  };
  return { sets, description: `${data}/calibration, seed ${seed}, after ${start} examples` };
}

/**
 * The three sets from FSDD's detection calibration takes (validation takes 5-9), shuffled with `seed`; the
 * counts are capped so that the sets stay disjoint (the held-out set takes what is left).
 */
async function speakerSets(counts: SetCounts, seed: number) {
  const dir = fsddTrainDir();
  const entries = listFsdd(dir, "validation").filter((e) => isDetectionCalibrationTake(e.take));
  const order = seededShuffle(Int32Array.from(entries.keys()), seed);
  const shuffled = Array.from(order, (i) => entries[i]);
  const fit = Math.min(counts.fit, Math.floor(shuffled.length / 3));
  const reference = Math.min(counts.reference, Math.floor(shuffled.length / 3));
  const heldOut = Math.min(counts.heldOut, shuffled.length - fit - reference);
  const set = async (from: number, count: number) => {
    const { x, labels } = await speakerEvalSet(shuffled.slice(from, from + count));
    return { x, labels };
  };
  const sets = {
    fit: await set(0, fit),
    reference: await set(fit, reference),
    heldOut: await set(fit + reference, heldOut),
  };
  const [first, end] = DETECTION_CALIBRATION_TAKES;
  return { sets, description: `fsdd validation takes ${first}-${end - 1}, shuffled with seed ${seed}` };
}

async function main(): Promise<void> {
  const flags = parseFlags({
    model: { type: "string" },
    profile: { type: "string" },
    out: { type: "string" },
    data: { type: "string", default: "fashion-mnist" },
    detectors: { type: "string", default: DETECTOR_NAMES.join(",") },
    fit: { type: "string", default: "2000" },
    reference: { type: "string", default: "1000" },
    "held-out": { type: "string", default: "2000" },
    skip: { type: "string" },
    rule: { type: "string", default: "fisher" },
    backend: { type: "string", default: "wasm" },
  });
  const names = listFlag("detectors", flags.detectors);
  for (const name of names) {
    if (!DETECTOR_NAMES.includes(name)) {
      throw new UsageError(
        `--detectors: unknown detector "${name}"; expected some of ${DETECTOR_NAMES.join(", ")}`,
      );
    }
  }
  const modelDir = flags.model ?? (flags.data === "fsdd" ? SPEAKER_MODEL_DIR : DEFAULT_MODEL_DIR);
  const profileDir = flags.profile ?? defaultProfileDir(modelDir);
  const loaded = await loadPipeline({
    modelDir,
    profileDir,
    backend: choiceFlag("backend", flags.backend, BACKEND_NAMES),
    defenses: [],
  });
  const seed = Number(loaded.profile.provenance.seed ?? 1);
  const counts = {
    fit: numberFlag("fit", flags.fit, 10),
    reference: numberFlag("reference", flags.reference, 10),
    heldOut: numberFlag("held-out", flags["held-out"], 10),
  };
  const { sets, description } = flags.data === "fsdd" ? await speakerSets(counts, seed) : await imageSets(
    flags.data,
    loaded.split.inputShape,
    counts,
    seed,
    flags.skip === undefined
      ? examplesUsedByNip(loaded.profile, flags.data)
      : numberFlag("skip", flags.skip, 0),
  );
  const started = performance.now();
  try {
    const rule = choiceFlag("rule", flags.rule, ["fisher", "min"] as const);
    const states = calibrateDetection(names.map((n) => stageFactory(n, loaded.modality)), loaded, sets, rule);
    const seconds = (performance.now() - started) / 1000;
    states[DETECTION].meta.seconds = Number(seconds.toFixed(1));
    states[DETECTION].meta.data = description;
    const profile: NipProfile = { ...loaded.profile, stages: { ...loaded.profile.stages, ...states } };
    const out = flags.out ?? outputProfileDir(modelDir);
    await saveProfile(profile, out);
    console.log(JSON.stringify({ profile: out, detectors: names, ...states[DETECTION].meta }, null, 2));
  } finally {
    for (const set of Object.values(sets)) set.x.dispose();
    loaded.defense.dispose();
  }
}

if (import.meta.main) await runMain(main, import.meta.url);
