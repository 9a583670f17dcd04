/**
 * Criteria as values: `misclassification(labels)` and `targetedMisclassification(targets)`.
 *
 * @module
 */
import type { Criterion, MisclassificationCriterion, TargetedMisclassificationCriterion } from "./types.ts";

function toLabels(name: string, values: ArrayLike<number>): Int32Array {
  const out = Int32Array.from(values);
  for (let i = 0; i < out.length; i++) {
    if (!Number.isInteger(values[i]) || out[i] < 0) {
      throw new RangeError(`${name}[${i}] = ${values[i]} is not a non-negative integer class index`);
    }
  }
  return out;
}

/** Untargeted criterion: example i is adversarial when its predicted label is not `labels[i]`. */
export function misclassification(labels: ArrayLike<number>): MisclassificationCriterion {
  return { kind: "misclassification", labels: toLabels("labels", labels) };
}

/** Targeted criterion: example i is adversarial when its predicted label is `targets[i]`. */
export function targetedMisclassification(targets: ArrayLike<number>): TargetedMisclassificationCriterion {
  return { kind: "targeted", targets: toLabels("targets", targets) };
}

/** The class each example's loss refers to: the true label (untargeted) or the target. */
export function criterionClasses(criterion: Criterion): Int32Array {
  return criterion.kind === "misclassification" ? criterion.labels : criterion.targets;
}

/** Number of examples the criterion describes. */
export function criterionSize(criterion: Criterion): number {
  return criterionClasses(criterion).length;
}

/** 1 where `predicted[i]` meets the criterion for example i. */
export function isAdversarial(criterion: Criterion, predicted: Int32Array): Uint8Array {
  const classes = criterionClasses(criterion);
  if (predicted.length !== classes.length) {
    throw new RangeError(
      `criterion has ${classes.length} examples but ${predicted.length} predictions were given`,
    );
  }
  const out = new Uint8Array(predicted.length);
  const untargeted = criterion.kind === "misclassification";
  for (let i = 0; i < out.length; i++) out[i] = (predicted[i] !== classes[i]) === untargeted ? 1 : 0;
  return out;
}

/** The criterion restricted to the examples at `indices` (in that order). */
export function subsetCriterion(criterion: Criterion, indices: ArrayLike<number>): Criterion {
  const classes = criterionClasses(criterion);
  const picked = Int32Array.from(indices, (i) => classes[i]);
  return criterion.kind === "misclassification"
    ? { kind: "misclassification", labels: picked }
    : { kind: "targeted", targets: picked };
}

/** Checks that the criterion describes exactly `n` examples and classes below `numClasses`. */
export function checkCriterion(criterion: Criterion, n: number, numClasses?: number): void {
  const classes = criterionClasses(criterion);
  const field = criterion.kind === "misclassification" ? "labels" : "targets";
  if (classes.length !== n) {
    throw new RangeError(`criterion ${field} has ${classes.length} entries but the batch has ${n} examples`);
  }
  if (numClasses !== undefined) {
    for (let i = 0; i < n; i++) {
      if (classes[i] >= numClasses) {
        throw new RangeError(
          `criterion ${field}[${i}] = ${classes[i]} but the target has ${numClasses} classes`,
        );
      }
    }
  }
}
