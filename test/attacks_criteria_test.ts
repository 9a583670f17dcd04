import assert from "node:assert/strict";
import {
  checkCriterion,
  isAdversarial,
  misclassification,
  subsetCriterion,
  targetedMisclassification,
} from "../src/attacks/criteria.ts";

Deno.test("criteria are values: misclassification and targeted decide per example", () => {
  const untargeted = misclassification([1, 2, 3]);
  assert.deepEqual(isAdversarial(untargeted, Int32Array.from([1, 0, 3])), Uint8Array.from([0, 1, 0]));
  const targeted = targetedMisclassification([4, 4, 0]);
  assert.deepEqual(isAdversarial(targeted, Int32Array.from([4, 1, 0])), Uint8Array.from([1, 0, 1]));
  assert.deepEqual(subsetCriterion(targeted, [2, 0]), targetedMisclassification([0, 4]));
});

Deno.test("bad criteria fail with the field and index", () => {
  assert.throws(() => misclassification([0, -1]), /labels\[1\] = -1/);
  assert.throws(() => targetedMisclassification([0.5]), /targets\[0\] = 0.5/);
  assert.throws(() => checkCriterion(misclassification([0, 1]), 3), /2 entries but the batch has 3/);
  assert.throws(
    () => checkCriterion(misclassification([0, 11]), 2, 10),
    /labels\[1\] = 11 but the target has 10/,
  );
  assert.throws(
    () => isAdversarial(misclassification([0]), Int32Array.from([0, 1])),
    /1 examples but 2 predictions/,
  );
});
