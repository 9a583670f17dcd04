import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  apgdCe,
  apgdCheckpoints,
  apgdDlr,
  apgdTargetedDlr,
  dlrLoss,
  targetedDlrLoss,
} from "../src/attacks/apgd.ts";
import { pgd } from "../src/attacks/pgd.ts";
import { misclassification, targetedMisclassification } from "../src/attacks/criteria.ts";
import { assertValidResult, fashionFixture, rate, setup } from "./attacks_fixture.ts";

Deno.test("apgd checkpoints follow Croce & Hein's schedule; DLR losses match their closed forms and have gradients", async () => {
  await setup();
  // p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06): 22, 41, 57, 70, 80, 87, 93, 99.
  assert.deepEqual(apgdCheckpoints(100), [21, 40, 56, 69, 79, 86, 92, 98]);
  assert.deepEqual(apgdCheckpoints(1), [0]);
  const scores = tf.tensor2d([[5, 1, 3, 2, 0]]);
  // y = 0, t = 2: -(5 - 3) / (5 - (2 + 1) / 2) = -2 / 3.5; untargeted: -(5 - 3) / (5 - 2).
  assert.ok(
    Math.abs(targetedDlrLoss(scores, Int32Array.of(0), Int32Array.of(2)).dataSync()[0] + 2 / 3.5) < 1e-6,
  );
  assert.ok(Math.abs(dlrLoss(scores, Int32Array.of(0)).dataSync()[0] + 2 / 3) < 1e-6);
  const g = tf.grad((s: tf.Tensor) =>
    tf.sum(targetedDlrLoss(s as tf.Tensor2D, Int32Array.of(0), Int32Array.of(2)))
  )(
    scores,
  );
  assert.ok(g.dataSync()[2] > 0 && g.dataSync()[0] < 0, `gradient ${g.dataSync()}`);
  tf.dispose([scores, g]);
});

Deno.test("apgd-ce, apgd-dlr and apgd-t-dlr respect bound and range; successes are misclassified; bounded queries; no leaks", async () => {
  const fixture = await fashionFixture({ testCount: 30 });
  const baseline = tf.memory().numTensors;
  const criterion = misclassification(fixture.test.y);
  const steps = 20, targetClasses = 3;
  for (
    const [attack, limit] of [
      [apgdCe({ steps }), steps + 2],
      [apgdDlr({ steps }), steps + 2],
      [apgdTargetedDlr({ steps, targetClasses }), 1 + targetClasses * (steps + 1) + 1],
    ] as const
  ) {
    for (const epsilon of [0.05, 0.1]) {
      const result = await attack.run(fixture.target, fixture.test.x, criterion, { epsilon });
      const success = await assertValidResult(
        fixture.target,
        fixture.test.x,
        criterion,
        "linf",
        epsilon,
        result,
      );
      assert.ok(epsilon < 0.1 || success > 0.6, `${attack.name} at ${epsilon}: ${success}`);
      for (const q of result.queries) {
        assert.ok(q >= 2 && q <= limit, `${attack.name} queries ${q} > ${limit}`);
      }
      result.adversarial.dispose();
    }
  }
  const l2 = apgdCe({ steps }, "l2");
  const result = await l2.run(fixture.target, fixture.test.x, criterion, { epsilon: 1.5 });
  assert.ok((await assertValidResult(fixture.target, fixture.test.x, criterion, "l2", 1.5, result)) > 0.5);
  result.adversarial.dispose();
  assert.equal(tf.memory().numTensors, baseline);
  fixture.dispose();
});

Deno.test("apgd success does not fall as epsilon, steps or restarts grow, and matches PGD at equal cost", async () => {
  const fixture = await fashionFixture({ testCount: 30 });
  const criterion = misclassification(fixture.test.y);
  const rates: number[] = [];
  for (const epsilon of [0.02, 0.04, 0.08, 0.16]) {
    const result = await apgdCe({ steps: 20 }).run(fixture.target, fixture.test.x, criterion, { epsilon });
    rates.push(rate(result.success));
    result.adversarial.dispose();
  }
  for (let i = 1; i < rates.length; i++) assert.ok(rates[i] >= rates[i - 1], `rates over epsilon ${rates}`);
  const bySteps: number[] = [];
  for (const steps of [5, 20, 60]) {
    const result = await apgdCe({ steps }).run(fixture.target, fixture.test.x, criterion, { epsilon: 0.04 });
    bySteps.push(rate(result.success));
    result.adversarial.dispose();
  }
  for (let i = 1; i < bySteps.length; i++) {
    assert.ok(bySteps[i] >= bySteps[i - 1], `rates over steps ${bySteps}`);
  }
  const once = await apgdCe({ steps: 10, seed: 4 }).run(fixture.target, fixture.test.x, criterion, {
    epsilon: 0.04,
  });
  const thrice = await apgdCe({ steps: 10, seed: 4, restarts: 3 }).run(
    fixture.target,
    fixture.test.x,
    criterion,
    {
      epsilon: 0.04,
    },
  );
  for (let i = 0; i < once.success.length; i++) if (once.success[i]) assert.equal(thrice.success[i], 1);
  const plain = await pgd({ steps: 20, relStepSize: 0.25 }).run(fixture.target, fixture.test.x, criterion, {
    epsilon: 0.04,
  });
  console.log(`apgd-ce (20 steps) vs pgd (20 steps) at L_inf 0.04: ${bySteps[1]} vs ${rate(plain.success)}`);
  assert.ok(
    bySteps[1] >= rate(plain.success) - 0.1,
    `apgd ${bySteps[1]} far below pgd ${rate(plain.success)}`,
  );
  tf.dispose([once.adversarial, thrice.adversarial, plain.adversarial]);
  fixture.dispose();
});

Deno.test("apgd-ce and apgd-t-dlr reach >= 99% at a large budget; targeted apgd reaches the target", async () => {
  const fixture = await fashionFixture({ testCount: 40 });
  const criterion = misclassification(fixture.test.y);
  for (const attack of [apgdCe({ steps: 50 }), apgdTargetedDlr({ steps: 50, targetClasses: 3 })]) {
    const result = await attack.run(fixture.target, fixture.test.x, criterion, { epsilon: 0.3 });
    const success = await assertValidResult(fixture.target, fixture.test.x, criterion, "linf", 0.3, result);
    console.log(`${attack.name} at L_inf 0.3: ${success}`);
    assert.ok(success >= 0.99, `${attack.name} success ${success}`);
    result.adversarial.dispose();
  }
  const targets = targetedMisclassification(fixture.test.y.map((y) => (y + 1) % 10));
  for (const [attack, floor] of [[apgdCe({ steps: 50 }), 0.8], [apgdDlr({ steps: 50 }), 0.5]] as const) {
    const targeted = await attack.run(fixture.target, fixture.test.x, targets, { epsilon: 0.3 });
    const success = await assertValidResult(fixture.target, fixture.test.x, targets, "linf", 0.3, targeted);
    console.log(`targeted ${attack.name} at L_inf 0.3: ${success}`);
    assert.ok(success > floor, `targeted ${attack.name} ${success}`);
    for (let i = 0; i < targets.targets.length; i++) {
      if (targeted.success[i]) assert.equal(targeted.predicted[i], targets.targets[i]);
    }
    targeted.adversarial.dispose();
  }
  assert.throws(() => apgdCe({ steps: 0 }), /steps = 0 is invalid/);
  assert.throws(() => apgdTargetedDlr({ targetClasses: 1.5 }), /targetClasses = 1.5 is invalid/);
  fixture.dispose();
});
