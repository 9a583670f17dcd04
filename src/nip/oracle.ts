/**
 * The `paper-oracle` protocol (SPEC.md section 7), reproducing the authors' public code, and ALWAYS
 * labelled as oracle in reports: each adversarial example gets the inverse perturbation computed from its
 * own benign twin (with the true label), and when the defended input is still wrong, the opposite sign is
 * tried using the true label. It reads information no deployed defense has.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { candidateParts } from "./calibrate.ts";
import type { NipDefense } from "./defense.ts";
import { applyPerturbation, normalizePerturbations } from "./scaling.ts";
import { predictLabels } from "./neurons.ts";

/** Labels after the oracle defense of `adversarial`, given benign twins and true labels. */
export function paperOracleLabels(
  defense: NipDefense,
  adversarial: tf.Tensor,
  benignTwins: tf.Tensor,
  trueLabels: Int32Array,
): Int32Array {
  const { split, profile, scaleRule, strength } = defense;
  const parts = candidateParts(split, benignTwins, trueLabels, profile.settings);
  return tf.tidy(() => {
    const rho = normalizePerturbations(tf.tensor(parts.rho, benignTwins.shape), scaleRule);
    const classify = (sign: number) => {
      const defended = applyPerturbation(adversarial, rho.mul(sign), scaleRule, strength, split.inputRange);
      return predictLabels(split.model, defended);
    };
    const first = classify(1);
    const retry = classify(-1);
    return first.map((label, i) => label === trueLabels[i] ? label : retry[i]);
  });
}
