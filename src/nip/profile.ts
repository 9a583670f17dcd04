/**
 * The calibration profile (SPEC.md section 2, step 3) and its I/O-free binary form: a JSON manifest
 * plus one byte buffer holding the tensors. Reading and writing files lives in `src/profile_io.ts`.
 *
 * @module
 */
import type { NipSettings } from "./types.ts";

/** How the defense strength was chosen on held-out benign examples (SPEC.md section 3). */
export interface StrengthCalibration {
  /** Allowed benign-accuracy loss, in percentage points. */
  budgetPoints: number;
  /** Held-out benign examples used (disjoint from the candidates). */
  heldOut: number;
  /** How many of those examples the budget allows to be lost: floor(budgetPoints x heldOut / 100). */
  budgetExamples?: number;
  /** Benign accuracy of the bare model on them. */
  bareAccuracy: number;
  /** Accuracy after defense for each strength tried. */
  tried: { strength: number; accuracy: number }[];
  /** The strength chosen (largest within budget). */
  chosen: number;
}

/**
 * The fitted state of one defense stage other than NIP (a detector, say), stored with the profile so it is
 * refused against another model: plain values and typed arrays.
 */
export interface ProfileStageState {
  meta: Record<string, number | string | boolean | number[]>;
  arrays: Record<string, Float32Array | Int32Array>;
}

/** Everything the test stage needs, produced from benign calibration examples only. */
export interface NipProfile {
  /** sha256 of the model files; a profile refuses to load against another model. */
  modelHash: string;
  layerName: string;
  /** Neurons `a` in the chosen layer. */
  neuronCount: number;
  /** Shape of the chosen layer's output without batch (e.g. [256] or [7, 7, 64]). */
  layerShape: number[];
  inputShape: number[];
  inputRange: [number, number];
  /**
   * What the model expects of a [0, 1] image (range, per-channel mean / std); absent: the image itself.
   * Recorded at calibration so every task and the server feed the model alike (`engine/preprocess.ts`).
   */
  preprocessing?: { range?: [number, number]; mean?: number[]; std?: number[] };
  settings: NipSettings;
  /** Template `T`, ascending neuron indices. */
  template: Int32Array;
  /** Neurons the knn key reads: `T`, or all neurons when `|T| < 16`. */
  keyNeurons: Int32Array;
  /** Number of candidates `m`. */
  candidateCount: number;
  /** Raw inverse perturbations `rho`, row-major [m, ...inputShape]. */
  rho: Float32Array;
  /** Unit-length knn keys, row-major [m, keyNeurons.length]. */
  keys: Float32Array;
  /** Paper-mode scalar keys `delta`, [m]. */
  deltas: Float32Array;
  /** Each candidate's front then tail neuron indices, row-major [m, k1 + k2] (for NIP_n). */
  frontTail: Int32Array;
  /** Label of each candidate's calibration example. */
  candidateLabels: Int32Array;
  /** How the strength (`alpha` or the rms step) was picked; absent when set by hand. */
  strengthCalibration?: StrengthCalibration;
  /** Free-form provenance: data set, split, counts, timings. */
  provenance: Record<string, string | number>;
  /** Fitted state of other stages by stage name (detectors), fitted on benign examples only. */
  stages?: Record<string, ProfileStageState>;
}

/** True when the knn key falls back to all neurons because the template is too small. */
export function keyUsesAllNeurons(profile: NipProfile): boolean {
  return profile.keyNeurons.length !== profile.template.length;
}

type ArrayField = "template" | "keyNeurons" | "rho" | "keys" | "deltas" | "frontTail" | "candidateLabels";
const ARRAY_FIELDS: readonly ArrayField[] = [
  "template",
  "keyNeurons",
  "rho",
  "keys",
  "deltas",
  "frontTail",
  "candidateLabels",
];

/** One typed array's place in the profile's byte buffer. */
export interface BufferEntry<Name extends string = ArrayField> {
  name: Name;
  dtype: "float32" | "int32";
  byteOffset: number;
  length: number;
}

/** A stage state in the manifest: its plain values, and where its arrays lie in the byte buffer. */
export interface StageStateEntry {
  meta: ProfileStageState["meta"];
  buffers: BufferEntry<string>[];
}

/** The JSON half of an encoded profile. */
export interface ProfileManifest {
  format: "nip-profile/1";
  meta: Omit<NipProfile, ArrayField | "stages">;
  buffers: BufferEntry[];
  /** Absent in profiles without fitted stages. */
  stages?: Record<string, StageStateEntry>;
}

/** Raised when an encoded profile is malformed or belongs to another model. */
export class ProfileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProfileError";
  }
}

/** Lays typed arrays out one after another from `byteOffset`; returns their entries and the end. */
function layOut<Name extends string>(
  arrays: [Name, Float32Array | Int32Array][],
  byteOffset: number,
): { entries: BufferEntry<Name>[]; end: number } {
  const entries = arrays.map(([name, array]) => {
    const entry: BufferEntry<Name> = {
      name,
      dtype: array instanceof Float32Array ? "float32" : "int32",
      byteOffset,
      length: array.length,
    };
    byteOffset += array.byteLength;
    return entry;
  });
  return { entries, end: byteOffset };
}

/** Encodes a profile as a manifest plus one little-endian byte buffer (NIP's arrays, then each stage's). */
export function encodeProfile(profile: NipProfile): { manifest: ProfileManifest; data: Uint8Array } {
  const nip = layOut(ARRAY_FIELDS.map((name) => [name, profile[name]]), 0);
  const stages: Record<string, StageStateEntry> = {};
  const placed: [BufferEntry<string>, Float32Array | Int32Array][] = nip.entries.map((
    e,
  ) => [e, profile[e.name]]);
  let end = nip.end;
  for (const [stage, state] of Object.entries(profile.stages ?? {})) {
    const laid = layOut(Object.entries(state.arrays), end);
    stages[stage] = { meta: state.meta, buffers: laid.entries };
    laid.entries.forEach((e) => placed.push([e, state.arrays[e.name]]));
    end = laid.end;
  }
  const data = new Uint8Array(end);
  for (const [entry, array] of placed) {
    data.set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength), entry.byteOffset);
  }
  const meta = Object.fromEntries(
    Object.entries(profile).filter(([key]) =>
      !(ARRAY_FIELDS as readonly string[]).includes(key) && key !== "stages"
    ),
  ) as Omit<NipProfile, ArrayField | "stages">;
  const manifest: ProfileManifest = { format: "nip-profile/1", meta, buffers: nip.entries };
  if (Object.keys(stages).length > 0) manifest.stages = stages;
  return { manifest, data };
}

/** The typed array an entry points at, copied out of `data`; bounds checked, errors name the array. */
function readBuffer(entry: BufferEntry<string>, data: Uint8Array, label: string): Float32Array | Int32Array {
  const byteLength = entry.length * 4;
  if (entry.byteOffset < 0 || entry.byteOffset + byteLength > data.byteLength) {
    throw new ProfileError(
      `profile buffer "${label}" needs bytes ${entry.byteOffset}..${
        entry.byteOffset + byteLength
      } but the data has ${data.byteLength}`,
    );
  }
  const copy = data.slice(entry.byteOffset, entry.byteOffset + byteLength).buffer;
  return entry.dtype === "float32" ? new Float32Array(copy) : new Int32Array(copy);
}

/** Decodes {@link encodeProfile}'s output, checking every buffer's bounds and the shapes that depend on each other. */
export function decodeProfile(manifest: ProfileManifest, data: Uint8Array): NipProfile {
  if (manifest.format !== "nip-profile/1") {
    throw new ProfileError(`unknown profile format "${manifest.format}" (expected nip-profile/1)`);
  }
  const arrays: Partial<Record<ArrayField, Float32Array | Int32Array>> = {};
  for (const name of ARRAY_FIELDS) {
    const entry = manifest.buffers.find((b) => b.name === name);
    if (!entry) throw new ProfileError(`profile manifest has no buffer "${name}"`);
    arrays[name] = readBuffer(entry, data, name);
  }
  const profile = { ...manifest.meta, ...arrays } as NipProfile;
  if (manifest.stages) {
    profile.stages = Object.fromEntries(
      Object.entries(manifest.stages).map(([stage, entry]) => [stage, {
        meta: entry.meta,
        arrays: Object.fromEntries(
          entry.buffers.map((b) => [b.name, readBuffer(b, data, `${stage}.${b.name}`)]),
        ),
      }]),
    );
  }
  const m = profile.candidateCount;
  const inputSize = profile.inputShape.reduce((a, b) => a * b, 1);
  const expected: [ArrayField, number][] = [
    ["rho", m * inputSize],
    ["keys", m * profile.keyNeurons.length],
    ["deltas", m],
    ["frontTail", m * (profile.settings.k1 + profile.settings.k2)],
    ["candidateLabels", m],
  ];
  for (const [name, length] of expected) {
    if (profile[name].length !== length) {
      throw new ProfileError(
        `profile buffer "${name}" has ${profile[name].length} values, expected ${length}`,
      );
    }
  }
  return profile;
}
