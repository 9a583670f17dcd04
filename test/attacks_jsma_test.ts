import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { jsma } from "../src/attacks/jsma.ts";
import { getAttack } from "../src/attacks/registry.ts";
import { budgetPreset, paperAttackSettings } from "../src/attacks/presets.ts";
import { misclassification, targetedMisclassification } from "../src/attacks/criteria.ts";
import { assertValidResult, fashionFixture, rate } from "./attacks_fixture.ts";

Deno.test("jsma changes few pixels by multiples of theta within the range; successes are misclassified; bounded queries; no leaks", async () => {
  const fixture = await fashionFixture({ testCount: 20 });
  const baseline = tf.memory().numTensors;
  const criterion = misclassification(fixture.test.y);
  const maxIter = 200;
  const result = await jsma({ maxIter }).run(fixture.target, fixture.test.x, criterion, {
    epsilon: Infinity,
  });
  const success = await assertValidResult(fixture.target, fixture.test.x, criterion, "l0", Infinity, result);
  assert.ok(success >= 0.5, `success ${success}`);
  for (const q of result.queries) assert.ok(q >= 1 && q <= maxIter + 2, `queries ${q}`);
  // Each element moves by whole theta steps (or stops at the range's edge), at most 7 times.
  const delta = tf.tidy(() => tf.abs(tf.sub(result.adversarial, fixture.test.x)));
  const moved = (await delta.data()) as Float32Array;
  const [adv] = [(await result.adversarial.data()) as Float32Array];
  for (let j = 0; j < moved.length; j++) {
    if (moved[j] < 1e-6) continue;
    const steps = moved[j] / 0.1;
    const atEdge = adv[j] <= 1e-6 || adv[j] >= 1 - 1e-6;
    assert.ok(atEdge || Math.abs(steps - Math.round(steps)) < 1e-3, `element ${j} moved ${moved[j]}`);
    assert.ok(moved[j] <= 0.7 + 1e-5);
  }
  const l0 = Array.from(result.distances.l0).filter((_, i) => result.success[i] === 1).sort((a, b) => a - b);
  console.log(
    `jsma (200 iterations): success ${success}, median L0 of successes ${l0[l0.length >> 1]} pixels`,
  );
  tf.dispose([delta, result.adversarial]);
  assert.equal(tf.memory().numTensors, baseline);
  fixture.dispose();
});

Deno.test("jsma success does not fall with more iterations or a larger L0 budget; targeted jsma hits the target", async () => {
  const fixture = await fashionFixture({ testCount: 20 });
  const criterion = misclassification(fixture.test.y);
  const byIter: number[] = [];
  for (const maxIter of [10, 40, 150]) {
    const result = await jsma({ maxIter }).run(fixture.target, fixture.test.x, criterion, {
      epsilon: Infinity,
    });
    byIter.push(rate(result.success));
    result.adversarial.dispose();
  }
  for (let i = 1; i < byIter.length; i++) {
    assert.ok(byIter[i] >= byIter[i - 1], `rates over iterations ${byIter}`);
  }
  const byBudget: number[] = [];
  for (const epsilon of [5, 15, 40]) {
    const result = await jsma({ maxIter: 150 }).run(fixture.target, fixture.test.x, criterion, { epsilon });
    byBudget.push(await assertValidResult(fixture.target, fixture.test.x, criterion, "l0", epsilon, result));
    result.adversarial.dispose();
  }
  for (let i = 1; i < byBudget.length; i++) {
    assert.ok(byBudget[i] >= byBudget[i - 1], `rates over L0 ${byBudget}`);
  }
  const targets = targetedMisclassification(fixture.test.y.map((y) => (y + 1) % 10));
  const targeted = await jsma({ maxIter: 2000 }).run(fixture.target, fixture.test.x, targets, {
    epsilon: Infinity,
  });
  assert.ok(
    (await assertValidResult(fixture.target, fixture.test.x, targets, "l0", Infinity, targeted)) >= 0.9,
  );
  for (let i = 0; i < targets.targets.length; i++) {
    if (targeted.success[i]) assert.equal(targeted.predicted[i], targets.targets[i]);
  }
  targeted.adversarial.dispose();
  assert.throws(() => jsma({ theta: 0 }), /theta = 0 is invalid/);
  fixture.dispose();
});

Deno.test("jsma runs with the paper's Table 2 setting", async () => {
  const fixture = await fashionFixture({ trainPerClass: 50, epochs: 3, testCount: 8 });
  const setting = paperAttackSettings.find((s) => s.paperName === "JSMA")!;
  const attack = getAttack(setting.attack, setting.params as Record<string, unknown>);
  const criterion = misclassification(fixture.test.y);
  const result = await attack.run(fixture.target, fixture.test.x, criterion, budgetPreset(setting.budget));
  const success = await assertValidResult(fixture.target, fixture.test.x, criterion, "l0", Infinity, result);
  assert.ok(success > 0.5, `paper jsma success ${success}`);
  assert.match(result.budgetLabel, /JSMA/);
  result.adversarial.dispose();
  fixture.dispose();
});
