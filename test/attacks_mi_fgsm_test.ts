import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { miFgsm } from "../src/attacks/mi_fgsm.ts";
import { misclassification } from "../src/attacks/criteria.ts";
import { assertAttacksValid, fashionFixture, rate } from "./attacks_fixture.ts";

Deno.test("mi-fgsm respects the L_inf bound and the range; successes are misclassified; no leaks", async () => {
  const fixture = await fashionFixture();
  const attack = miFgsm({ steps: 10, stepSize: 0.02, decay: 0.9 });
  assert.equal(attack.norm, "linf");
  await assertAttacksValid(fixture, [[attack, 0.1]], {
    minSuccess: 0.5,
    check: (result) => {
      for (const q of result.queries) assert.equal(q, 11);
    },
  });
  assert.deepEqual(attack.params, { steps: 10, stepSize: 0.02, relStepSize: 0.1, decay: 0.9 });
  fixture.dispose();
});

Deno.test("mi-fgsm success grows with epsilon and never falls with more steps", async () => {
  const fixture = await fashionFixture();
  const criterion = misclassification(fixture.test.y);
  const rates: number[] = [];
  for (const epsilon of [0.01, 0.04, 0.12]) {
    const result = await miFgsm().run(fixture.target, fixture.test.x, criterion, { epsilon });
    rates.push(rate(result.success));
    result.adversarial.dispose();
  }
  for (let i = 1; i < rates.length; i++) assert.ok(rates[i] >= rates[i - 1], `rates ${rates}`);
  const few = await miFgsm({ steps: 3, stepSize: 0.01 }).run(fixture.target, fixture.test.x, criterion, {
    epsilon: 0.05,
  });
  const many = await miFgsm({ steps: 9, stepSize: 0.01 }).run(fixture.target, fixture.test.x, criterion, {
    epsilon: 0.05,
  });
  for (let i = 0; i < few.success.length; i++) if (few.success[i]) assert.equal(many.success[i], 1);
  tf.dispose([few.adversarial, many.adversarial]);
  assert.throws(() => miFgsm({ decay: 0 }), /decay/);
  fixture.dispose();
});
