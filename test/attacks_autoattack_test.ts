import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { autoAttack, worstCaseEnsemble } from "../src/attacks/autoattack.ts";
import { apgdCe } from "../src/attacks/apgd.ts";
import { fgsm } from "../src/attacks/fgsm.ts";
import { pgd } from "../src/attacks/pgd.ts";
import { getAttack } from "../src/attacks/registry.ts";
import { budgetPreset, paperAttackSettings } from "../src/attacks/presets.ts";
import { misclassification } from "../src/attacks/criteria.ts";
import { assertValidResult, fashionFixture, rate } from "./attacks_fixture.ts";

Deno.test("worst-case ensemble: an example is broken when any member breaks it; queries are summed; no leaks", async () => {
  const fixture = await fashionFixture({ testCount: 30 });
  const baseline = tf.memory().numTensors;
  const criterion = misclassification(fixture.test.y);
  const epsilon = 0.06;
  const weak = fgsm(), strong = pgd({ steps: 10, relStepSize: 0.25, randomStart: false });
  const ensemble = worstCaseEnsemble("fgsm+pgd", "linf", [{ attack: weak, epsilon: 0.03 }, {
    attack: strong,
  }]);
  const result = await ensemble.run(fixture.target, fixture.test.x, criterion, { epsilon });
  await assertValidResult(fixture.target, fixture.test.x, criterion, "linf", epsilon, result);
  const first = await weak.run(fixture.target, fixture.test.x, criterion, { epsilon: 0.03 });
  const second = await strong.run(fixture.target, fixture.test.x, criterion, { epsilon });
  assert.ok(
    rate(first.success) < rate(second.success) && rate(second.success) < 1,
    "members too alike for a test",
  );
  for (let i = 0; i < result.success.length; i++) {
    assert.equal(result.success[i], first.success[i] | second.success[i], `example ${i}`);
    // Deterministic members: the second runs only where the first failed; plus the ensemble's final check.
    const expected = first.queries[i] + (first.success[i] ? 0 : second.queries[i]) + 1;
    assert.equal(result.queries[i], expected, `example ${i} queries`);
  }
  tf.dispose([result.adversarial, first.adversarial, second.adversarial]);
  assert.equal(tf.memory().numTensors, baseline);
  fixture.dispose();
});

Deno.test("autoattack is at least as strong as its first member, bounded in queries, and >= 99% at a large budget", async () => {
  const fixture = await fashionFixture({ testCount: 30 });
  const criterion = misclassification(fixture.test.y);
  const params = { steps: 10, targetClasses: 3, squareQueries: 100 };
  const epsilon = 0.03;
  const result = await autoAttack(params).run(fixture.target, fixture.test.x, criterion, { epsilon });
  const success = await assertValidResult(fixture.target, fixture.test.x, criterion, "linf", epsilon, result);
  const ce = await apgdCe({ steps: 10 }).run(fixture.target, fixture.test.x, criterion, { epsilon });
  for (let i = 0; i < ce.success.length; i++) if (ce.success[i]) assert.equal(result.success[i], 1);
  const limit = (10 + 2) + (1 + 3 * 11 + 1) + (100 + 2) + 1;
  for (const q of result.queries) assert.ok(q >= 2 && q <= limit, `queries ${q} > ${limit}`);
  console.log(`autoattack at L_inf ${epsilon}: ${success} (apgd-ce alone ${rate(ce.success)})`);
  const large = await autoAttack(params).run(fixture.target, fixture.test.x, criterion, { epsilon: 0.3 });
  assert.ok((await assertValidResult(fixture.target, fixture.test.x, criterion, "linf", 0.3, large)) >= 0.99);
  const l2 = await getAttack("autoattack-l2", params).run(fixture.target, fixture.test.x, criterion, {
    epsilon: 1,
  });
  await assertValidResult(fixture.target, fixture.test.x, criterion, "l2", 1, l2);
  tf.dispose([result.adversarial, ce.adversarial, large.adversarial, l2.adversarial]);
  fixture.dispose();
});

Deno.test("autoattack-paper (the paper's Auto row) runs from paperAttackSettings and beats FGSM alone", async () => {
  const fixture = await fashionFixture({ testCount: 30 });
  const baseline = tf.memory().numTensors;
  const criterion = misclassification(fixture.test.y);
  const setting = paperAttackSettings.find((s) => s.paperName === "Auto")!;
  const attack = getAttack(setting.attack, setting.params as Record<string, unknown>);
  const budget = budgetPreset(setting.budget);
  const result = await attack.run(fixture.target, fixture.test.x, criterion, budget);
  const success = await assertValidResult(fixture.target, fixture.test.x, criterion, "linf", 0.2, result);
  assert.equal(result.budgetLabel, "paper App. A Table 2: Auto L_inf 0.2");
  const alone = await fgsm().run(fixture.target, fixture.test.x, criterion, { epsilon: 0.2 });
  assert.ok(success >= rate(alone.success));
  console.log(`autoattack-paper at the paper budget: ${success} (fgsm alone ${rate(alone.success)})`);
  // At a budget FGSM and PGD cannot fully use, the members' own epsilons are capped by the budget.
  const capped = await attack.run(fixture.target, fixture.test.x, criterion, { epsilon: 0.02 });
  await assertValidResult(fixture.target, fixture.test.x, criterion, "linf", 0.02, capped);
  tf.dispose([result.adversarial, alone.adversarial, capped.adversarial]);
  assert.equal(tf.memory().numTensors, baseline);
  fixture.dispose();
});
