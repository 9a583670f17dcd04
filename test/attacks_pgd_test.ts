import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { pgd, pgdL2 } from "../src/attacks/pgd.ts";
import { fgm, fgsm } from "../src/attacks/fgsm.ts";
import { misclassification, targetedMisclassification } from "../src/attacks/criteria.ts";
import { assertAttacksValid, assertValidResult, fashionFixture, rate } from "./attacks_fixture.ts";

Deno.test("pgd (L_inf and L2) respects the norm bound and the range; successes are misclassified; no leaks", async () => {
  const fixture = await fashionFixture();
  const cases = [[pgd({ steps: 10, relStepSize: 0.25 }), 0.1], [
    pgdL2({ steps: 10, relStepSize: 0.25 }),
    2,
  ]] as const;
  await assertAttacksValid(fixture, cases, {
    minSuccess: 0.5,
    budget: { label: "test budget" },
    check: (result) => {
      assert.equal(result.budgetLabel, "test budget");
      // 10 gradient queries and one check of the final iterate per example.
      for (const q of result.queries) assert.equal(q, 11);
    },
  });
  fixture.dispose();
});

Deno.test("pgd is at least as strong as fgsm at the same epsilon, and success grows with epsilon", async () => {
  const fixture = await fashionFixture();
  const criterion = misclassification(fixture.test.y);
  for (
    const [strong, weak, epsilons] of [
      [pgd({ steps: 10, relStepSize: 0.25 }), fgsm(), [0.02, 0.06]],
      [pgdL2({ steps: 10, relStepSize: 0.25 }), fgm(), [0.5, 1.5]],
    ] as const
  ) {
    const rates: number[] = [];
    for (const epsilon of epsilons) {
      const a = await strong.run(fixture.target, fixture.test.x, criterion, { epsilon });
      const b = await weak.run(fixture.target, fixture.test.x, criterion, { epsilon });
      assert.ok(
        rate(a.success) >= rate(b.success),
        `${strong.name} ${rate(a.success)} < ${weak.name} ${rate(b.success)} at ${epsilon}`,
      );
      rates.push(rate(a.success));
      tf.dispose([a.adversarial, b.adversarial]);
    }
    assert.ok(rates[1] >= rates[0], `${strong.name} rates ${rates}`);
  }
  fixture.dispose();
});

Deno.test("pgd restarts never lose a success, spend queries only on unsolved examples, and repeat with a seed", async () => {
  const fixture = await fashionFixture();
  const criterion = misclassification(fixture.test.y);
  const epsilon = 0.03;
  const once = await pgd({ steps: 5, seed: 3 }).run(fixture.target, fixture.test.x, criterion, { epsilon });
  const again = await pgd({ steps: 5, seed: 3 }).run(fixture.target, fixture.test.x, criterion, { epsilon });
  assert.deepEqual(again.success, once.success);
  const restarted = await pgd({ steps: 5, seed: 3, restarts: 4 }).run(
    fixture.target,
    fixture.test.x,
    criterion,
    { epsilon },
  );
  await assertValidResult(fixture.target, fixture.test.x, criterion, "linf", epsilon, restarted);
  assert.ok(rate(once.success) < 1, "budget too large to test restarts");
  for (let i = 0; i < once.success.length; i++) {
    if (once.success[i]) {
      assert.equal(restarted.success[i], 1);
      assert.equal(restarted.queries[i], 6); // solved by the first run: no restart spent on it
    } else {
      assert.ok(restarted.queries[i] > 6 && restarted.queries[i] <= 4 * 6 + 1);
    }
  }
  tf.dispose([once.adversarial, again.adversarial, restarted.adversarial]);
  fixture.dispose();
});

Deno.test("targeted pgd reaches the target class", async () => {
  const fixture = await fashionFixture();
  const targets = fixture.test.y.map((y) => (y + 1) % 10);
  const criterion = targetedMisclassification(targets);
  const result = await pgd({ steps: 20, relStepSize: 0.1 }).run(fixture.target, fixture.test.x, criterion, {
    epsilon: 0.2,
  });
  const success = await assertValidResult(fixture.target, fixture.test.x, criterion, "linf", 0.2, result);
  assert.ok(success > 0.5, `targeted success ${success}`);
  for (let i = 0; i < targets.length; i++) {
    if (result.success[i]) assert.equal(result.predicted[i], targets[i]);
  }
  result.adversarial.dispose();
  fixture.dispose();
});
