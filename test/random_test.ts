import assert from "node:assert/strict";
import { mulberry32 } from "../src/random.ts";

Deno.test("mulberry32 is deterministic, in [0, 1), and seed-dependent", () => {
  const a = mulberry32(42);
  const b = mulberry32(42);
  const c = mulberry32(43);
  const first = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(first, Array.from({ length: 1000 }, () => b()));
  assert.notDeepEqual(first, Array.from({ length: 1000 }, () => c()));
  assert.ok(first.every((v) => v >= 0 && v < 1));
  const mean = first.reduce((s, v) => s + v, 0) / first.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
});
