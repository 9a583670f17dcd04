/**
 * Trained denoisers as a stage's state in the model's profile: the smoothing stage's state holds one
 * architecture and any number of denoisers, each trained at one noise level with one objective and named
 * `<objective>-<sigma>` (e.g. `stability-0.25`). The profile's model hash ties them to the classifier
 * they were trained for (the stability objective differentiates through it). Free of I/O.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { denoiserFromWeights, type DenoiserSpec, denoiserWeightCount } from "../models/denoiser.ts";
import type { StageState } from "../stages/stage.ts";

/** The training objectives: MSE to the clean input (query access) or stability through the model (full). */
export const DENOISER_OBJECTIVES = ["mse", "stability"] as const;

/** One of {@link DENOISER_OBJECTIVES}. */
export type DenoiserObjective = typeof DENOISER_OBJECTIVES[number];

/** How one stored denoiser was trained, as written into its state. */
export interface DenoiserRecord {
  sigma: number;
  objective: DenoiserObjective;
  epochs: number;
  trainImages: number;
  seconds: number;
  /** Mean training loss of the last epoch. */
  finalLoss: number;
  /** The denoiser it started from (`none` for a fresh one). */
  initialisedFrom: string;
}

/** The name a denoiser is stored under, e.g. `stability-0.25`. */
export function denoiserName(objective: DenoiserObjective, sigma: number): string {
  return `${objective}-${sigma}`;
}

/** Names of the denoisers in a state (none when the state is absent). */
export function denoiserNames(state: StageState | undefined): string[] {
  const list = state?.meta.denoisers;
  return typeof list === "string" && list.length > 0 ? list.split(",") : [];
}

/** The architecture stored in a state. */
export function storedSpec(state: StageState): DenoiserSpec {
  const shape = state.meta.inputShape;
  const filters = state.meta.filters;
  const layers = state.meta.layers;
  if (
    !Array.isArray(shape) || shape.length !== 3 || typeof filters !== "number" || typeof layers !== "number"
  ) {
    throw new RangeError("smoothing state: no denoiser architecture (inputShape, filters, layers)");
  }
  return { inputShape: shape as [number, number, number], filters, layers };
}

/** How a stored denoiser was trained. */
export function denoiserRecord(state: StageState, name: string): DenoiserRecord {
  const field = (key: string) => state.meta[`${name}.${key}`];
  if (!denoiserNames(state).includes(name)) {
    throw new RangeError(
      `no denoiser "${name}" in the profile (it has: ${denoiserNames(state).join(", ") || "none"}); ` +
        "train one with `deno task train:denoiser`",
    );
  }
  return {
    sigma: Number(field("sigma")),
    objective: String(field("objective")) as DenoiserObjective,
    epochs: Number(field("epochs")),
    trainImages: Number(field("trainImages")),
    seconds: Number(field("seconds")),
    finalLoss: Number(field("finalLoss")),
    initialisedFrom: String(field("initialisedFrom")),
  };
}

/** A new state: `state` (or an empty one) with the denoiser `weights` stored under its name, replacing one of that name. */
export function withDenoiser(
  state: StageState | undefined,
  spec: DenoiserSpec,
  record: DenoiserRecord,
  weights: Float32Array,
): StageState {
  if (weights.length !== denoiserWeightCount(spec)) {
    throw new RangeError(
      `denoiser weights: ${weights.length}, architecture needs ${denoiserWeightCount(spec)}`,
    );
  }
  if (state && denoiserNames(state).length > 0) {
    const stored = storedSpec(state);
    if (JSON.stringify(stored) !== JSON.stringify(spec)) {
      throw new RangeError(
        `the profile's denoisers have architecture ${JSON.stringify(stored)}, this one ${
          JSON.stringify(spec)
        }`,
      );
    }
  }
  const name = denoiserName(record.objective, record.sigma);
  const names = [...new Set([...denoiserNames(state), name])];
  const meta: StageState["meta"] = {
    ...state?.meta,
    inputShape: [...spec.inputShape],
    filters: spec.filters,
    layers: spec.layers,
    denoisers: names.join(","),
  };
  for (const [key, value] of Object.entries(record)) meta[`${name}.${key}`] = value;
  return { meta, arrays: { ...state?.arrays, [name]: weights } };
}

/** Builds the stored denoiser `name` (the caller disposes it). */
export function loadDenoiser(state: StageState, name: string): tf.LayersModel {
  denoiserRecord(state, name);
  const weights = state.arrays[name];
  if (!(weights instanceof Float32Array)) throw new RangeError(`denoiser "${name}": weights missing`);
  return denoiserFromWeights(storedSpec(state), weights);
}
