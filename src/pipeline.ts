/**
 * Loads what the server, the CLI and the evaluation share: a model from disk, split at its layer, with a
 * calibration profile checked against the model's hash, and the defense pipeline named by stage names
 * (default: NIP alone).
 *
 * @module
 */
import { basename, join } from "node:path";
import { readsAudioFeatures } from "../audio/config.ts";
import { type BackendName, initBackend } from "./engine/backend.ts";
import { loadGraphModel, loadLayersModel, modelFormat, modelHash, readModelJson } from "./engine/model_io.ts";
import { splitGraphModel } from "./engine/graph_split.ts";
import { type Preprocessing, withPreprocessing } from "./engine/preprocess.ts";
import { splitModel } from "./engine/split.ts";
import type { NipProfile } from "./nip/profile.ts";
import type { SplitModel } from "./nip/types.ts";
import { loadProfile } from "./profile_io.ts";
import { DefensePipeline } from "./stages/pipeline.ts";
import { DETECTION } from "./stages/detection.ts";
import type { Policy } from "./stages/policy.ts";
import { buildStages } from "./stages/registry.ts";
import type { StageModality, StageSettings } from "./stages/stage.ts";

/** The embedded default model directory. */
export const DEFAULT_MODEL_DIR = "models/fashion-lenet";

/** The defense a pipeline runs when none is named. */
export const DEFAULT_DEFENSES: readonly string[] = ["nip"];

/** Profile directory used when none is given: `<modelDir>/profile`. */
export function defaultProfileDir(modelDir: string): string {
  return join(modelDir, "profile");
}

/**
 * Where the calibration tasks write a profile unless `--out` says otherwise: `out/profiles/<model name>`,
 * never into the model's folder, which they were only given to read.
 */
export function outputProfileDir(modelDir: string): string {
  return join("out", "profiles", basename(modelDir));
}

/** A loaded model, its profile and the defense pipeline built over both. */
export interface Pipeline {
  split: SplitModel;
  profile: NipProfile;
  /** `audio` when the model reads the audio front end's features, else `image`. */
  modality: StageModality;
  /** The defense pipeline in force. */
  defense: DefensePipeline;
  /** Name of the model directory, e.g. "fashion-lenet". */
  modelName: string;
  modelHash: string;
  /** The settings per stage name the pipeline was built with (the server builds its certifier with them). */
  overrides?: Record<string, StageSettings>;
}

/** Options of {@link loadPipeline}. */
export interface PipelineOptions {
  modelDir?: string;
  profileDir?: string;
  backend?: BackendName;
  /**
   * Stage names in order (default {@link DEFAULT_DEFENSES}); "auto": the detection before NIP when the
   * profile has detector calibration, else NIP alone.
   */
  defenses?: readonly string[] | "auto";
  /**
   * The policy the pipeline carries; "auto" (default): `flag` when it detects, else `smoothed` when a stage
   * answers (smoothing), else `defend`.
   */
  policy?: Policy | "auto";
  /** The alpha inputs are flagged at (default 0.05). */
  alpha?: number;
  /** Settings per stage name, e.g. `{ nip: { strength: 0.5 } }`. */
  overrides?: Record<string, StageSettings>;
  /** Input range of the model (default: the profile's). */
  inputRange?: [number, number];
}

/**
 * Loads a model directory, a LayersModel or a GraphModel (the format most converted TensorFlow models come
 * in), and splits it at its default (or the named) layer or graph node, with the model's preprocessing
 * (`engine/preprocess.ts`) in front. A wrong name is a SplitError listing the candidates.
 */
export async function loadSplitModel(
  modelDir: string,
  options: { layerName?: string; inputRange?: [number, number]; preprocessing?: Preprocessing } = {},
): Promise<{ split: SplitModel; hash: string }> {
  return { split: await splitFromDir(modelDir, options), hash: await modelHash(modelDir) };
}

async function splitFromDir(
  modelDir: string,
  options: { layerName?: string; inputRange?: [number, number]; preprocessing?: Preprocessing },
): Promise<SplitModel> {
  if (await modelFormat(modelDir) === "graph-model") {
    const graph = await loadGraphModel(modelDir);
    try {
      const split = splitGraphModel(graph, await readModelJson(modelDir), {
        nodeName: options.layerName,
        inputRange: options.inputRange,
      });
      return withPreprocessing(split, options.preprocessing);
    } catch (error) {
      graph.dispose();
      throw error;
    }
  }
  const split = splitModel(await loadLayersModel(modelDir), options);
  return withPreprocessing(split, options.preprocessing);
}

/** The modality of a split model: audio when it reads the audio front end's features. */
export function modalityOf(split: Pick<SplitModel, "inputShape" | "inputRange">): StageModality {
  return readsAudioFeatures(split.inputShape, split.inputRange) ? "audio" : "image";
}

/** Loads model + profile (which must match the model's hash) and builds the named defense pipeline. */
export async function loadPipeline(options: PipelineOptions = {}): Promise<Pipeline> {
  await initBackend(options.backend ?? "wasm");
  const modelDir = options.modelDir ?? DEFAULT_MODEL_DIR;
  const profileDir = options.profileDir ?? defaultProfileDir(modelDir);
  // The hash reads every weight file: once, for the profile check and the pipeline's record.
  const hash = await modelHash(modelDir);
  const profile = await loadProfile(profileDir, hash);
  const split = await splitFromDir(modelDir, {
    layerName: profile.layerName,
    inputRange: options.inputRange ?? profile.inputRange,
    preprocessing: profile.preprocessing,
  });
  const modality = modalityOf(split);
  const names = options.defenses === "auto"
    ? (profile.stages?.[DETECTION] ? [DETECTION, ...DEFAULT_DEFENSES] : DEFAULT_DEFENSES)
    : options.defenses ?? DEFAULT_DEFENSES;
  const stages = buildStages(names, { split, profile, modality, overrides: options.overrides });
  const detects = names.includes(DETECTION);
  const answers = stages.some((stage) => stage.role === "answer");
  const policy = options.policy === undefined || options.policy === "auto"
    ? (detects ? "flag" : answers ? "smoothed" : "defend")
    : options.policy;
  let defense: DefensePipeline;
  try {
    defense = new DefensePipeline(split, stages, policy, options.alpha);
  } catch (error) {
    stages.forEach((stage) => stage.dispose());
    throw error;
  }
  return {
    split,
    profile,
    modality,
    defense,
    modelName: basename(modelDir),
    modelHash: hash,
    overrides: options.overrides,
  };
}
