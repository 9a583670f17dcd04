/**
 * NIP on the speaker model: the same core as for images (`src/nip/`), fed with log-mel feature maps.
 * Calibration reads FSDD's calibration takes only (15-19, never trained on, disjoint from validation):
 * candidates come from takes 15-17 and the defense strength is picked on takes 18-19, so the held-out
 * clips share no recording with the candidates (SPEC.md sections 2-3). The input range is the one the
 * attacks and the resynthesis use, {@link FEATURE_RANGE}.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { calibrateProfile } from "./nip/calibrate.ts";
import type { DefensePipeline, PipelineOutcome } from "./stages/pipeline.ts";
import type { NipProfile } from "./nip/profile.ts";
import type { NipSettings, SplitModel } from "./nip/types.ts";
import { loadPipeline, loadSplitModel, type Pipeline } from "./pipeline.ts";
import type { BackendName } from "./engine/backend.ts";
import { FEATURE_RANGE, FEATURE_SHAPE } from "../audio/config.ts";
import { featuresToTensor } from "../audio/features.ts";
import { type FsddEntry, listFsdd, loadFsddFeatures } from "../audio/fsdd.ts";
import { SPEAKER_NIP_LAYER } from "./models/speaker_model.ts";
import { fsddTrainDir } from "./data/shared_data.ts";

/** The committed speaker model. */
export const SPEAKER_MODEL_DIR = new URL("../models/fsdd-speaker", import.meta.url).pathname;

/** Where the speaker model's committed profile lives. */
export const SPEAKER_PROFILE_DIR = new URL("../models/fsdd-speaker/profile", import.meta.url).pathname;

/** The shared FSDD recordings (takes 5-49). */
export const FSDD_DIR = fsddTrainDir();

/** Calibration takes that give candidates (inclusive range). */
export const CANDIDATE_TAKES: readonly [number, number] = [15, 17];

/** Calibration takes on which the strength is picked (inclusive range, disjoint from the candidates). */
export const HELD_OUT_TAKES: readonly [number, number] = [18, 19];

/** The speaker model's input range as the front end defines it: `ln(1 + mel power)` in [0, 32]. */
export function speakerInputRange(): [number, number] {
  return [FEATURE_RANGE[0], FEATURE_RANGE[1]];
}

/** FSDD calibration-split entries whose take lies in `takes` (inclusive). */
export function fsddTakes(dir: string, takes: readonly [number, number]): FsddEntry[] {
  return listFsdd(dir, "calibration").filter((e) => e.take >= takes[0] && e.take <= takes[1]);
}

/** Options of {@link calibrateSpeakerProfile}. */
export interface SpeakerCalibrationOptions {
  modelDir?: string;
  dataDir?: string;
  /** NIP settings (defaults of the core: k1 = k2 = 5, knn keys, paper scale rule). */
  settings?: Partial<NipSettings>;
  /** Allowed benign-accuracy loss in percentage points when picking the strength (default 1). */
  budgetPoints?: number;
  /** A fixed strength instead of picking it on the held-out takes. */
  strength?: number;
  /** Takes for candidates / for the strength (defaults {@link CANDIDATE_TAKES}, {@link HELD_OUT_TAKES}). */
  candidateTakes?: readonly [number, number];
  heldOutTakes?: readonly [number, number];
  onProgress?: (stage: string, done: number, total: number) => void;
}

function overlaps(a: readonly [number, number], b: readonly [number, number]): boolean {
  return a[0] <= b[1] && b[0] <= a[1];
}

/**
 * Builds the speaker model's NIP profile from FSDD calibration takes: candidates from
 * `candidateTakes` with their true labels, strength picked on `heldOutTakes` (unless `strength` is
 * given). The model is loaded and disposed here; the profile records its hash.
 */
export async function calibrateSpeakerProfile(options: SpeakerCalibrationOptions = {}): Promise<NipProfile> {
  const modelDir = options.modelDir ?? SPEAKER_MODEL_DIR;
  const dataDir = options.dataDir ?? FSDD_DIR;
  const candidateTakes = options.candidateTakes ?? CANDIDATE_TAKES;
  const heldOutTakes = options.heldOutTakes ?? HELD_OUT_TAKES;
  if (overlaps(candidateTakes, heldOutTakes)) {
    throw new RangeError(
      `candidate takes ${candidateTakes.join("-")} and held-out takes ${heldOutTakes.join("-")} overlap`,
    );
  }
  const { split, hash } = await loadSplitModel(modelDir, {
    layerName: SPEAKER_NIP_LAYER,
    inputRange: speakerInputRange(),
  });
  try {
    const candidateEntries = fsddTakes(dataDir, candidateTakes);
    if (candidateEntries.length === 0) {
      throw new RangeError(`${dataDir}: no FSDD recordings with takes ${candidateTakes.join("-")}`);
    }
    const candidates = await loadFsddFeatures(
      candidateEntries,
      (d, t) => options.onProgress?.("features (candidates)", d, t),
    );
    const heldOut = options.strength === undefined
      ? await loadFsddFeatures(
        fsddTakes(dataDir, heldOutTakes),
        (d, t) => options.onProgress?.("features (held out)", d, t),
      )
      : undefined;
    const x = featuresToTensor(candidates.features);
    const heldOutX = heldOut ? featuresToTensor(heldOut.features) : undefined;
    try {
      return calibrateProfile(
        split,
        { x, labels: candidates.labels },
        heldOut && heldOutX ? { x: heldOutX, labels: heldOut.labels } : undefined,
        {
          settings: options.settings,
          modelHash: hash,
          strength: options.strength,
          budgetPoints: options.budgetPoints,
          onProgress: (done, total) => options.onProgress?.("candidates", done, total),
          onStrengthProgress: (done, total) => options.onProgress?.("strength", done, total),
          provenance: {
            data: "FSDD",
            part: `calibration takes ${candidateTakes.join("-")}`,
            candidateDraws: candidateEntries.length,
            features: `log-mel ${FEATURE_SHAPE.join("x")}, range [${FEATURE_RANGE.join(", ")}]`,
            ...(heldOut
              ? { heldOut: `calibration takes ${heldOutTakes.join("-")} (${heldOut.labels.length} clips)` }
              : {}),
          },
        },
      );
    } finally {
      tf.dispose([x, heldOutX].filter((t) => t !== undefined));
    }
  } finally {
    disposeSplitModel(split);
  }
}

/**
 * Frees a split model's weights. The head re-applies the layers after the split point in a second
 * model, which holds its own reference to them, so both the whole model and the head are disposed
 * (the body shares the whole model's input and holds none of its own).
 */
export function disposeSplitModel(split: SplitModel): void {
  split.model.dispose();
  split.head.dispose();
}

/** Loads the speaker model with its profile and the named defenses (default NIP), in the features' input range. */
export function loadSpeakerPipeline(
  options: { modelDir?: string; profileDir?: string; backend?: BackendName; defenses?: string[] } = {},
): Promise<Pipeline> {
  const modelDir = options.modelDir ?? SPEAKER_MODEL_DIR;
  return loadPipeline({
    modelDir,
    profileDir: options.profileDir ?? `${modelDir}/profile`,
    backend: options.backend,
    defenses: options.defenses,
    inputRange: speakerInputRange(),
  });
}

/** Outcome of {@link defendSpeakerFeatures}, as plain arrays. */
export interface SpeakerDefenseResult {
  /** Defended feature maps, [NUM_FRAMES * MEL_BANDS] each. */
  defended: Float32Array[];
  labelsBefore: Int32Array;
  labelsAfter: Int32Array;
  /** Per-example details of each stage, by stage name. */
  details: PipelineOutcome["details"];
}

/** Defends feature maps from `featurize` (no label used) and returns the defended maps and verdicts. */
export function defendSpeakerFeatures(
  pipeline: DefensePipeline,
  features: Float32Array[],
): SpeakerDefenseResult {
  const x = featuresToTensor(features);
  const outcome = pipeline.run(x);
  const flat = outcome.defended.dataSync() as Float32Array;
  tf.dispose([x, outcome.defended]);
  const size = flat.length / features.length;
  return {
    defended: features.map((_, i) => flat.slice(i * size, (i + 1) * size)),
    labelsBefore: outcome.labelsBefore,
    labelsAfter: outcome.labelsAfter!,
    details: outcome.details,
  };
}
