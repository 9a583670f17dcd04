import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { loadNamedDataset } from "../src/data/named_datasets.ts";
import { toTensor } from "../src/data/dataset.ts";
import { samplePart } from "../src/data/splits.ts";
import { initBackend } from "../src/engine/backend.ts";
import { createDenoiser, defaultDenoiserSpec, flattenWeights } from "../src/models/denoiser.ts";
import { loadSplitModel } from "../src/pipeline.ts";
import { certifiedRadius } from "../src/smoothing/cohen.ts";
import { type DenoiserRecord, withDenoiser } from "../src/smoothing/denoiser_state.ts";
import { mulberry32 } from "../src/random.ts";
import { chooseDenoiser, SMOOTHING_FACTORY } from "../src/stages/smoothing.ts";

await initBackend("wasm");
const { split } = await loadSplitModel("models/fashion-lenet", { layerName: "flatten", inputRange: [0, 1] });
const { dataset, split: parts } = await loadNamedDataset("fashion-mnist");
const test = samplePart(dataset, parts, "test", 40, { seed: 11 });
const x = toTensor(test);
const spec = defaultDenoiserSpec([28, 28, 1]);
const record = (objective: "mse" | "stability", sigma: number): DenoiserRecord => ({
  sigma,
  objective,
  epochs: 1,
  trainImages: 10,
  seconds: 1,
  finalLoss: 0.1,
  initialisedFrom: "none",
});
// A fresh denoiser is the identity (its last layer starts at zero), so it changes no answer.
const identity = createDenoiser(spec);
const state = withDenoiser(
  withDenoiser(undefined, spec, record("mse", 0.25), flattenWeights(identity)),
  spec,
  record("stability", 0.25),
  flattenWeights(identity),
);
identity.dispose();
const input = (batch: tf.Tensor, seed = 1) => ({
  x: batch,
  forward: () => {
    throw new Error("smoothing reads no shared forward");
  },
  random: mulberry32(seed),
});

Deno.test("the denoiser setting: auto prefers stability, then MSE, then none; a missing one is refused by name", () => {
  assert.equal(chooseDenoiser("auto", 0.25, state), "stability-0.25");
  assert.equal(chooseDenoiser("mse", 0.25, state), "mse-0.25");
  assert.equal(chooseDenoiser("auto", 0.5, state), undefined);
  assert.equal(chooseDenoiser("none", 0.25, state), undefined);
  assert.throws(
    () => chooseDenoiser("stability", 0.5, state),
    /no denoiser "stability-0.5" in the model's profile \(stored: mse-0.25, stability-0.25\)/,
  );
  assert.throws(() => SMOOTHING_FACTORY.create({ split, overrides: { sigma: -1 } }), /setting sigma = -1/);
  assert.throws(() => SMOOTHING_FACTORY.create({ split, overrides: { n: 0 } }), /setting n = 0/);
});

Deno.test("PREDICT answers the true class for most test images at small noise, with vote shares as scores", () => {
  const stage = SMOOTHING_FACTORY.create({ split, overrides: { sigma: 0.12, "predict-n": 100 } });
  const before = tf.memory().numTensors;
  const out = stage.answer!(input(x));
  assert.equal(tf.memory().numTensors, before);
  let correct = 0;
  for (let i = 0; i < test.count; i++) {
    const row = out.scores!.subarray(i * 10, (i + 1) * 10);
    assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-6);
    assert.ok(out.labels[i] >= -1 && out.labels[i] < 10);
    if (out.labels[i] === test.labels[i]) correct++;
  }
  assert.ok(correct / test.count >= 0.7, `PREDICT right on ${correct} of ${test.count}`);
  stage.dispose();
});

Deno.test("CERTIFY is seeded, stepwise equals at once, its radius is the library's, and an identity denoiser changes nothing", () => {
  const bare = SMOOTHING_FACTORY.create({ split, overrides: { sigma: 0.25, denoiser: "none" } });
  const denoised = SMOOTHING_FACTORY.create({ split, state, overrides: { sigma: 0.25 } });
  assert.equal(denoised.settings.denoiser, "stability-0.25");
  const batch = x.slice(0, 5);
  const request = { n0: 50, n: 400, alpha: 0.001, seed: 5 };
  const before = tf.memory().numTensors;
  const first = bare.certify!(batch, request);
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(bare.certify!(batch, request), first);
  // In steps (what the server drives, serving other calls in between): one pause per noise batch, the same
  // certificates.
  const steps = bare.certifySteps!(batch, request);
  let pauses = 0;
  let step = steps.next();
  while (!step.done) {
    pauses++;
    step = steps.next();
  }
  assert.ok(pauses >= 1);
  assert.deepEqual(step.value, first);
  const throughIdentity = denoised.certify!(batch, request);
  first.forEach((c, i) => {
    assert.ok(Math.abs(c.radius - certifiedRadius(c.pALower, 0.25)) < 1e-12);
    assert.equal(c.n, 400);
    assert.equal(throughIdentity[i].label, c.label);
    assert.ok(Math.abs(throughIdentity[i].pALower - c.pALower) < 0.01);
  });
  assert.ok(first.some((c) => c.radius > 0.2), "some image certified beyond L2 0.2");
  assert.throws(() => bare.certify!(batch, { ...request, alpha: 0.6 }), /alpha = 0.6/);
  batch.dispose();
  bare.dispose();
  denoised.dispose();
});

Deno.test("sampleProbabilities is one differentiable noisy draw of the base classifier", () => {
  const stage = SMOOTHING_FACTORY.create({ split, state, overrides: { sigma: 0.25, denoiser: "mse" } });
  const batch = x.slice(0, 3);
  const random = mulberry32(3);
  const probabilities = stage.sampleProbabilities!(batch, random);
  assert.deepEqual(probabilities.shape, [3, 10]);
  const sums = probabilities.sum(1).dataSync();
  sums.forEach((s) => assert.ok(Math.abs(s - 1) < 1e-5));
  const gradient = tf.grad((v: tf.Tensor) => stage.sampleProbabilities!(v, mulberry32(3)).max(1).sum())(
    batch,
  );
  assert.ok(gradient.abs().sum().dataSync()[0] > 0, "a gradient reaches the input");
  tf.dispose([probabilities, gradient, batch]);
  stage.dispose();
});
