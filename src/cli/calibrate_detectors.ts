/**
 * `deno task calibrate:detectors`: fits the named detectors on benign calibration examples and calibrates
 * them and their combination (SPEC.md section 8), then saves them into the model's profile. The three sets
 * (fit, reference, held-out) come from the calibration split after the examples NIP's profile used
 * (its candidates and its strength's held-out examples), so they are disjoint from those and from the test
 * split.
 *
 *   deno task calibrate:detectors [--model models/fashion-lenet] [--profile DIR] [--out DIR]
 *     [--detectors influence,nip-response,squeeze,mahalanobis,knn] [--data fashion-mnist]
 *     [--rule fisher|min] [--fit 2000] [--reference 1000] [--held-out 2000] [--skip N] [--backend wasm]
 *
 * @module
 */
import { toTensor } from "../data/dataset.ts";
import { samplePart } from "../data/splits.ts";
import { BACKEND_NAMES } from "../engine/backend.ts";
import type { NipProfile } from "../nip/profile.ts";
import { DEFAULT_MODEL_DIR, defaultProfileDir, loadPipeline } from "../pipeline.ts";
import { saveProfile } from "../profile_io.ts";
import { calibrateDetection, DETECTION } from "../stages/detection.ts";
import { DETECTOR_NAMES, stageFactory } from "../stages/registry.ts";
import { choiceFlag, listFlag, numberFlag, parseFlags, runMain, UsageError } from "./args.ts";
import { loadNamedDataset } from "./datasets.ts";

/** Calibration examples NIP's profile used, counted from the start of the seeded calibration order. */
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
  return Number(provenance.candidateDraws) + (profile.strengthCalibration?.heldOut ?? 0);
}

async function main(): Promise<void> {
  const flags = parseFlags({
    model: { type: "string", default: DEFAULT_MODEL_DIR },
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
  const profileDir = flags.profile ?? defaultProfileDir(flags.model);
  const loaded = await loadPipeline({
    modelDir: flags.model,
    profileDir,
    backend: choiceFlag("backend", flags.backend, BACKEND_NAMES),
    defenses: [],
  });
  const { dataset, split: parts } = await loadNamedDataset(flags.data);
  const seed = Number(loaded.profile.provenance.seed ?? 1);
  let skip = flags.skip === undefined
    ? examplesUsedByNip(loaded.profile, flags.data)
    : numberFlag("skip", flags.skip, 0);
  const draw = (flag: "fit" | "reference" | "held-out") => {
    const count = numberFlag(flag, flags[flag], 10);
    const part = samplePart(dataset, parts, "calibration", count, { seed, skip });
    skip += count;
    return { x: toTensor(part), labels: part.labels };
  };
  const sets = { fit: draw("fit"), reference: draw("reference"), heldOut: draw("held-out") };
  const started = performance.now();
  try {
    const rule = choiceFlag("rule", flags.rule, ["fisher", "min"] as const);
    const states = calibrateDetection(names.map((n) => stageFactory(n, loaded.modality)), loaded, sets, rule);
    const seconds = (performance.now() - started) / 1000;
    states[DETECTION].meta.seconds = Number(seconds.toFixed(1));
    states[DETECTION].meta.data = `${flags.data}/calibration, seed ${seed}, after ${
      skip - sets.fit.labels.length -
      sets.reference.labels.length - sets.heldOut.labels.length
    } examples`;
    const profile: NipProfile = { ...loaded.profile, stages: { ...loaded.profile.stages, ...states } };
    const out = flags.out ?? profileDir;
    await saveProfile(profile, out);
    console.log(JSON.stringify({ profile: out, detectors: names, ...states[DETECTION].meta }, null, 2));
  } finally {
    for (const set of Object.values(sets)) set.x.dispose();
    loaded.defense.dispose();
  }
}

if (import.meta.main) await runMain(main);
