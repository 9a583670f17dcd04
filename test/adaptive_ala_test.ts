import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../src/data/dataset.ts";
import { misclassification, targetFromModel } from "../src/attacks/mod.ts";
import type { Attack, AttackBudget } from "../src/attacks/types.ts";
import { adaptiveBudgets, ala, iAla, rAla, sAla } from "../src/adaptive/mod.ts";
import { influenceAtLayer, partitionsOf, predictedLabels } from "../src/adaptive/influence.ts";
import { neuronInfluence, neuronOutputs } from "../src/nip/neurons.ts";
import { nipFixture } from "./nip_fixture.ts";

const fixture = await nipFixture();
const { split } = fixture;
const model = targetFromModel(split.model);

function bareLabels(x: tf.Tensor): Int32Array {
  return tf.tidy(() => (split.model.predict(x) as tf.Tensor).argMax(1).dataSync() as Int32Array);
}

Deno.test("influenceAtLayer equals neuronInfluence and its gradient (second order) matches central differences", () => {
  const before = tf.memory().numTensors;
  const x = toTensor(fixture.test, 0, 6);
  const labels = predictedLabels(split, x);
  const z0 = tf.tidy(() => split.body.apply(x) as tf.Tensor);
  const reference = tf.tidy(() => neuronInfluence(split.head, z0, tf.tensor1d(labels, "int32")));
  const mine = influenceAtLayer(split, z0, labels);
  const valueGap = tf.tidy(() => tf.max(tf.abs(tf.sub(reference, mine))).dataSync()[0]);
  assert.ok(valueGap < 1e-6, `values differ by ${valueGap}`);
  const z = tf.tidy(() => z0.add(tf.randomUniform(z0.shape, 0, 0.05, "float32", 3)));
  const direction = tf.randomNormal(z.shape, 0, 1, "float32", 5);
  const f = (input: tf.Tensor) =>
    tf.tidy(() =>
      tf.sum(tf.mean(tf.squaredDifference(influenceAtLayer(split, input, labels), reference), 1))
    ) as tf.Scalar;
  const analytic = tf.tidy(() => tf.sum(tf.mul(tf.grad(f)(z), direction)).dataSync()[0]);
  const h = 1e-4;
  const numeric = tf.tidy(() =>
    (f(z.add(direction.mul(h))).dataSync()[0] - f(z.sub(direction.mul(h))).dataSync()[0]) / (2 * h)
  );
  assert.ok(Math.abs(analytic) > 0);
  assert.ok(
    Math.abs(analytic - numeric) <= 0.05 * Math.abs(numeric) + 1e-7,
    `analytic ${analytic} vs numeric ${numeric}`,
  );
  tf.dispose([x, z0, reference, mine, z, direction]);
  assert.equal(tf.memory().numTensors, before);
});

const cases: [string, Attack, AttackBudget][] = [
  ["s-ala", sAla(split), { epsilon: 0.1, label: "L_inf 0.1" }],
  ["r-ala", rAla(split), { epsilon: 0.1, label: "L_inf 0.1" }],
  ["ala", ala(split), adaptiveBudgets["paper-ala"]],
  ["i-ala", iAla(split), adaptiveBudgets["paper-i-ala"]],
  ["i-ala (budget tighter than its steps)", iAla(split), { epsilon: 0.05 }],
];

for (const [name, attack, budget] of cases) {
  Deno.test(`${name} respects its budget and range; success means misclassified by the model`, async () => {
    const before = tf.memory().numTensors;
    const x = toTensor(fixture.test, 0, 40) as tf.Tensor4D;
    const labels = fixture.test.labels.slice(0, 40);
    const result = await attack.run(model, x, misclassification(labels), budget);
    const values = result.adversarial.dataSync();
    assert.ok(values.every((v) => v >= 0 && v <= 1), "out of range");
    const linf = tf.tidy(() => result.adversarial.sub(x).abs().max(1).max(1).max(1).dataSync());
    linf.forEach((d, i) =>
      assert.ok(d <= budget.epsilon + 1e-6, `example ${i}: L_inf ${d} > ${budget.epsilon}`)
    );
    const predicted = bareLabels(result.adversarial);
    result.success.forEach((s, i) => assert.equal(s === 1, predicted[i] !== labels[i], `flag ${i}`));
    assert.ok(result.distances.linf.some((d) => d > 0), "the attack must move");
    assert.ok(result.queries.every((q) => q > 0));
    tf.dispose([x, result.adversarial]);
    assert.equal(tf.memory().numTensors, before);
  });
}

Deno.test("S-ALA and R-ALA fool the model at the standard L_inf 0.3 budget", async () => {
  const x = toTensor(fixture.test, 0, 40) as tf.Tensor4D;
  const labels = fixture.test.labels.slice(0, 40);
  const correct = bareLabels(x).filter((l, i) => l === labels[i]).length;
  for (const attack of [sAla(split), rAla(split)]) {
    const result = await attack.run(model, x, misclassification(labels), { epsilon: 0.3 });
    const fooled = bareLabels(result.adversarial).filter((l, i) => l !== labels[i]).length;
    assert.ok(fooled >= correct, `${attack.name}: ${fooled} misclassified, ${correct} were correct`);
    result.adversarial.dispose();
  }
  x.dispose();
});

Deno.test("ALA strengthens the tail and weakens the front (the paper's text, not its Eq. 1)", async () => {
  const x = toTensor(fixture.test, 0, 40) as tf.Tensor4D;
  const labels = fixture.test.labels.slice(0, 40);
  const partitions = partitionsOf(split, x, 3, 3);
  const result = await ala(split).run(model, x, misclassification(labels), adaptiveBudgets["paper-ala"]);
  const [phiBefore, phiAfter] = tf.tidy(() => [
    neuronOutputs(split.body.apply(x) as tf.Tensor).arraySync(),
    neuronOutputs(split.body.apply(result.adversarial) as tf.Tensor).arraySync(),
  ]);
  let moved = 0;
  partitions.forEach(({ front, tail }, i) => {
    const tailMinusFront = (phi: number[]) =>
      tail.reduce((s, n) => s + phi[n], 0) - front.reduce((s, n) => s + phi[n], 0);
    if (tailMinusFront(phiAfter[i]) > tailMinusFront(phiBefore[i])) moved++;
  });
  assert.ok(moved >= 36, `tail - front grew on ${moved}/40 examples`);
  tf.dispose([x, result.adversarial]);
});

Deno.test("bad parameters are refused with the field named", () => {
  assert.throws(() => sAla(split, { lambda: -1 }), /lambda/);
  assert.throws(() => rAla(split, { steps: 0 }), /steps/);
  assert.throws(() => ala(split, { k1: 1.5 }), /k1/);
  assert.throws(() => iAla(split, { stepSize: 0 }), /stepSize/);
});
