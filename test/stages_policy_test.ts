import assert from "node:assert/strict";
import { decide, needsDetection, parsePolicy, POLICIES } from "../src/stages/policy.ts";

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
  ]);
  assert.equal(needsDetection("defend"), false);
  assert.ok(POLICIES.filter((p) => p !== "defend").every(needsDetection));
  assert.equal(parsePolicy("reject"), "reject");
  assert.throws(
    () => parsePolicy("block"),
    /unknown policy "block"; expected one of defend, detect, flag, reject/,
  );
});
