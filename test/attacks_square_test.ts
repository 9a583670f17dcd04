import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { square, squareFraction, squareL2 } from "../src/attacks/square.ts";
import { misclassification, targetedMisclassification } from "../src/attacks/criteria.ts";
import { assertAttacksValid, assertValidResult, fashionFixture, rate } from "./attacks_fixture.ts";

Deno.test("square (L_inf, L2) on a score-only target respects bound and range; bounded queries; no leaks", async () => {
  const fixture = await fashionFixture({ testCount: 30 });
  const cases = [[square({ steps: 1000, pInit: 0.3 }), 0.1], [
    squareL2({ steps: 1000, pInit: 0.3 }),
    2,
  ]] as const;
  await assertAttacksValid(fixture, cases, {
    minSuccess: 0.5,
    target: { ...fixture.target, differentiable: false },
    check: (result) => {
      for (const q of result.queries) assert.ok(q >= 2 && q <= 1000 + 2);
    },
  });
  fixture.dispose();
});

Deno.test("square success grows with epsilon and with steps; targeted square reaches targets", async () => {
  const fixture = await fashionFixture({ testCount: 30 });
  const criterion = misclassification(fixture.test.y);
  const rates: number[] = [];
  for (const epsilon of [0.03, 0.08, 0.2]) {
    const result = await square({ steps: 300, pInit: 0.3 }).run(fixture.target, fixture.test.x, criterion, {
      epsilon,
    });
    rates.push(rate(result.success));
    result.adversarial.dispose();
  }
  for (let i = 1; i < rates.length; i++) assert.ok(rates[i] >= rates[i - 1], `rates ${rates}`);
  const short = await square({ steps: 30, seed: 2, pInit: 0.3 }).run(
    fixture.target,
    fixture.test.x,
    criterion,
    { epsilon: 0.06 },
  );
  const long = await square({ steps: 300, seed: 2, pInit: 0.3 }).run(
    fixture.target,
    fixture.test.x,
    criterion,
    { epsilon: 0.06 },
  );
  assert.ok(rate(long.success) >= rate(short.success));
  tf.dispose([short.adversarial, long.adversarial]);
  const targets = targetedMisclassification(fixture.test.y.map((y) => (y + 1) % 10));
  const targeted = await square({ steps: 1000, pInit: 0.3 }).run(fixture.target, fixture.test.x, targets, {
    epsilon: 0.2,
  });
  assert.ok((await assertValidResult(fixture.target, fixture.test.x, targets, "linf", 0.2, targeted)) > 0.3);
  targeted.adversarial.dispose();
  assert.equal(squareFraction(0.05, 0, 100), 0.05);
  assert.ok(squareFraction(0.05, 99, 100) < squareFraction(0.05, 10, 100));
  fixture.dispose();
});
