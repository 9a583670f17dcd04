import assert from "node:assert/strict";
import { LoopLagSampler } from "../src/server/loop_lag.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("LoopLagSampler: a 150 ms block of the loop is one sample of about 150 ms; none after stop", async () => {
  const samples: number[] = [];
  const sampler = new LoopLagSampler((seconds) => samples.push(seconds), 10);
  try {
    await sleep(100);
    const started = performance.now();
    while (performance.now() - started < 150) { /* the loop is held, as by a long computation */ }
    await sleep(100);
  } finally {
    sampler.stop();
  }
  assert.ok(samples.length >= 5, `${samples.length} samples`);
  assert.ok(samples.every((s) => s >= 0));
  const longest = Math.max(...samples);
  assert.ok(longest >= 0.13 && longest < 0.5, `longest ${longest}`);
  assert.equal(sampler.maxSeconds, longest);
  // Exactly one sample covers the block: the others are timer jitter.
  assert.equal(samples.filter((s) => s >= 0.1).length, 1);
  const count = samples.length;
  await sleep(60);
  assert.equal(samples.length, count);
});
