import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { deployedDecision } from "../src/adaptive/detection_pgd.ts";
import { rejectingTarget } from "../src/adaptive/rejecting_target.ts";
import { getAttack } from "../src/attacks/registry.ts";
import { toTensor } from "../src/data/dataset.ts";
import { detectionFixture } from "./detection_fixture.ts";

const { fixture, pipeline: detecting } = await detectionFixture();

Deno.test("a flagged query answers all mass on the true label; an accepted one the model's scores", () => {
  // alpha 0.5 flags about half of the benign inputs, so both kinds occur.
  const pipeline = detecting(0.5);
  const x = toTensor(fixture.test, 0, 30);
  const labels = fixture.test.labels.slice(0, 30);
  const target = rejectingTarget(pipeline, x, labels, 0.1, 1);
  // Rows queried out of order, as attacks query subsets: rows 29..0.
  const reversed = tf.reverse(x, 0);
  const before = tf.memory().numTensors;
  const scores = target.scores(reversed);
  const values = scores.arraySync();
  scores.dispose();
  assert.equal(tf.memory().numTensors, before);
  const model = tf.tidy(() => (fixture.split.model.predict(reversed) as tf.Tensor).arraySync() as number[][]);
  let flagged = 0;
  values.forEach((row, r) => {
    const original = 29 - r;
    const oneHot = row.every((v, k) => v === (k === labels[original] ? 1 : 0));
    if (oneHot) flagged++;
    else row.forEach((v, k) => assert.ok(Math.abs(v - model[r][k]) < 1e-5, `row ${r} class ${k}`));
  });
  assert.ok(flagged > 0 && flagged < 30, `${flagged} of 30 flagged at alpha 0.5`);
  assert.equal(target.rejected(), flagged);
  assert.equal(target.differentiable, false);
  tf.dispose([reversed, x]);
  pipeline.dispose();
});

Deno.test("Square against the deployed decision ends on inputs the pipeline accepts or on failures", async () => {
  // alpha 0.3: rejections are frequent enough to meet within 50 iterations.
  const pipeline = detecting(0.3);
  const x = toTensor(fixture.test, 0, 20);
  const labels = fixture.test.labels.slice(0, 20);
  const target = rejectingTarget(pipeline, x, labels, 0.1, 2);
  const result = await getAttack("square-linf", { steps: 50, seed: 1 }).run(
    target,
    x as tf.Tensor4D,
    { kind: "misclassification", labels },
    { epsilon: 0.1 },
  );
  // What the attack reports as a success was, on its final query, accepted and misclassified.
  const decision = deployedDecision(pipeline, result.adversarial, 9);
  for (let i = 0; i < 20; i++) {
    if (result.success[i] === 1) assert.notEqual(decision.labels[i], labels[i], `example ${i}`);
  }
  assert.ok(target.rejected() > 0, "some queries were rejected");
  tf.dispose([x, result.adversarial]);
  pipeline.dispose();
});

Deno.test("originals closer than 2 epsilon, and queries outside every ball, are refused", () => {
  const pipeline = detecting();
  const x = toTensor(fixture.test, 0, 3);
  const twins = tf.concat([x, x.add(0.05).clipByValue(0, 1)]);
  assert.throws(
    () => rejectingTarget(pipeline, twins, new Int32Array(6), 0.1),
    /originals 0 and 3 are within 2 \* epsilon = 0.2/,
  );
  // alpha 0.99 flags nearly every input, so the far query must be matched and is not.
  const strict = detecting(0.99);
  const target = rejectingTarget(strict, x, new Int32Array(3), 0.01);
  const far = tf.onesLike(x);
  assert.throws(() => target.scores(far), /farther than 0.01 from every original/);
  tf.dispose([x, twins, far]);
  pipeline.dispose();
  strict.dispose();
});
