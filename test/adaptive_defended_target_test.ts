import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../src/data/dataset.ts";
import {
  attackLoss,
  getAttack,
  lossGradient,
  misclassification,
  targetFromModel,
} from "../src/attacks/mod.ts";
import { defendedTarget } from "../src/adaptive/mod.ts";
import { DefensePipeline } from "../src/stages/pipeline.ts";
import { buildStages } from "../src/stages/registry.ts";
import { adaptiveFixture } from "./adaptive_fixture.ts";

const { fixture, profile, defense, pipeline } = await adaptiveFixture();

Deno.test("the defended target's scores are the defended pipeline's", () => {
  const before = tf.memory().numTensors;
  const x = toTensor(fixture.test, 0, 40);
  const outcome = defense.defendBatch(x);
  const scores = tf.tidy(() => defendedTarget(pipeline).scores(x).dataSync());
  outcome.scoresAfter.forEach((v, i) => assert.ok(Math.abs(v - scores[i]) < 1e-5, `score ${i}`));
  tf.dispose([x, outcome.defended]);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("BPDA gradient is finite, non-zero and equals the gradient with the matched candidate held fixed", () => {
  assert.equal(defense.scaleRule, "paper");
  const before = tf.memory().numTensors;
  const x = toTensor(fixture.test, 0, 30);
  const labels = fixture.test.labels.slice(0, 30);
  const criterion = misclassification(labels);
  const target = defendedTarget(pipeline);
  const { gradient, scores } = lossGradient(target, x, criterion);
  // Reference built by hand from the profile: x + alpha * Mean(x) * rho_c / (max rho_c - min rho_c), clipped
  // (paper Eq. 8), with c the candidate matched to x, through the model.
  const candidates = defense.match(x).index;
  const m = profile.candidateCount;
  const reference = tf.tidy(() => {
    const rho = tf.tensor(profile.rho, [m, ...profile.inputShape]).gather(tf.tensor1d(candidates, "int32"));
    const flat = rho.reshape([30, -1]);
    const normalized = flat.div(flat.max(1, true).sub(flat.min(1, true))).reshape(x.shape);
    const model = targetFromModel(fixture.split.model);
    const f = (input: tf.Tensor) => {
      const step = input.reshape([30, -1]).mean(1).mul(defense.strength).reshape([30, 1, 1, 1]);
      const defended = input.add(normalized.mul(step)).clipByValue(0, 1);
      return tf.sum(attackLoss(model, model.scores(defended), criterion));
    };
    return tf.grad(f)(x);
  });
  const [g, r, bareGradient] = tf.tidy(() => {
    const bare = lossGradient(targetFromModel(fixture.split.model), x, criterion);
    tf.dispose(bare.scores);
    return [gradient.dataSync(), reference.dataSync(), bare.gradient.dataSync()];
  });
  assert.ok(g.every(Number.isFinite));
  const scale = Math.max(...Array.from(r, Math.abs));
  assert.ok(scale > 0, "gradient must not vanish");
  let maxDifference = 0;
  let bareDifference = 0;
  g.forEach((v, i) => {
    maxDifference = Math.max(maxDifference, Math.abs(v - r[i]));
    bareDifference = Math.max(bareDifference, Math.abs(v - bareGradient[i]));
  });
  assert.ok(
    maxDifference <= 1e-4 * scale,
    `BPDA vs fixed-candidate gradient: ${maxDifference} (scale ${scale})`,
  );
  assert.ok(bareDifference > 1e-3 * scale, "the defense must be in the gradient's path");
  tf.dispose([x, gradient, scores, reference]);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("PGD with BPDA at L_inf 0.3 defeats the defended pipeline (>= 90%), checked by re-defending", async () => {
  const before = tf.memory().numTensors;
  const all = toTensor(fixture.test, 0, 60) as tf.Tensor4D;
  const allLabels = fixture.test.labels.slice(0, 60);
  const clean = defense.defendBatch(all);
  clean.defended.dispose();
  const keep = Array.from(allLabels.keys()).filter((i) => clean.labelsAfter[i] === allLabels[i]);
  const x = tf.tidy(() => all.gather(tf.tensor1d(keep, "int32"))) as tf.Tensor4D;
  const labels = Int32Array.from(keep, (i) => allLabels[i]);
  const result = await getAttack("pgd-linf", { steps: 20 }).run(
    defendedTarget(pipeline),
    x,
    misclassification(labels),
    {
      epsilon: 0.3,
    },
  );
  const after = defense.defendBatch(result.adversarial);
  const fooled = labels.filter((l, i) => after.labelsAfter[i] !== l).length;
  assert.ok(fooled >= 0.9 * labels.length, `PGD-BPDA fooled ${fooled}/${labels.length}`);
  result.success.forEach((s, i) => assert.equal(s === 1, after.labelsAfter[i] !== labels[i], `flag ${i}`));
  assert.ok(result.distances.linf.every((d) => d <= 0.3 + 1e-6));
  const values = result.adversarial.dataSync();
  assert.ok(values.every((v) => v >= 0 && v <= 1));
  tf.dispose([all, x, result.adversarial, after.defended]);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("query-only target refuses white-box attacks; EOT hook needs a randomisation and averages draws", async () => {
  const before = tf.memory().numTensors;
  const x = toTensor(fixture.test, 0, 8) as tf.Tensor4D;
  const labels = fixture.test.labels.slice(0, 8);
  const queryOnly = defendedTarget(pipeline, { differentiable: false });
  assert.equal(queryOnly.differentiable, false);
  await assert.rejects(
    () => getAttack("pgd-linf").run(queryOnly, x, misclassification(labels), { epsilon: 0.1 }),
    TypeError,
  );
  assert.throws(() => defendedTarget(pipeline, { samples: 3 }), RangeError);
  // Two draws: the identity and a small shift; EOT scores are their mean.
  const shift = (input: tf.Tensor, draw: number) =>
    draw === 0 ? input : tf.tidy(() => input.add(0.01).clipByValue(0, 1));
  const eot = defendedTarget(pipeline, { samples: 2, randomize: shift });
  const [mean, first, second] = tf.tidy(() => {
    const shifted = shift(x, 1);
    return [
      eot.scores(x).dataSync(),
      defendedTarget(pipeline).scores(x).dataSync(),
      defendedTarget(pipeline).scores(shifted).dataSync(),
    ];
  });
  mean.forEach((v, i) => assert.ok(Math.abs(v - (first[i] + second[i]) / 2) < 1e-5));
  x.dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("through an input transformation BPDA's gradient is the model's at the transformed input; PGD defeats it", async () => {
  const stages = buildStages(["jc"], { split: fixture.split, modality: "image" });
  const jpeg = new DefensePipeline(fixture.split, stages);
  const x = toTensor(fixture.test, 0, 30) as tf.Tensor4D;
  const labels = fixture.test.labels.slice(0, 30);
  const before = tf.memory().numTensors;
  const target = defendedTarget(jpeg);
  const loss = (scores: (input: tf.Tensor) => tf.Tensor2D) => (input: tf.Tensor) =>
    tf.tidy(() => attackLoss(target, scores(input), misclassification(labels)).sum());
  const through = tf.tidy(() => tf.grad(loss(target.scores))(x).dataSync());
  const transformed = jpeg.run(x);
  const atTransformed = tf.tidy(() =>
    tf.grad(loss((input) => fixture.split.model.apply(input) as tf.Tensor2D))(transformed.defended).dataSync()
  );
  // BPDA's value is x + (T(x) - x), T(x) up to float rounding; where max-pooling sees a tie in JPEG's flat
  // areas the rounding may route a gradient to the tied neighbour, so a few elements move within a window.
  const same = through.filter((g, i) => Math.abs(g - atTransformed[i]) < 1e-6).length;
  assert.ok(same >= 0.99 * through.length, `${same}/${through.length} gradient entries agree`);
  const size = through.length / 30;
  const exampleSum = (values: ArrayLike<number>, e: number) =>
    Array.from(values).slice(e * size, (e + 1) * size).reduce((a, b) => a + b, 0);
  for (let e = 0; e < 30; e++) {
    assert.ok(Math.abs(exampleSum(through, e) - exampleSum(atTransformed, e)) < 1e-4, `example ${e}`);
  }
  transformed.defended.dispose();

  const result = await getAttack("pgd-linf", { steps: 20 }).run(target, x, misclassification(labels), {
    epsilon: 0.3,
  });
  const after = jpeg.run(result.adversarial);
  const fooled = labels.filter((l, i) => after.labelsAfter![i] !== l).length;
  assert.ok(fooled >= 0.9 * labels.length, `PGD-BPDA through JPEG fooled ${fooled}/${labels.length}`);
  tf.dispose([result.adversarial, after.defended]);
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
  jpeg.dispose();
});
