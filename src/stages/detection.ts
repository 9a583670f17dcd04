/**
 * Detection with a guaranteed false-positive rate (SPEC.md section 8): several detectors (scoring stages)
 * combined into one statistic that is calibrated as a whole. Calibration takes three disjoint sets of
 * benign examples: `fit` fits each detector; `reference` gives each detector's benign score distribution,
 * against which an input's per-detector p-values are read and combined by Fisher's statistic; `heldOut`
 * calibrates each detector's own conformal p-value and the combined statistic's. The combined p-value then
 * bounds the false-positive rate on exchangeable benign inputs by `alpha`, whatever the detectors'
 * dependence. Every member's score and p-value is reported beside the combination. Free of I/O.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { forwardAtLayer } from "../nip/neurons.ts";
import type { NipProfile } from "../nip/profile.ts";
import type { SplitModel } from "../nip/types.ts";
import { mulberry32 } from "../random.ts";
import {
  conformalPValues,
  fisherStatistic,
  minPStatistic,
  smoothNegLogPValue,
  sortedAscending,
} from "./conformal.ts";
import type { BenignExamples, DefenseStage, StageFactory, StageInput, StageState } from "./stage.ts";

/** Name of the detection stage, and of its state in the profile. */
export const DETECTION = "detect";

/**
 * How the members' reference p-values become one statistic: `fisher` pools the evidence
 * (`-2 sum ln p_j`), `min` follows the strongest member (`-ln min p_j`). Either is calibrated as a whole.
 */
export type CombinationRule = "fisher" | "min";

/** The statistic of each rule. */
const COMBINATIONS: Record<CombinationRule, (pValues: readonly Float32Array[]) => Float32Array> = {
  fisher: fisherStatistic,
  min: minPStatistic,
};

/** Each rule's statistic from the members' `-ln p` [n] (differentiable, for the adaptive attacks). */
const SURROGATE_COMBINATIONS: Record<CombinationRule, (negLogP: tf.Tensor1D[]) => tf.Tensor1D> = {
  fisher: (negLogP) => tf.addN(negLogP).mul(2),
  min: (negLogP) => tf.stack(negLogP, 1).max(1),
};

/** Benign calibration sets, disjoint from each other, from NIP's candidates and from every test set. */
export interface DetectionSets {
  fit: BenignExamples;
  reference: BenignExamples;
  heldOut: BenignExamples;
}

/** Scores of a scoring stage on a set, in batches, with the shared forward computed per batch. */
export function stageScores(
  split: SplitModel,
  stage: DefenseStage,
  x: tf.Tensor,
  batchSize = 100,
): Float32Array {
  const n = x.shape[0];
  const out = new Float32Array(n);
  const random = mulberry32(1);
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    const batch = x.slice(start, size);
    const forward = forwardAtLayer(split, batch);
    try {
      const input: StageInput = { x: batch, forward: () => forward, random };
      out.set(stage.score!(input).scores, start);
    } finally {
      tf.dispose([batch, forward.layerOutput, forward.scores, forward.labels]);
    }
  }
  return out;
}

/**
 * Fits every member on `sets.fit` and calibrates members and combination on the other two sets; returns
 * the states to store in the profile under each member's name and under {@link DETECTION}.
 */
export function calibrateDetection(
  members: readonly StageFactory[],
  context: { split: SplitModel; profile?: NipProfile },
  sets: DetectionSets,
  rule: CombinationRule = "fisher",
): Record<string, StageState> {
  if (members.length === 0) throw new RangeError("detection needs at least one detector");
  const states: Record<string, StageState> = {};
  const referencePValues: Float32Array[] = [];
  for (const factory of members) {
    const fitted = factory.fit ? factory.fit(context, sets.fit) : { meta: {}, arrays: {} };
    const stage = factory.create({ ...context, state: fitted });
    if (stage.role !== "score") {
      stage.dispose();
      throw new RangeError(`"${factory.name}" is not a detector (its role is ${stage.role})`);
    }
    try {
      const reference = sortedAscending(stageScores(context.split, stage, sets.reference.x));
      const heldOutScores = stageScores(context.split, stage, sets.heldOut.x);
      referencePValues.push(conformalPValues(reference, heldOutScores));
      states[factory.name] = {
        meta: fitted.meta,
        arrays: { ...fitted.arrays, reference, heldOut: sortedAscending(heldOutScores) },
      };
    } finally {
      stage.dispose();
    }
  }
  states[DETECTION] = {
    meta: {
      members: members.map((m) => m.name).join(","),
      rule,
      fit: sets.fit.labels.length,
      reference: sets.reference.labels.length,
      heldOut: sets.heldOut.labels.length,
    },
    arrays: { heldOut: sortedAscending(COMBINATIONS[rule](referencePValues)) },
  };
  return states;
}

/** The members of a calibrated detection, from its state. */
export function detectionMembers(state: StageState): string[] {
  return String(state.meta.members).split(",").filter((name) => name.length > 0);
}

/**
 * The detection stage over built member detectors (each created with its stored state, which holds its
 * reference and held-out scores): score = the combination rule's statistic of the members' reference
 * p-values; details:
 * the combined conformal p-value (`pValue`) and each member's score and own p-value.
 */
export function detectionStage(members: DefenseStage[], states: Record<string, StageState>): DefenseStage {
  const combined = states[DETECTION];
  const heldOut = combined.arrays.heldOut as Float32Array;
  const rule = combined.meta.rule as CombinationRule;
  if (!(rule in COMBINATIONS)) throw new RangeError(`${DETECTION}: unknown combination rule "${rule}"`);
  const calibration = members.map((m) => {
    const state = states[m.name];
    if (!state?.arrays.reference || !state.arrays.heldOut) {
      throw new RangeError(`detector "${m.name}" has no calibration scores; recalibrate the detectors`);
    }
    return {
      reference: state.arrays.reference as Float32Array,
      heldOut: state.arrays.heldOut as Float32Array,
    };
  });
  return {
    name: DETECTION,
    description: `detection: ${members.map((m) => m.name).join(", ")} combined by the ${rule} rule, ` +
      `calibrated on ${heldOut.length} held-out benign examples`,
    settings: { members: members.map((m) => m.name).join(","), rule, heldOut: heldOut.length },
    role: "score",
    domain: "input",
    score(input) {
      const details: Record<string, Float32Array> = {};
      const reference: Float32Array[] = [];
      members.forEach((member, j) => {
        const scores = member.score!(input).scores;
        details[`${member.name}.score`] = scores;
        details[`${member.name}.pValue`] = conformalPValues(calibration[j].heldOut, scores);
        reference.push(conformalPValues(calibration[j].reference, scores));
      });
      const statistic = COMBINATIONS[rule](reference);
      details.pValue = conformalPValues(heldOut, statistic);
      return { scores: statistic, details };
    },
    /**
     * `-ln` of a smoothed combined p-value (see {@link smoothNegLogPValue}) over the members' surrogates:
     * an input is flagged when the real combined p-value is <= alpha, so an attacker wants this below
     * `-ln alpha`.
     */
    surrogateScore(input) {
      return tf.tidy(() => {
        const negLogP = members.map((member, j) => {
          if (!member.surrogateScore) {
            throw new RangeError(`detector "${member.name}" has no differentiable surrogate`);
          }
          return smoothNegLogPValue(calibration[j].reference, member.surrogateScore(input));
        });
        return smoothNegLogPValue(heldOut, SURROGATE_COMBINATIONS[rule](negLogP));
      });
    },
    dispose() {
      members.forEach((m) => m.dispose());
    },
  };
}
