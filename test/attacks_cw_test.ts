import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { carliniWagnerL2, criterionMargins, logitsOf } from "../src/attacks/cw.ts";
import { criterionClasses, misclassification, targetedMisclassification } from "../src/attacks/criteria.ts";
import type { AttackResult, AttackTarget, Criterion } from "../src/attacks/types.ts";
import { assertValidResult, fashionFixture, rate } from "./attacks_fixture.ts";

const FAST = { steps: 100, binarySearchSteps: 5, initialConst: 0.1, stepSize: 0.05 };

async function successMargins(
  target: AttackTarget,
  criterion: Criterion,
  result: AttackResult,
): Promise<number[]> {
  const margins = tf.tidy(() =>
    criterionMargins(
      logitsOf(target, result.adversarial),
      criterionClasses(criterion),
      criterion.kind === "targeted",
    )
  );
  const values = Array.from((await margins.data()) as Float32Array);
  margins.dispose();
  return values.filter((_, i) => result.success[i] === 1);
}

function meanSuccessL2(result: AttackResult): number {
  const l2 = Array.from(result.distances.l2).filter((_, i) => result.success[i] === 1);
  return l2.reduce((a, b) => a + b, 0) / Math.max(1, l2.length);
}

Deno.test("cw-l2 successes are misclassified with a margin >= kappa; larger kappa costs more L2; bounded queries; no leaks", async () => {
  const fixture = await fashionFixture({ testCount: 30 });
  const baseline = tf.memory().numTensors;
  const criterion = misclassification(fixture.test.y);
  const means: number[] = [];
  for (const kappa of [0, 2]) {
    const attack = carliniWagnerL2({ ...FAST, confidence: kappa });
    const result = await attack.run(fixture.target, fixture.test.x, criterion, { epsilon: Infinity });
    const success = await assertValidResult(
      fixture.target,
      fixture.test.x,
      criterion,
      "l2",
      Infinity,
      result,
    );
    assert.ok(success >= 0.9, `kappa ${kappa}: success ${success}`);
    for (const margin of await successMargins(fixture.target, criterion, result)) {
      assert.ok(margin >= kappa, `margin ${margin} < kappa ${kappa}`);
    }
    for (const q of result.queries) {
      assert.ok(q >= 2 && q <= FAST.steps * FAST.binarySearchSteps + 1, `queries ${q}`);
    }
    means.push(meanSuccessL2(result));
    console.log(`cw-l2 kappa ${kappa}: success ${success}, mean L2 of successes ${means.at(-1)!.toFixed(3)}`);
    result.adversarial.dispose();
  }
  assert.ok(means[1] > means[0], `mean L2 with kappa 2 (${means[1]}) should exceed kappa 0 (${means[0]})`);
  assert.equal(tf.memory().numTensors, baseline);
  fixture.dispose();
});

Deno.test("cw-l2 success does not fall with more steps or a larger L2 budget; targeted cw reaches the target", async () => {
  const fixture = await fashionFixture({ testCount: 20 });
  const criterion = misclassification(fixture.test.y);
  const bySteps: number[] = [];
  for (const steps of [5, 50]) {
    const result = await carliniWagnerL2({ ...FAST, steps, binarySearchSteps: 3 }).run(
      fixture.target,
      fixture.test.x,
      criterion,
      { epsilon: Infinity },
    );
    bySteps.push(rate(result.success));
    result.adversarial.dispose();
  }
  assert.ok(bySteps[1] >= bySteps[0], `rates over steps ${bySteps}`);
  const byEpsilon: number[] = [];
  for (const epsilon of [0.3, 0.8, 3]) {
    const result = await carliniWagnerL2({ ...FAST, binarySearchSteps: 3 }).run(
      fixture.target,
      fixture.test.x,
      criterion,
      { epsilon },
    );
    byEpsilon.push(await assertValidResult(fixture.target, fixture.test.x, criterion, "l2", epsilon, result));
    result.adversarial.dispose();
  }
  for (let i = 1; i < byEpsilon.length; i++) {
    assert.ok(byEpsilon[i] >= byEpsilon[i - 1], `rates ${byEpsilon}`);
  }
  const targets = targetedMisclassification(fixture.test.y.map((y) => (y + 1) % 10));
  const targeted = await carliniWagnerL2({ ...FAST, confidence: 1 }).run(
    fixture.target,
    fixture.test.x,
    targets,
    {
      epsilon: Infinity,
    },
  );
  assert.ok(
    (await assertValidResult(fixture.target, fixture.test.x, targets, "l2", Infinity, targeted)) >= 0.9,
  );
  for (const margin of await successMargins(fixture.target, targets, targeted)) assert.ok(margin >= 1);
  targeted.adversarial.dispose();
  assert.throws(() => carliniWagnerL2({ confidence: -1 }), /confidence = -1 is invalid/);
  fixture.dispose();
});
