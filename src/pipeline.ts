/**
 * Loads what the server, the CLI and the evaluation share: a model from disk, split at its layer, with a
 * calibration profile checked against the model's hash, as a ready {@link NipDefense}.
 *
 * @module
 */
import { basename, join } from "node:path";
import { type BackendName, initBackend } from "./engine/backend.ts";
import { loadLayersModel, modelHash } from "./engine/model_io.ts";
import { splitModel } from "./engine/split.ts";
import { NipDefense } from "./nip/defense.ts";
import type { NipProfile } from "./nip/profile.ts";
import type { ScaleRule, SplitModel } from "./nip/types.ts";
import { loadProfile } from "./profile_io.ts";

/** The embedded default model directory. */
export const DEFAULT_MODEL_DIR = "models/fashion-lenet";

/** Profile directory used when none is given: `<modelDir>/profile`. */
export function defaultProfileDir(modelDir: string): string {
  return join(modelDir, "profile");
}

/** A loaded model, its profile and the defense built from both. */
export interface Pipeline {
  split: SplitModel;
  profile: NipProfile;
  defense: NipDefense;
  /** Name of the model directory, e.g. "fashion-lenet". */
  modelName: string;
  modelHash: string;
}

/** Options of {@link loadPipeline}. */
export interface PipelineOptions {
  modelDir?: string;
  profileDir?: string;
  backend?: BackendName;
  /** Overrides the profile's scale rule. */
  scaleRule?: ScaleRule;
  /** Overrides the profile's strength (`alpha` or rms step). */
  strength?: number;
  /** Input range of the model (default [0, 1]). */
  inputRange?: [number, number];
}

/** Loads a model directory and splits it at its default (or the named) layer. */
export async function loadSplitModel(
  modelDir: string,
  options: { layerName?: string; inputRange?: [number, number] } = {},
): Promise<{ split: SplitModel; hash: string }> {
  const model = await loadLayersModel(modelDir);
  const hash = await modelHash(modelDir);
  return { split: splitModel(model, options), hash };
}

/** Loads model + profile and builds the defense; the profile must match the model (hash and layer). */
export async function loadPipeline(options: PipelineOptions = {}): Promise<Pipeline> {
  await initBackend(options.backend ?? "wasm");
  const modelDir = options.modelDir ?? DEFAULT_MODEL_DIR;
  const profileDir = options.profileDir ?? defaultProfileDir(modelDir);
  const model = await loadLayersModel(modelDir);
  const hash = await modelHash(modelDir);
  const profile = await loadProfile(profileDir, hash);
  const split = splitModel(model, {
    layerName: profile.layerName,
    inputRange: options.inputRange ?? profile.inputRange,
  });
  const defense = new NipDefense(split, profile, {
    scaleRule: options.scaleRule,
    strength: options.strength,
  });
  return { split, profile, defense, modelName: basename(modelDir), modelHash: hash };
}
