import assert from "node:assert/strict";
import {
  decide,
  needsAnswer,
  needsDetection,
  parsePolicy,
  POLICIES,
  type Policy,
} from "../src/stages/policy.ts";

Deno.test("each policy's decision for flagged and unflagged inputs", () => {
  const table = POLICIES.map((p) => [p, decide(p, false), decide(p, true)]);
  assert.deepEqual(table, [
    ["defend", { transform: true, forward: true, rejected: false }, {
      transform: true,
      forward: true,
      rejected: false,
    }],
    ["detect", { transform: false, forward: false, rejected: false }, {
      transform: false,
      forward: false,
      rejected: false,
    }],
    ["flag", { transform: false, forward: true, rejected: false }, {
      transform: false,
      forward: true,
      rejected: false,
    }],
    ["reject", { transform: false, forward: true, rejected: false }, {
      transform: false,
      forward: false,
      rejected: true,
    }],
    ["defend-if-flagged", { transform: false, forward: true, rejected: false }, {
      transform: true,
      forward: true,
      rejected: false,
    }],
    // The smoothed policies: "flagged" is the disagreement with the smoothed classifier, known after the answer.
    ["smoothed", { transform: false, forward: true, rejected: false }, {
      transform: false,
      forward: true,
      rejected: false,
    }],
    ["smoothed-reject", { transform: false, forward: true, rejected: false }, {
      transform: false,
      forward: true,
      rejected: true,
    }],
  ]);
  assert.equal(needsDetection("defend"), false);
  const smoothed = ["smoothed", "smoothed-reject"];
  assert.ok(POLICIES.filter((p) => p !== "defend" && !smoothed.includes(p)).every(needsDetection));
  assert.deepEqual(POLICIES.filter(needsAnswer), smoothed);
  assert.ok(!smoothed.some((p) => needsDetection(p as Policy)));
  assert.equal(parsePolicy("reject"), "reject");
  assert.throws(
    () => parsePolicy("block"),
    /unknown policy "block"; expected one of defend, detect, flag, reject/,
  );
});
