import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { uap } from "../src/attacks/uap.ts";
import { Rng } from "../src/attacks/rng.ts";
import { misclassification } from "../src/attacks/criteria.ts";
import { assertValidResult, correctOnly, fashionFixture, loadFashion, rate } from "./attacks_fixture.ts";

Deno.test("a UAP learned on a training split transfers to the test split better than random noise of the same norm; no leaks", async () => {
  const fixture = await fashionFixture({ testCount: 80 });
  const held = await loadFashion(15, 400); // training-split images the model was not trained on
  const train = await correctOnly(fixture.target, held, 120);
  held.x.dispose();
  const baseline = tf.memory().numTensors;
  const criterion = misclassification(fixture.test.y);
  const epsilon = 0.1;
  const attack = uap({ maxIter: 3, inner: "pgd", batchSize: 10 });
  const learned = await attack.learn(fixture.target, train.x, train.y, { epsilon });
  assert.deepEqual(learned.perturbation.shape, [1, 28, 28, 1]);
  const largest = tf.tidy(() => tf.max(tf.abs(learned.perturbation)));
  assert.ok((await largest.data())[0] <= epsilon + 1e-6);
  largest.dispose();
  assert.ok(learned.passes >= 1 && learned.passes <= 3);
  // Per learning example: per pass one check + the inner PGD (10 steps + 1) + the fooling-rate check.
  for (const q of learned.queries) assert.ok(q >= 2 && q <= 3 * (1 + 11 + 1), `learning queries ${q}`);
  const applied = await attack.apply(learned.perturbation).run(fixture.target, fixture.test.x, criterion, {
    epsilon,
  });
  const transfer = await assertValidResult(
    fixture.target,
    fixture.test.x,
    criterion,
    "linf",
    epsilon,
    applied,
  );
  for (const q of applied.queries) assert.equal(q, 1);
  const rng = new Rng(11);
  const noise = tf.tensor4d(
    Float32Array.from({ length: 784 }, () => (rng.next() < 0.5 ? -epsilon : epsilon)),
    [
      1,
      28,
      28,
      1,
    ],
  );
  const random = await attack.apply(noise).run(fixture.target, fixture.test.x, criterion, { epsilon });
  const control = rate(random.success);
  console.log(
    `uap L_inf ${epsilon}: fooling rate on the learning set ${learned.foolingRate.toFixed(3)}, ` +
      `on the held-out test split ${transfer.toFixed(3)}; random +-epsilon noise ${control.toFixed(3)}`,
  );
  assert.ok(transfer > control + 0.05, `UAP ${transfer} vs random ${control}`);
  tf.dispose([learned.perturbation, applied.adversarial, noise, random.adversarial]);
  assert.equal(tf.memory().numTensors, baseline);
  train.x.dispose();
  fixture.dispose();
});

Deno.test("uap run (learn on the attacked batch) respects bound and range; transfer success does not fall with epsilon", async () => {
  const fixture = await fashionFixture({ testCount: 40 });
  const criterion = misclassification(fixture.test.y);
  const train = await correctOnly(fixture.target, await loadFashion(10, 400), 80);
  const rates: number[] = [];
  for (const epsilon of [0.05, 0.1, 0.2]) {
    const attack = uap({ maxIter: 2, inner: "pgd", batchSize: 10 });
    const learned = await attack.learn(fixture.target, train.x, train.y, { epsilon });
    const applied = await attack.apply(learned.perturbation).run(fixture.target, fixture.test.x, criterion, {
      epsilon,
    });
    rates.push(rate(applied.success));
    tf.dispose([learned.perturbation, applied.adversarial]);
  }
  assert.ok(rates[2] >= rates[0] && rates[2] > 0, `held-out rates over epsilon ${rates}`);
  // ART-style run with the DeepFool inner step (the paper's setting, few examples to keep it fast).
  const x = fixture.test.x.slice([0, 0, 0, 0], [12, -1, -1, -1]);
  const small = misclassification(fixture.test.y.slice(0, 12));
  const result = await uap({ maxIter: 3 }).run(fixture.target, x, small, { epsilon: 0.1 });
  await assertValidResult(fixture.target, x, small, "linf", 0.1, result);
  assert.ok(Math.max(...result.queries) >= 3, "learning queries are counted");
  tf.dispose([x, result.adversarial, train.x]);
  const wrong = tf.zeros([1, 5, 5, 1]) as tf.Tensor4D;
  await assert.rejects(
    () => uap().apply(wrong).run(fixture.target, fixture.test.x, criterion, { epsilon: 0.1 }),
    /does not match the batch's images/,
  );
  wrong.dispose();
  assert.throws(() => uap({ inner: "bim" as "pgd" }), /inner = bim is invalid/);
  fixture.dispose();
});
