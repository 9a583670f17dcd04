import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { deployedDecision, detectionPgd } from "../src/adaptive/detection_pgd.ts";
import { toTensor } from "../src/data/dataset.ts";
import { mulberry32 } from "../src/random.ts";
import { detectionFixture } from "./detection_fixture.ts";

const { fixture, pipeline: detecting } = await detectionFixture();
const x = toTensor(fixture.test, 0, 40);
const labels = fixture.test.labels.slice(0, 40);

Deno.test("the detection's surrogate is -ln of a smoothed combined p-value close to the real one", () => {
  const pipeline = detecting();
  const stage = pipeline.detection!.stage;
  const outcome = pipeline.run(x, { verdictAfter: false, transforms: false, seed: 3 });
  outcome.defended.dispose();
  const surrogate = tf.tidy(() =>
    Array.from(
      stage.surrogateScore!({ x, forward: () => assert.fail("no shared forward"), random: mulberry32(3) })
        .dataSync(),
    )
  );
  // exp(-surrogate) is the smoothed combined p-value; the real one reads the same calibration exactly.
  let close = 0;
  surrogate.forEach((v, i) => {
    if (Math.abs(Math.exp(-v) - outcome.pValue![i]) < 0.1) close++;
  });
  assert.ok(
    close >= 0.8 * surrogate.length,
    `${close} of ${surrogate.length} within 0.1 of the real p-value`,
  );
  pipeline.dispose();
});

Deno.test("detection-aware PGD: every example it calls evading is misclassified and accepted by the deployed pipeline", () => {
  const pipeline = detecting();
  const before = tf.memory().numTensors;
  const result = detectionPgd(pipeline, x, labels, { epsilon: 0.1, steps: 10, weights: [1], seed: 2 });
  const evaded = Array.from(result.evaded.keys()).filter((i) => result.evaded[i] === 1);
  assert.ok(evaded.length > 0, "some example evades at L_inf 0.1");
  // The deployed check that marked them used its own seeds; nip-response's noise may differ here, so
  // check the deterministic part (the label) exactly and the flag on most.
  const decision = deployedDecision(pipeline, result.adversarial, 11);
  for (const i of evaded) assert.notEqual(decision.labels[i], labels[i], `example ${i} misclassified`);
  const accepted = evaded.filter((i) => decision.flagged[i] === 0).length;
  assert.ok(accepted >= 0.7 * evaded.length, `${accepted} of ${evaded.length} still accepted on a new draw`);
  // Within the ball and the input range.
  const distance = tf.tidy(() => result.adversarial.sub(x).abs().max().dataSync()[0]);
  assert.ok(distance <= 0.1 + 1e-6, `L_inf ${distance}`);
  const [lo, hi] = tf.tidy(
    () => [result.adversarial.min().dataSync()[0], result.adversarial.max().dataSync()[0]],
  );
  assert.ok(lo >= 0 && hi <= 1);
  result.adversarial.dispose();
  assert.equal(tf.memory().numTensors, before, "no tensor left");
  pipeline.dispose();
});

Deno.test("the detection-aware attack evades at least as often as the unaware one at the same budget", () => {
  const pipeline = detecting();
  const count = (weights: number[]) => {
    const result = detectionPgd(pipeline, x, labels, { epsilon: 0.1, steps: 20, weights, seed: 4 });
    result.adversarial.dispose();
    return result.evaded.reduce((a, b) => a + b, 0);
  };
  const unaware = count([0]);
  const aware = count([1, 10]);
  console.log(`evading at L_inf 0.1 (40 test images): unaware ${unaware}, aware ${aware}`);
  assert.ok(aware >= unaware, `aware ${aware} < unaware ${unaware}`);
  pipeline.dispose();
});

Deno.test("a pipeline without detection is refused by name", async () => {
  const { buildPipelines } = await import("../src/stages/registry.ts");
  const [pipeline] = buildPipelines([["cbdr"]], { split: fixture.split, modality: "image" });
  assert.throws(
    () => detectionPgd(pipeline, x, labels, { epsilon: 0.1 }),
    /pipeline cbdr has no detection stage/,
  );
  assert.throws(() => deployedDecision(pipeline, x, 1), /has no detection stage/);
  pipeline.dispose();
});
