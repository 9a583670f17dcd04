import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { pwa } from "../src/attacks/pwa.ts";
import { misclassification } from "../src/attacks/criteria.ts";
import { assertValidResult, fashionFixture } from "./attacks_fixture.ts";

Deno.test("pwa keeps examples adversarial while resetting pixels; L0 never grows with passes; no leaks", async () => {
  const fixture = await fashionFixture({ testCount: 12 });
  const blackBox = { ...fixture.target, differentiable: false };
  const baseline = tf.memory().numTensors;
  const criterion = misclassification(fixture.test.y);
  const one = await pwa({ passes: 1 }).run(blackBox, fixture.test.x, criterion, { epsilon: Infinity });
  const success = await assertValidResult(blackBox, fixture.test.x, criterion, "l0", Infinity, one);
  assert.ok(success > 0.8, `success ${success}`);
  const three = await pwa({ passes: 3 }).run(blackBox, fixture.test.x, criterion, { epsilon: Infinity });
  await assertValidResult(blackBox, fixture.test.x, criterion, "l0", Infinity, three);
  for (let i = 0; i < one.success.length; i++) {
    if (!one.success[i]) continue;
    assert.equal(three.success[i], 1);
    assert.ok(
      three.distances.l0[i] <= one.distances.l0[i],
      `example ${i}: ${three.distances.l0[i]} > ${one.distances.l0[i]}`,
    );
    // Far fewer than all 784 pixels remain changed.
    assert.ok(three.distances.l0[i] < 400, `example ${i} changes ${three.distances.l0[i]} pixels`);
    assert.ok(three.queries[i] <= 25 + 10 + 3 * 784 + 1);
  }
  tf.dispose([one.adversarial, three.adversarial]);
  assert.equal(tf.memory().numTensors, baseline);
  fixture.dispose();
});

Deno.test("pwa with an L0 budget succeeds only within it", async () => {
  const fixture = await fashionFixture({ testCount: 8 });
  const criterion = misclassification(fixture.test.y);
  const free = await pwa({ passes: 2 }).run(fixture.target, fixture.test.x, criterion, { epsilon: Infinity });
  const sorted = Array.from(free.distances.l0).filter((_, i) => free.success[i]).sort((a, b) => a - b);
  const bound = sorted[sorted.length >> 1];
  const bounded = await pwa({ passes: 2 }).run(fixture.target, fixture.test.x, criterion, { epsilon: bound });
  await assertValidResult(fixture.target, fixture.test.x, criterion, "l0", bound, bounded);
  for (let i = 0; i < free.success.length; i++) {
    assert.equal(bounded.success[i], free.success[i] && free.distances.l0[i] <= bound ? 1 : 0);
  }
  tf.dispose([free.adversarial, bounded.adversarial]);
  fixture.dispose();
});
