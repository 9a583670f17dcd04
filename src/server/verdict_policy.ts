/**
 * A deployment's policy applied to one request's share of a batch (`src/stages/policy.ts` decides per
 * example): which examples keep their input, and, for the smoothed policies, which answers disagree with
 * the smoothed classifier and are flagged or withheld. Plain arrays only.
 *
 * @module
 */
import { decide, type Decision, type Policy } from "../stages/policy.ts";
import type { DefendBatch } from "./engine.ts";

/**
 * One request's share of a defended batch under its policy: an example the policy does not transform keeps
 * its input rows and gets the verdict before as its verdict after (unless a stage answered for it).
 */
export function applyPolicy(
  batch: DefendBatch,
  input: Float32Array,
  policy: Policy,
  alpha: number,
  size: number,
  classes: number,
): { batch: DefendBatch; decisions: Decision[] } {
  const n = batch.labelsBefore.length;
  const decisions = Array.from(
    { length: n },
    (_, i) => decide(policy, (batch.detection?.pValue[i] ?? 1) <= alpha),
  );
  if (decisions.every((d) => d.transform)) return { batch, decisions };
  const defended = Float32Array.from(batch.defended);
  const labelsAfter = Int32Array.from(batch.labelsAfter);
  const scoresAfter = Float32Array.from(batch.scoresAfter);
  decisions.forEach((d, i) => {
    if (d.transform) return;
    defended.set(input.subarray(i * size, (i + 1) * size), i * size);
    // An answering stage's labels are the verdict after whether or not the input was transformed.
    if (labelsAfter.length === 0 || batch.answered) return;
    labelsAfter[i] = batch.labelsBefore[i];
    scoresAfter.set(batch.scoresBefore.subarray(i * classes, (i + 1) * classes), i * classes);
  });
  return { batch: { ...batch, defended, labelsAfter, scoresAfter }, decisions };
}

/** The smoothed policies' verdict on one example. */
export interface SmoothedCheck {
  flagged: boolean;
  reason: string;
}

/**
 * Compares each example's answer (`reference`: the upstream's label, or the local model's without an
 * upstream) with the smoothed classifier's (`smoothed`, -1 = abstained): a difference or an abstention
 * flags it, and under `smoothed-reject` its decision becomes a rejection.
 */
export function smoothedChecks(
  policy: Policy,
  smoothed: ArrayLike<number>,
  reference: ArrayLike<number>,
): { decisions: Decision[]; checks: SmoothedCheck[] } {
  const checks = Array.from({ length: reference.length }, (_, i): SmoothedCheck => {
    if (smoothed[i] === -1) return { flagged: true, reason: "the smoothed classifier abstains" };
    if (smoothed[i] !== reference[i]) {
      return {
        flagged: true,
        reason: `the smoothed classifier answers ${smoothed[i]}, the answer checked was ${reference[i]}`,
      };
    }
    return { flagged: false, reason: "" };
  });
  return { decisions: checks.map((c) => decide(policy, c.flagged)), checks };
}
