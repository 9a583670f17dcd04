/**
 * Picks the defense strength at calibration time (SPEC.md section 3): the largest value on a grid whose
 * benign-accuracy loss, on held-out benign examples disjoint from the candidates, stays within a budget.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { NipDefense } from "./defense.ts";
import type { StrengthCalibration } from "./profile.ts";
import type { ScaleRule } from "./types.ts";
import { predictLabels } from "./neurons.ts";

/** Strengths tried by default: `alpha` for the paper rule, the step for the rms rule. */
export const STRENGTH_GRIDS: Record<ScaleRule, number[]> = {
  paper: [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2],
  rms: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2],
};

/** Options of {@link calibrateStrength}. */
export interface StrengthOptions {
  /** Allowed loss of benign accuracy in percentage points (default 1). */
  budgetPoints?: number;
  grid?: number[];
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

function accuracy(predicted: Int32Array[], labels: Int32Array): number {
  let correct = 0;
  let i = 0;
  for (const batch of predicted) for (const label of batch) correct += label === labels[i++] ? 1 : 0;
  return correct / labels.length;
}

/**
 * The largest budget that allows no held-out example to be lost, in points: one example weighs 100 / n. A
 * budget in (0, 100 / n) means nothing different from 0 and is refused by {@link calibrateStrength}.
 */
export function exampleWeightPoints(heldOut: number): number {
  return 100 / heldOut;
}

/**
 * Measures benign accuracy after defense at each strength and returns the largest within budget. Throws a
 * RangeError when the budget is positive but smaller than one held-out example's weight (see
 * {@link exampleWeightPoints}): the held-out set is too small to measure it.
 */
export function calibrateStrength(
  defense: NipDefense,
  heldOutX: tf.Tensor,
  heldOutLabels: Int32Array,
  options: StrengthOptions = {},
): StrengthCalibration {
  const budgetPoints = options.budgetPoints ?? 1;
  const grid = [...(options.grid ?? STRENGTH_GRIDS[defense.scaleRule])].sort((a, b) => a - b);
  const batchSize = options.batchSize ?? 128;
  const n = heldOutX.shape[0];
  if (budgetPoints > 0 && budgetPoints < exampleWeightPoints(n)) {
    throw new RangeError(
      `a benign-accuracy budget of ${budgetPoints} points is less than one of the ${n} held-out examples ` +
        `(${exampleWeightPoints(n).toFixed(3)} points each): use at least ${
          Math.ceil(100 / budgetPoints)
        } held-out examples, or a budget of 0`,
    );
  }
  const bare: Int32Array[] = [];
  const matched: Int32Array[] = [];
  for (let start = 0; start < n; start += batchSize) {
    const batch = heldOutX.slice(start, Math.min(batchSize, n - start));
    const matches = defense.match(batch);
    bare.push(
      predictLabels(defense.split.model, batch),
    );
    matched.push(matches.index);
    batch.dispose();
  }
  const bareAccuracy = accuracy(bare, heldOutLabels);
  const tried: { strength: number; accuracy: number }[] = [];
  grid.forEach((strength, step) => {
    const predicted = matched.map((candidateIndex, b) => {
      const start = b * batchSize;
      const batch = heldOutX.slice(start, candidateIndex.length);
      const labels = tf.tidy(() => {
        const defended = defense.perturb(batch, candidateIndex, strength);
        return predictLabels(defense.split.model, defended);
      });
      batch.dispose();
      return labels;
    });
    tried.push({ strength, accuracy: accuracy(predicted, heldOutLabels) });
    options.onProgress?.(step + 1, grid.length);
  });
  const within = tried.filter((t) => (bareAccuracy - t.accuracy) * 100 <= budgetPoints);
  const chosen = within.length > 0 ? within[within.length - 1].strength : grid[0];
  const budgetExamples = Math.floor(budgetPoints * n / 100 + 1e-9);
  return { budgetPoints, heldOut: n, budgetExamples, bareAccuracy, tried, chosen };
}
