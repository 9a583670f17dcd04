import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { fgm, fgsm } from "../src/attacks/fgsm.ts";
import { misclassification } from "../src/attacks/criteria.ts";
import { assertAttacksValid, assertValidResult, fashionFixture, LINEAR, rate } from "./attacks_fixture.ts";

Deno.test("fgsm and fgm-l2 respect the norm bound and the input range; successes are misclassified", async () => {
  const fixture = await fashionFixture();
  await assertAttacksValid(fixture, [[fgsm(), 0.1], [fgm(), 1.5]], {
    minSuccess: 0.3,
    // One gradient query and one final check per example.
    check: (result) => assert.deepEqual([...new Set(result.queries)], [2]),
  });
  fixture.dispose();
});

Deno.test("fgsm success grows with epsilon; the paper's epsilon search never does worse than one step", async () => {
  const fixture = await fashionFixture();
  const criterion = misclassification(fixture.test.y);
  const rates: number[] = [];
  for (const epsilon of [0.005, 0.02, 0.08, 0.2]) {
    const result = await fgsm().run(fixture.target, fixture.test.x, criterion, { epsilon });
    rates.push(rate(result.success));
    result.adversarial.dispose();
  }
  for (let i = 1; i < rates.length; i++) assert.ok(rates[i] >= rates[i - 1], `rates ${rates}`);
  assert.ok(rates[3] > rates[0]);

  const single = await fgsm().run(fixture.target, fixture.test.x, criterion, { epsilon: 0.05 });
  const searched = await fgsm({ epsilonSearch: 20 }).run(fixture.target, fixture.test.x, criterion, {
    epsilon: 0.05,
  });
  await assertValidResult(fixture.target, fixture.test.x, criterion, "linf", 0.05, searched);
  for (let i = 0; i < single.success.length; i++) {
    if (single.success[i]) assert.equal(searched.success[i], 1);
    if (searched.success[i]) assert.ok(searched.distances.linf[i] <= single.distances.linf[i] + 1e-6);
    assert.ok(searched.queries[i] >= 3 && searched.queries[i] <= 1 + 20 + 1);
  }
  tf.dispose([single.adversarial, searched.adversarial]);
  fixture.dispose();
});

Deno.test("fgsm on a two-class linear model is eps * sign(w_other - w_true), clipped", async () => {
  // T-shirt (0) vs trouser (1): logits z = W^T x + b; the CE gradient is p_other * (w_other - w_true).
  const fixture = await fashionFixture({ ...LINEAR, classes: [0, 1], trainPerClass: 300, testPerClass: 20 });
  const { model, target, test } = fixture;
  const epsilon = 0.07;
  const result = await fgsm().run(target, test.x, misclassification(test.y), { epsilon });
  const kernel = (await model.layers[1].getWeights()[0].data()) as Float32Array; // [784, 2]
  const x = (await test.x.data()) as Float32Array;
  const adversarial = (await result.adversarial.data()) as Float32Array;
  // Where the logit margin passes ~87, p_other underflows to 0 in float32 and the gradient vanishes: skip those.
  const logits = tf.tidy(() => target.scores(test.x));
  const z = (await logits.data()) as Float32Array;
  logits.dispose();
  const representable = test.y.map((_, i) => Math.abs(z[i * 2] - z[i * 2 + 1]) < 60 ? 1 : 0);
  const kept = representable.reduce((a, b) => a + b, 0);
  assert.ok(
    kept >= test.y.length / 2,
    `only ${kept} of ${test.y.length} examples have a representable gradient`,
  );
  let compared = 0;
  for (let i = 0; i < test.y.length; i++) {
    if (!representable[i]) continue;
    const truth = test.y[i];
    for (let p = 0; p < 784; p++) {
      const difference = kernel[p * 2 + (1 - truth)] - kernel[p * 2 + truth];
      // Where the two columns nearly cancel, float32 rounding of (p_true - 1) vs -p_other decides the sign.
      const scale = Math.abs(kernel[p * 2]) + Math.abs(kernel[p * 2 + 1]);
      if (Math.abs(difference) < 1e-3 * scale + 1e-6) continue;
      const expected = Math.min(1, Math.max(0, x[i * 784 + p] + epsilon * Math.sign(difference)));
      assert.ok(Math.abs(adversarial[i * 784 + p] - expected) < 1e-6, `example ${i} pixel ${p}`);
      compared++;
    }
  }
  assert.ok(compared > 0.9 * kept * 784, `compared ${compared}`);
  result.adversarial.dispose();
  fixture.dispose();
});

Deno.test("fgsm on a ten-class linear model is eps * sign(sum_k p_k w_k - w_true), clipped", async () => {
  const fixture = await fashionFixture({ ...LINEAR, trainPerClass: 100, testPerClass: 3, testCount: 20 });
  const { model, target, test } = fixture;
  const epsilon = 0.03;
  const result = await fgsm().run(target, test.x, misclassification(test.y), { epsilon });
  const kernel = (await model.layers[1].getWeights()[0].data()) as Float32Array; // [784, 10]
  const probabilities = tf.tidy(() => tf.softmax(target.scores(test.x)));
  const p = (await probabilities.data()) as Float32Array;
  const x = (await test.x.data()) as Float32Array;
  const adversarial = (await result.adversarial.data()) as Float32Array;
  let agree = 0, compared = 0;
  for (let i = 0; i < test.y.length; i++) {
    for (let q = 0; q < 784; q++) {
      let gradient = -kernel[q * 10 + test.y[i]];
      for (let k = 0; k < 10; k++) gradient += p[i * 10 + k] * kernel[q * 10 + k];
      if (Math.abs(gradient) < 1e-6) continue;
      const expected = Math.min(1, Math.max(0, x[i * 784 + q] + epsilon * Math.sign(gradient)));
      compared++;
      if (Math.abs(adversarial[i * 784 + q] - expected) < 1e-6) agree++;
    }
  }
  assert.ok(compared > 0.9 * test.y.length * 784);
  assert.ok(agree / compared > 0.9999, `agreement ${agree}/${compared}`);
  tf.dispose([result.adversarial, probabilities]);
  fixture.dispose();
});

Deno.test("fgsm rejects bad budgets, mismatched criteria and non-differentiable targets with clear errors", async () => {
  const fixture = await fashionFixture({ trainPerClass: 30, epochs: 1, testCount: 4 });
  const x = fixture.test.x;
  const criterion = misclassification(fixture.test.y);
  await assert.rejects(
    () => fgsm().run(fixture.target, x, criterion, { epsilon: -1 }),
    /epsilon must be a number >= 0/,
  );
  await assert.rejects(
    () => fgsm().run(fixture.target, x, criterion, { epsilon: Infinity }),
    /must be finite/,
  );
  await assert.rejects(
    () => fgsm().run(fixture.target, x, misclassification([0]), { epsilon: 0.1 }),
    /labels has 1 entries/,
  );
  await assert.rejects(
    () => fgsm().run(fixture.target, x, misclassification(fixture.test.y.map(() => 12)), { epsilon: 0.1 }),
    /labels\[0\] = 12 but the target has 10 classes/,
  );
  await assert.rejects(
    () => fgsm().run({ ...fixture.target, differentiable: false }, x, criterion, { epsilon: 0.1 }),
    /white-box and needs gradients/,
  );
  assert.throws(() => fgsm({ epsilonSearch: -2 }), /epsilonSearch/);
  fixture.dispose();
});
