import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../src/data/dataset.ts";
import { computeDistances, getAttack, misclassification, targetFromModel } from "../src/attacks/mod.ts";
import { saa } from "../src/adaptive/mod.ts";
import { adaptiveFixture } from "./adaptive_fixture.ts";

const { fixture, defense, pipeline } = await adaptiveFixture();
const model = targetFromModel(fixture.split.model);

Deno.test("SAA attacks again exactly the examples NIP defended successfully", async () => {
  const before = tf.memory().numTensors;
  const x = toTensor(fixture.test, 0, 80) as tf.Tensor4D;
  const labels = fixture.test.labels.slice(0, 80);
  const criterion = misclassification(labels);
  const budget = { epsilon: 0.1, label: "L_inf 0.1" };
  const base = getAttack("fgsm");
  // Stage 1 replayed independently (FGSM is deterministic): which examples did NIP defend successfully?
  const first = await base.run(model, x, criterion, budget);
  const firstDefense = defense.defendBatch(first.adversarial);
  const expected = Array.from(labels.keys()).filter((i) =>
    first.success[i] === 1 && firstDefense.labelsAfter[i] === labels[i]
  );
  assert.ok(expected.length > 0, "the fixture must have successfully defended examples");
  assert.ok(expected.length < 80);

  const result = await saa(base, pipeline).run(model, x, criterion, budget);
  assert.deepEqual(Array.from(result.secondStage), expected);
  assert.deepEqual(Array.from(result.firstStageSuccess), Array.from(first.success));
  // Examples not attacked again keep their first-stage adversarial example and cannot succeed.
  const [returned, firstValues] = [result.adversarial.arraySync(), first.adversarial.arraySync()];
  const again = new Set(expected);
  for (let i = 0; i < 80; i++) {
    if (!again.has(i)) {
      assert.deepEqual(returned[i], firstValues[i], `example ${i}`);
      assert.equal(result.success[i], 0);
    }
  }
  // Second-stage examples stay within the budget around the defended input they started from.
  result.secondStageDistance.forEach((d) => assert.ok(d <= budget.epsilon + 1e-5, `second-stage L_inf ${d}`));
  const start = tf.tidy(() => tf.gather(firstDefense.defended, tf.tensor1d(expected, "int32")));
  const secondRows = tf.tidy(() => tf.gather(result.adversarial, tf.tensor1d(expected, "int32")));
  const distances = await computeDistances(start, secondRows);
  distances.linf.forEach((d, j) => assert.ok(Math.abs(d - result.secondStageDistance[j]) < 1e-6));
  // Success means the defended pipeline misclassifies the returned example.
  const after = defense.defendBatch(result.adversarial);
  result.success.forEach((s, i) => {
    if (s === 1) assert.notEqual(after.labelsAfter[i], labels[i], `example ${i}`);
    if (again.has(i)) assert.equal(s === 1, after.labelsAfter[i] !== labels[i]);
  });
  assert.deepEqual(Array.from(result.predicted), Array.from(after.labelsAfter));
  assert.ok(result.queries.every((q, i) => q > first.queries[i]));
  tf.dispose([
    x,
    first.adversarial,
    firstDefense.defended,
    result.adversarial,
    start,
    secondRows,
    after.defended,
  ]);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("SAA refuses targeted criteria", async () => {
  const x = toTensor(fixture.test, 0, 4) as tf.Tensor4D;
  await assert.rejects(
    () =>
      saa(getAttack("fgsm"), pipeline).run(model, x, { kind: "targeted", targets: new Int32Array(4) }, {
        epsilon: 0.1,
      }),
    /untargeted/,
  );
  x.dispose();
});
