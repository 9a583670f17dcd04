import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { bpdaTarget } from "../src/attacks/bpda.ts";
import { bpda } from "../src/engine/bpda.ts";
import { pgd } from "../src/attacks/pgd.ts";
import { misclassification } from "../src/attacks/criteria.ts";
import { assertValidResult, fashionFixture } from "./attacks_fixture.ts";

/** A defense computed outside the tf graph (JavaScript rounding to 4 grey levels): no gradient flows. */
function quantise(x: tf.Tensor): tf.Tensor {
  const values = Float32Array.from(x.dataSync(), (v) => Math.round(v * 3) / 3);
  return tf.tensor(values, x.shape);
}

Deno.test("bpda passes the gradient at the preprocessed point straight through", async () => {
  const fixture = await fashionFixture({ trainPerClass: 50, epochs: 2, testCount: 6 });
  const baseline = tf.memory().numTensors;
  const x = fixture.test.x;
  const through = tf.grad((input: tf.Tensor) => tf.sum(fixture.target.scores(bpda(quantise)(input))))(x);
  const quantised = quantise(x);
  const direct = tf.grad((input: tf.Tensor) => tf.sum(fixture.target.scores(input)))(quantised);
  const difference = tf.tidy(() => tf.max(tf.abs(tf.sub(through, direct))));
  assert.ok((await difference.data())[0] < 1e-6);
  // A differentiable approximation replaces the identity in the backward pass.
  const scaled = tf.grad((input: tf.Tensor) => tf.sum(bpda(quantise, (z) => tf.mul(z, 2))(input)))(x);
  const offTwo = tf.tidy(() => tf.max(tf.abs(tf.sub(scaled, 2))));
  assert.equal((await offTwo.data())[0], 0);
  tf.dispose([through, quantised, direct, difference, scaled, offTwo]);
  assert.equal(tf.memory().numTensors, baseline);
  fixture.dispose();
});

Deno.test("pgd through a non-differentiable defense fails clearly without bpda and succeeds with it", async () => {
  const fixture = await fashionFixture({ testCount: 20 });
  const defended = { ...fixture.target, scores: (x: tf.Tensor) => fixture.target.scores(quantise(x)) };
  const kept = await (async () => {
    const labels = tf.tidy(() => tf.argMax(defended.scores(fixture.test.x), 1));
    const out = (await labels.data()) as Int32Array;
    labels.dispose();
    return out;
  })();
  const criterion = misclassification(kept);
  const attack = pgd({ steps: 10, relStepSize: 0.25 });
  // Without BPDA the gradient does not exist, and the attack says so.
  await assert.rejects(
    () => attack.run(defended, fixture.test.x, criterion, { epsilon: 0.15 }),
    /wrap that step with bpda/,
  );
  const adaptive = await attack.run(bpdaTarget(fixture.target, quantise), fixture.test.x, criterion, {
    epsilon: 0.15,
  });
  const adaptiveRate = await assertValidResult(defended, fixture.test.x, criterion, "linf", 0.15, adaptive);
  assert.ok(adaptiveRate > 0.5, `bpda success ${adaptiveRate}`);
  adaptive.adversarial.dispose();
  fixture.dispose();
});
