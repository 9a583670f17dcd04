import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { boundary } from "../src/attacks/boundary.ts";
import { misclassification } from "../src/attacks/criteria.ts";
import { assertValidResult, fashionFixture, rate } from "./attacks_fixture.ts";

Deno.test("boundary stays adversarial and its distance never grows over iterations; queries bounded", async () => {
  const fixture = await fashionFixture({ testCount: 16 });
  const blackBox = { ...fixture.target, differentiable: false };
  const baseline = tf.memory().numTensors;
  const criterion = misclassification(fixture.test.y);
  let previous: Float32Array | null = null;
  let firstSuccess: Uint8Array | null = null;
  for (const steps of [1, 40, 200]) {
    const result = await boundary({ steps, seed: 5 }).run(blackBox, fixture.test.x, criterion, {
      epsilon: Infinity,
    });
    const success = await assertValidResult(blackBox, fixture.test.x, criterion, "l2", Infinity, result);
    assert.ok(success > 0.8, `success ${success}`);
    firstSuccess ??= result.success;
    for (let i = 0; i < result.success.length; i++) {
      if (!firstSuccess[i]) continue;
      assert.equal(result.success[i], 1);
      if (previous) assert.ok(result.distances.l2[i] <= previous[i] + 1e-5, `example ${i} grew`);
      assert.ok(result.queries[i] <= 25 + 10 + 2 * steps + 1);
    }
    previous = result.distances.l2;
    result.adversarial.dispose();
  }
  assert.equal(tf.memory().numTensors, baseline);
  fixture.dispose();
});

Deno.test("boundary success within an L2 budget grows with iterations", async () => {
  const fixture = await fashionFixture({ testCount: 16 });
  const criterion = misclassification(fixture.test.y);
  const short = await boundary({ steps: 10 }).run(fixture.target, fixture.test.x, criterion, { epsilon: 3 });
  const long = await boundary({ steps: 150 }).run(fixture.target, fixture.test.x, criterion, { epsilon: 3 });
  await assertValidResult(fixture.target, fixture.test.x, criterion, "l2", 3, long);
  assert.ok(rate(long.success) >= rate(short.success), `${rate(long.success)} < ${rate(short.success)}`);
  tf.dispose([short.adversarial, long.adversarial]);
  assert.throws(() => boundary({ stepSize: 2 }), /stepSize = 2 must be in \(0, 1\)/);
  fixture.dispose();
});
