/**
 * The serving engine computes large batches in slices (COMPUTE_SLICE_EXAMPLES to defend,
 * PREDICT_SLICE_EXAMPLES to predict) and yields to the event loop between them: results equal the slices computed one by one, other work runs in between, and no
 * tensor is left behind.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import { initBackend } from "../src/engine/backend.ts";
import { trainDemoPipeline } from "../src/server/demo_pipeline.ts";
import { COMPUTE_SLICE_EXAMPLES, PREDICT_SLICE_EXAMPLES, ServingEngine } from "../src/server/engine.ts";

await initBackend("wasm");
const pipeline = await trainDemoPipeline({ seed: 7 });
const engine = new ServingEngine(pipeline);
const size = engine.exampleSize;
const n = PREDICT_SLICE_EXAMPLES + 5;
// The demo keeps 100 test images: tile them to n examples.
const rows = Float32Array.from({ length: n * size }, (_, i) => pipeline.test.images[i % (100 * size)]);

Deno.test("defend and predict over several slices equal the slices computed one by one", async () => {
  const before = tf.memory().numTensors;
  const whole = await engine.defend(rows, n);
  const wholePredict = await engine.predict(rows, n);
  for (
    const [slice, check] of [
      [COMPUTE_SLICE_EXAMPLES, async (start: number, k: number) => {
        const part = await engine.defend(rows.subarray(start * size, (start + k) * size), k);
        assert.deepEqual(whole.labelsBefore.subarray(start, start + k), part.labelsBefore);
        assert.deepEqual(whole.labelsAfter.subarray(start, start + k), part.labelsAfter);
        assert.deepEqual(whole.candidateIndex.subarray(start, start + k), part.candidateIndex);
        assert.deepEqual(whole.defended.subarray(start * size, (start + k) * size), part.defended);
      }],
      [PREDICT_SLICE_EXAMPLES, async (start: number, k: number) => {
        const part = await engine.predict(rows.subarray(start * size, (start + k) * size), k);
        assert.deepEqual(wholePredict.labels.subarray(start, start + k), part.labels);
        assert.deepEqual(wholePredict.scores.subarray(start * 10, (start + k) * 10), part.scores);
      }],
    ] as const
  ) {
    for (let start = 0; start < n; start += slice) await check(start, Math.min(slice, n - start));
  }
  assert.equal(whole.defended.length, n * size);
  assert.equal(whole.scoresAfter.length, n * engine.numClasses);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("other work runs between slices: a callback queued after the call starts fires before it ends", async () => {
  for (const run of [() => engine.defend(rows, n), () => engine.predict(rows, n)]) {
    let ranBetween = false;
    const call = run().then(() => ranBetween);
    setImmediate(() => ranBetween = true);
    assert.equal(await call, true);
  }
});

Deno.test("a batch within one slice answers without yielding (no added latency)", async () => {
  let ranBetween = false;
  const call = engine.predict(rows.subarray(0, 2 * size), 2).then(() => ranBetween);
  setImmediate(() => ranBetween = true);
  assert.equal(await call, false);
});

Deno.test("certify samples in steps: other work runs in between; seeded certificates repeat", async () => {
  const request = { n0: 100, n: 3000, alpha: 0.001, seed: 5 };
  const before = tf.memory().numTensors;
  let ranBetween = false;
  const call = engine.certify(rows.subarray(0, 2 * size), 2, request);
  setImmediate(() => ranBetween = true);
  const certificates = await call;
  assert.ok(ranBetween);
  assert.equal(certificates.length, 2);
  for (const c of certificates) assert.equal(c.n, 3000);
  assert.deepEqual(await engine.certify(rows.subarray(0, 2 * size), 2, request), certificates);
  assert.equal(tf.memory().numTensors, before);
});
