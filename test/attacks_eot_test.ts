import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { eot, eotTarget, transforms } from "../src/attacks/eot.ts";
import { pgdL2 } from "../src/attacks/pgd.ts";
import { misclassification } from "../src/attacks/criteria.ts";
import { Rng } from "../src/attacks/rng.ts";
import { assertAttacksValid, fashionFixture, predict } from "./attacks_fixture.ts";
import type { AttackTarget } from "../src/attacks/types.ts";

async function survivalRate(
  target: AttackTarget,
  x: tf.Tensor,
  labels: Int32Array,
  draws: number,
): Promise<number> {
  const rng = new Rng(99);
  const transform = transforms.randomShift(2);
  let fooled = 0;
  for (let s = 0; s < draws; s++) {
    const noisy = transform(x, rng);
    const predicted = await predict(target, noisy);
    noisy.dispose();
    predicted.forEach((p, i) => fooled += p !== labels[i] ? 1 : 0);
  }
  return fooled / (draws * labels.length);
}

Deno.test("eot over Gaussian noise: bound and range hold, success is decided on the real target, no leaks", async () => {
  const fixture = await fashionFixture({ testCount: 20 });
  const attack = eot(pgdL2({ steps: 10, relStepSize: 0.25 }), {
    transform: transforms.gaussianNoise(0.3),
    samples: 4,
  });
  assert.equal(attack.name, "eot-pgd-l2");
  assert.equal(attack.norm, "l2");
  await assertAttacksValid(fixture, [[attack, 2.5]], {
    minSuccess: 0.5,
    check: (result) => {
      // Each wrapped query costs `samples` real queries, plus the final check on the real target.
      for (const q of result.queries) assert.equal(q, (10 + 1) * 4 + 1);
    },
  });
  fixture.dispose();
});

Deno.test("eot adversarials over random shifts survive shifts more often than plain pgd ones", async () => {
  const fixture = await fashionFixture({ testCount: 20 });
  const criterion = misclassification(fixture.test.y);
  const epsilon = 3;
  const plain = await pgdL2({ steps: 10, relStepSize: 0.25 }).run(fixture.target, fixture.test.x, criterion, {
    epsilon,
  });
  const robust = await eot(pgdL2({ steps: 10, relStepSize: 0.25 }), {
    transform: transforms.randomShift(2),
    samples: 8,
  })
    .run(fixture.target, fixture.test.x, criterion, { epsilon });
  const plainSurvival = await survivalRate(fixture.target, plain.adversarial, fixture.test.y, 10);
  const robustSurvival = await survivalRate(fixture.target, robust.adversarial, fixture.test.y, 10);
  assert.ok(robustSurvival > plainSurvival, `eot ${robustSurvival} <= plain ${plainSurvival}`);
  tf.dispose([plain.adversarial, robust.adversarial]);
  // The wrapped target averages probabilities over draws.
  const wrapped = eotTarget({ ...fixture.target }, transforms.randomShift(2), 3, new Rng(1));
  const scores = tf.tidy(() => tf.sum(tf.exp(wrapped.scores(fixture.test.x)), 1));
  for (const s of await scores.data()) assert.ok(Math.abs(s - 1) < 1e-4);
  scores.dispose();
  assert.throws(() => eot(pgdL2(), { samples: 0 }), /samples = 0 is invalid/);
  fixture.dispose();
});
