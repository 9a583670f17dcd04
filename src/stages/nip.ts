/**
 * NIP (SPEC.md section 3) as a defense stage: match a candidate to each input from the shared forward at
 * the split layer (no forward of its own), add its scaled inverse perturbation. Its own control draws the
 * candidate at random instead of matching it. For the adaptive attacks the matched candidate is BPDA's
 * constant and the rest (Eq. 8's scaling, the clip) is differentiated as it runs.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { NipDefense } from "../nip/defense.ts";
import { paperOracleLabels } from "../nip/oracle.ts";
import type { NipProfile } from "../nip/profile.ts";
import type { ScaleRule } from "../nip/types.ts";
import { type DefenseStage, numericSetting, type StageFactory, type StageInput } from "./stage.ts";

/** How a NIP stage picks each input's candidate. */
type CandidateChoice = "matched" | "random";

function randomCandidates(n: number, count: number, random: () => number): Int32Array {
  return Int32Array.from({ length: n }, () => Math.floor(random() * count));
}

/** The stage over a loaded {@link NipDefense}; the stage owns the defense unless `owned` is false. */
export function nipStage(
  defense: NipDefense,
  choice: CandidateChoice = "matched",
  owned = true,
): DefenseStage {
  const { profile } = defense;
  const pick = (input: StageInput) => {
    if (choice === "matched") return defense.matchForward(input.forward());
    const n = input.x.shape[0];
    return {
      index: randomCandidates(n, defense.candidateCount, input.random),
      similarity: new Float32Array(n).fill(NaN),
    };
  };
  const settings = {
    layer: profile.layerName,
    candidates: defense.candidateCount,
    k1: profile.settings.k1,
    k2: profile.settings.k2,
    keyMode: profile.settings.keyMode,
    scaleRule: defense.scaleRule,
    strength: defense.strength,
    candidateChoice: choice,
  };
  return {
    name: choice === "matched" ? "nip" : "nip-random-candidate",
    description: `NIP: ${defense.candidateCount} candidates at layer ${profile.layerName}, ` +
      `${profile.settings.keyMode} key, ${defense.scaleRule} scale, strength ${defense.strength}` +
      (choice === "random" ? ", candidate drawn at random (control)" : ""),
    settings,
    role: "transform",
    domain: "input",
    transform(input) {
      const matches = pick(input);
      const rows = defense.perturbRows(input.x.dataSync() as Float32Array, matches.index);
      return {
        x: tf.tensor(rows, input.x.shape),
        details: { candidateIndex: matches.index, similarity: matches.similarity },
      };
    },
    differentiable(input) {
      return defense.perturb(input.x, pick(input).index);
    },
    randomChoice: choice === "matched" ? () => nipStage(defense, "random", false) : undefined,
    protocols: choice === "matched"
      ? [
        {
          name: "paper-oracle",
          usesTruth: true,
          description:
            "the authors' protocol: the inverse perturbation of the benign twin, sign retried with the true label",
          labels: (adversarial, truth) =>
            paperOracleLabels(defense, adversarial, truth.benignTwins, truth.trueLabels),
        },
        {
          name: "NIP_n",
          usesTruth: false,
          description:
            "the matched candidate's inverse perturbation added to the layer's activations (paper App. D)",
          labels: (adversarial) => defense.defendActivations(adversarial).labelsAfter,
        },
      ]
      : undefined,
    dispose() {
      if (owned) defense.dispose();
    },
  };
}

/** Builds NIP from the model's profile; overrides: `strength`, `scaleRule` (`paper` | `rms`). */
export const NIP: StageFactory<NipProfile> = {
  name: "nip",
  summary: "Neuron-level Inverse Perturbation: the matched candidate's inverse perturbation is added",
  modalities: ["image", "audio"],
  needsProfile: true,
  create({ split, profile, overrides = {} }) {
    if (!profile) throw new RangeError("nip: needs the model's calibration profile");
    const scaleRule = overrides.scaleRule;
    if (scaleRule !== undefined && scaleRule !== "paper" && scaleRule !== "rms") {
      throw new RangeError(`nip: setting scaleRule = ${scaleRule} must be paper or rms`);
    }
    const strength = overrides.strength === undefined
      ? undefined
      : numericSetting("nip", "strength", overrides.strength, 0, [0, Infinity]);
    return nipStage(
      new NipDefense(split, profile, { scaleRule: scaleRule as ScaleRule | undefined, strength }),
    );
  },
};
