import assert from "node:assert/strict";
import type { DefendBatch } from "../src/server/engine.ts";
import { applyPolicy, smoothedChecks } from "../src/server/verdict_policy.ts";

/** Two 2-value examples: example 0 flagged by the detection (p 0.01), example 1 not (p 0.5). */
function batch(answered: boolean): DefendBatch {
  return {
    defended: new Float32Array([9, 9, 9, 9]),
    labelsBefore: new Int32Array([1, 2]),
    labelsAfter: new Int32Array([-1, 3]),
    scoresBefore: new Float32Array([0.1, 0.9, 0.2, 0.8]),
    scoresAfter: new Float32Array([0.5, 0.5, 0.3, 0.7]),
    candidateIndex: new Int32Array([-1, -1]),
    similarity: new Float32Array([NaN, NaN]),
    detection: { pValue: new Float32Array([0.01, 0.5]), scores: {}, pValues: {} },
    answered,
  };
}
const input = new Float32Array([1, 2, 3, 4]);

Deno.test("an untransformed example keeps its input; its verdict after is the one before unless a stage answered", () => {
  const plain = applyPolicy(batch(false), input, "flag", 0.05, 2, 2);
  assert.deepEqual(Array.from(plain.batch.defended), [1, 2, 3, 4]);
  assert.deepEqual(Array.from(plain.batch.labelsAfter), [1, 2]);
  assert.deepEqual(Array.from(plain.batch.scoresAfter), [0.1, 0.9, 0.2, 0.8].map(Math.fround));
  const answered = applyPolicy(batch(true), input, "smoothed", 0.05, 2, 2);
  assert.deepEqual(Array.from(answered.batch.defended), [1, 2, 3, 4]);
  assert.deepEqual(Array.from(answered.batch.labelsAfter), [-1, 3], "the smoothed answers stay");
  const defended = applyPolicy(batch(false), input, "defend-if-flagged", 0.05, 2, 2);
  assert.deepEqual(Array.from(defended.batch.defended), [9, 9, 3, 4]);
  assert.deepEqual(defended.decisions.map((d) => d.transform), [true, false]);
});

Deno.test("the smoothed checks flag abstentions and disagreements; smoothed-reject withholds them", () => {
  const smoothed = [-1, 3, 4];
  const reference = [0, 3, 5];
  const flag = smoothedChecks("smoothed", smoothed, reference);
  assert.deepEqual(flag.checks.map((c) => c.flagged), [true, false, true]);
  assert.equal(flag.checks[0].reason, "the smoothed classifier abstains");
  assert.equal(flag.checks[2].reason, "the smoothed classifier answers 4, the answer checked was 5");
  assert.ok(flag.decisions.every((d) => d.forward && !d.rejected && !d.transform));
  const reject = smoothedChecks("smoothed-reject", smoothed, reference);
  assert.deepEqual(reject.decisions.map((d) => d.rejected), [true, false, true]);
});
