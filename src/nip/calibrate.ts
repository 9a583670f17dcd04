/**
 * The preparation stage (SPEC.md section 2): from benign, correctly classified calibration examples,
 * build the template, one candidate `{rho, key}` per example, and the profile.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  neuronInfluence,
  neuronOutputs,
  type NeuronPartition,
  partitionRows,
  predictLabels,
} from "./neurons.ts";
import { neuronTemplate } from "./template.ts";
import { knnKeyNeurons, knnKeys, paperDelta } from "./keys.ts";
import { frontTailSigns, inversePerturbations } from "./inverse.ts";
import type { NipProfile } from "./profile.ts";
import { NipDefense } from "./defense.ts";
import { calibrateStrength } from "./strength.ts";
import type { NipSettings, SplitModel } from "./types.ts";
import { concatArrays } from "../arrays.ts";

/** Defaults of the paper and of SPEC.md: k1 = k2 = 5, knn keys, Eq. 8 scaling with alpha = 1. */
export const DEFAULT_SETTINGS: NipSettings = {
  k1: 5,
  k2: 5,
  keyMode: "knn",
  scaleRule: "paper",
  alpha: 1,
  rmsStep: 0.001,
  scoreKind: "probs",
};

/** Reports calibration progress: examples done out of total, and candidates kept so far. */
export type ProgressCallback = (done: number, total: number, kept: number) => void;

/** Options of {@link buildProfile}. */
export interface CalibrationOptions {
  settings?: Partial<NipSettings>;
  modelHash: string;
  batchSize?: number;
  onProgress?: ProgressCallback;
  provenance?: Record<string, string | number>;
}

/** One batch of candidate material: partitions, neuron outputs `phi` [n, a] and raw `rho`. */
export interface CandidateParts {
  partitions: NeuronPartition[];
  phi: Float32Array;
  rho: Float32Array;
}

/**
 * Partitions, `phi` and the inverse perturbation of each example of `x`, with influence taken for the
 * given labels. Calibration passes true labels of correctly classified examples (so label = prediction);
 * the paper-oracle protocol passes the true labels of benign twins.
 */
export function candidateParts(
  split: SplitModel,
  x: tf.Tensor,
  labels: Int32Array,
  settings: Pick<NipSettings, "k1" | "k2">,
): CandidateParts {
  const layerOutput = tf.tidy(() => split.body.apply(x, { training: false }) as tf.Tensor);
  const [influence, phi] = tf.tidy(() => [
    neuronInfluence(split.head, layerOutput, tf.tensor1d(labels, "int32")),
    neuronOutputs(layerOutput),
  ]);
  const a = influence.shape[1] as number;
  const partitions = partitionRows(influence.dataSync() as Float32Array, a, settings.k1, settings.k2);
  const rho = tf.tidy(() =>
    inversePerturbations(split.body, x, tf.tensor2d(frontTailSigns(partitions, a), [labels.length, a]))
  );
  const parts = { partitions, phi: phi.dataSync() as Float32Array, rho: rho.dataSync() as Float32Array };
  tf.dispose([layerOutput, influence, phi, rho]);
  return parts;
}

interface BatchCandidates extends CandidateParts {
  labels: Int32Array;
}

function candidatesOfBatch(
  split: SplitModel,
  x: tf.Tensor,
  labels: Int32Array,
  settings: NipSettings,
): BatchCandidates {
  const predicted = predictLabels(split.model, x);
  const keep = Int32Array.from(labels.keys()).filter((i) => predicted[i] === labels[i]);
  const keptLabels = Int32Array.from(keep, (i) => labels[i]);
  if (keep.length === 0) {
    return { partitions: [], phi: new Float32Array(0), rho: new Float32Array(0), labels: keptLabels };
  }
  const keptX = tf.tidy(() => x.gather(tf.tensor1d(keep, "int32")));
  const parts = candidateParts(split, keptX, keptLabels, settings);
  keptX.dispose();
  return { ...parts, labels: keptLabels };
}

/**
 * Builds a profile from benign calibration examples `x` with their true labels. Examples the model
 * misclassifies are skipped (SPEC.md section 2). The strength is `settings.alpha` / `rmsStep` as given;
 * `calibrateStrength` picks it on held-out examples afterwards.
 */
export function buildProfile(
  split: SplitModel,
  x: tf.Tensor,
  labels: Int32Array,
  options: CalibrationOptions,
): NipProfile {
  const settings = { ...DEFAULT_SETTINGS, ...options.settings };
  const batchSize = options.batchSize ?? 64;
  const total = x.shape[0];
  const batches: BatchCandidates[] = [];
  let kept = 0;
  for (let start = 0; start < total; start += batchSize) {
    const size = Math.min(batchSize, total - start);
    const batch = x.slice(start, size);
    batches.push(candidatesOfBatch(split, batch, labels.subarray(start, start + size), settings));
    batch.dispose();
    kept += batches[batches.length - 1].labels.length;
    options.onProgress?.(start + size, total, kept);
  }
  if (kept === 0) {
    throw new RangeError("no calibration example is classified correctly: cannot build candidates");
  }
  const layerShape = split.body.outputs[0].shape.slice(1) as number[];
  const neuronCount = layerShape[layerShape.length - 1];
  const partitions = batches.flatMap((b) => b.partitions);
  const template = neuronTemplate(partitions, neuronCount);
  const keyNeurons = knnKeyNeurons(template, neuronCount);
  const phi = concatArrays(batches.map((b) => b.phi), (n) => new Float32Array(n));
  const keys = knnKeys(phi, neuronCount, keyNeurons);
  return {
    modelHash: options.modelHash,
    layerName: split.layerName,
    neuronCount,
    layerShape,
    inputShape: split.inputShape,
    inputRange: split.inputRange,
    settings,
    template,
    keyNeurons,
    candidateCount: kept,
    rho: concatArrays(batches.map((b) => b.rho), (n) => new Float32Array(n)),
    keys,
    deltas: Float32Array.from(partitions, (p) => paperDelta(p, template)),
    frontTail: Int32Array.from(partitions.flatMap((p) => [...p.front, ...p.tail])),
    candidateLabels: concatArrays(batches.map((b) => b.labels), (n) => new Int32Array(n)),
    provenance: { calibrationExamples: total, ...options.provenance },
  };
}

/** Sets the profile's strength: `alpha` for the paper scale rule, the step for the rms rule. */
export function setStrength(profile: NipProfile, strength: number): void {
  if (profile.settings.scaleRule === "paper") profile.settings.alpha = strength;
  else profile.settings.rmsStep = strength;
}

/** Options of {@link calibrateProfile}: those of {@link buildProfile}, plus how to set the strength. */
export interface FullCalibrationOptions extends CalibrationOptions {
  /** A fixed strength; when absent it is picked on `heldOut` (required then). */
  strength?: number;
  /** Allowed benign-accuracy loss in percentage points when picking the strength (default 1). */
  budgetPoints?: number;
  /** Reports the strength search's progress. */
  onStrengthProgress?: (done: number, total: number) => void;
}

/**
 * The whole preparation stage: candidates from `candidates`, then the strength, fixed or picked on the
 * held-out benign examples (disjoint from the candidates: the caller's split guarantees it), recorded in
 * the profile together with the calibration time and throughput.
 */
export function calibrateProfile(
  split: SplitModel,
  candidates: { x: tf.Tensor; labels: Int32Array },
  heldOut: { x: tf.Tensor; labels: Int32Array } | undefined,
  options: FullCalibrationOptions,
): NipProfile {
  const started = performance.now();
  const profile = buildProfile(split, candidates.x, candidates.labels, options);
  const seconds = (performance.now() - started) / 1000;
  profile.provenance.calibrationSeconds = Number(seconds.toFixed(2));
  profile.provenance.candidatesPerSecond = Number((candidates.labels.length / seconds).toFixed(1));
  if (options.strength !== undefined) {
    setStrength(profile, options.strength);
    return profile;
  }
  if (!heldOut) {
    throw new RangeError("picking the strength needs held-out benign examples, or give a fixed strength");
  }
  const defense = new NipDefense(split, profile);
  try {
    profile.strengthCalibration = calibrateStrength(defense, heldOut.x, heldOut.labels, {
      budgetPoints: options.budgetPoints ?? 1,
      onProgress: options.onStrengthProgress,
    });
  } finally {
    defense.dispose();
  }
  setStrength(profile, profile.strengthCalibration.chosen);
  return profile;
}
