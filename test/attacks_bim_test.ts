import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { bim, bimL2 } from "../src/attacks/bim.ts";
import { fgsm } from "../src/attacks/fgsm.ts";
import { misclassification } from "../src/attacks/criteria.ts";
import { assertAttacksValid, fashionFixture, rate } from "./attacks_fixture.ts";

Deno.test("bim (L_inf and L2) respects the norm bound and the range; successes are misclassified; no leaks", async () => {
  const fixture = await fashionFixture();
  await assertAttacksValid(fixture, [[bim(), 0.1], [bimL2(), 2]], {
    minSuccess: 0.5,
    check: (result) => {
      for (const q of result.queries) assert.equal(q, 11);
    },
  });
  fixture.dispose();
});

Deno.test("bim never succeeds less with more steps, and beats fgsm at the same epsilon", async () => {
  const fixture = await fashionFixture();
  const criterion = misclassification(fixture.test.y);
  const epsilon = 0.06;
  const few = await bim({ steps: 3, stepSize: 0.01 }).run(fixture.target, fixture.test.x, criterion, {
    epsilon,
  });
  const many = await bim({ steps: 12, stepSize: 0.01 }).run(fixture.target, fixture.test.x, criterion, {
    epsilon,
  });
  // The first 3 iterates are the same in both runs, so every early success is kept.
  for (let i = 0; i < few.success.length; i++) if (few.success[i]) assert.equal(many.success[i], 1);
  const single = await fgsm().run(fixture.target, fixture.test.x, criterion, { epsilon });
  assert.ok(rate(many.success) >= rate(single.success));
  assert.ok(rate(many.success) > rate(few.success) || rate(few.success) === 1);
  tf.dispose([few.adversarial, many.adversarial, single.adversarial]);
  fixture.dispose();
});

Deno.test("bim with an absolute step size takes that step (first iterate moves by stepSize)", async () => {
  const fixture = await fashionFixture({ trainPerClass: 50, epochs: 2, testCount: 10 });
  const criterion = misclassification(fixture.test.y);
  const result = await bim({ steps: 1, stepSize: 0.01 }).run(fixture.target, fixture.test.x, criterion, {
    epsilon: 0.3,
  });
  for (const d of result.distances.linf) assert.ok(Math.abs(d - 0.01) < 1e-6, `moved ${d}`);
  result.adversarial.dispose();
  assert.throws(() => bim({ steps: 0 }), /steps = 0 is invalid/);
  fixture.dispose();
});
