import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { certifyFromCounts, predictFromCounts } from "../src/smoothing/cohen.ts";
import {
  type BaseClassifier,
  runSteps,
  sampleCounts,
  sampleCountsInSteps,
} from "../src/smoothing/sampler.ts";
import { normalCdf } from "../src/stats/normal.ts";

await initBackend("wasm");

// A linear binary classifier f(x) = [w.x + b > 0] has a closed-form smoothed classifier: under
// N(0, sigma^2 I) noise, P(f(x + e) = 1) = Phi((w.x + b) / (sigma ||w||)), and g's certified radius with
// the exact probability is the distance to the hyperplane, |w.x + b| / ||w||.
const w = [0.6, -0.8, 0, 0]; // ||w|| = 1
const b = 0.1;
const linear: BaseClassifier = (noisy) =>
  tf.tidy(() =>
    noisy.reshape([-1, 4]).matMul(tf.tensor2d(w, [4, 1])).reshape([-1]).add(b).greater(0).toInt()
  );

Deno.test("sampled counts match the linear model's closed-form probabilities", () => {
  const points = tf.tensor2d([[0.5, 0, 0, 0], [0, 0.2, 1, 1], [0.1, 0.1, 0, 0]]);
  const sigma = 0.5;
  const samples = 20_000;
  const counts = sampleCounts(linear, points, { sigma, samples, classes: 2, batchSize: 4096, seed: 3 });
  const margins = [0.6 * 0.5 + b, -0.8 * 0.2 + b, 0.06 - 0.08 + b];
  margins.forEach((margin, i) => {
    const expected = normalCdf(margin / sigma);
    const measured = counts[i * 2 + 1] / samples;
    // Four standard errors of a proportion from 20,000 samples.
    const tolerance = 4 * Math.sqrt(expected * (1 - expected) / samples);
    assert.ok(Math.abs(measured - expected) <= tolerance, `point ${i}: ${measured} vs ${expected}`);
    assert.equal(counts[i * 2] + counts[i * 2 + 1], samples);
  });
  points.dispose();
});

Deno.test("CERTIFY on the linear model: the radius is below the true distance and close to it", () => {
  const point = tf.tensor2d([[1, 0, 0, 0]]); // margin 0.7, distance 0.7
  const sigma = 0.5;
  const selection = sampleCounts(linear, point, { sigma, samples: 100, classes: 2, seed: 1 });
  const estimation = sampleCounts(linear, point, {
    sigma,
    samples: 50_000,
    classes: 2,
    batchSize: 5000,
    seed: 2,
  });
  const certificate = certifyFromCounts(selection, estimation, sigma, 0.001);
  assert.equal(certificate.label, 1);
  assert.ok(certificate.pALower <= normalCdf(0.7 / sigma), `pA lower ${certificate.pALower}`);
  assert.ok(certificate.radius <= 0.7 && certificate.radius > 0.6, `radius ${certificate.radius}`);
  // PREDICT agrees with the smoothed classifier; on the hyperplane itself it abstains.
  assert.equal(predictFromCounts(estimation, 0.001), 1);
  const onBoundary = tf.tensor2d([[0, 0.125, 0, 0]]); // margin 0
  const tied = sampleCounts(linear, onBoundary, { sigma, samples: 1000, classes: 2, seed: 4 });
  assert.equal(predictFromCounts(tied, 0.001), -1);
  tf.dispose([point, onBoundary]);
});

Deno.test("sampling is seeded, batched across examples and leaves no tensor behind", () => {
  const points = tf.tensor2d([[0.05, 0, 0, 0], [0, 0.1, 0, 0]]);
  const before = tf.memory().numTensors;
  const options = { sigma: 1, samples: 300, classes: 2, batchSize: 128, seed: 9 };
  const first = sampleCounts(linear, points, options);
  assert.deepEqual(sampleCounts(linear, points, options), first);
  assert.notDeepEqual(sampleCounts(linear, points, { ...options, seed: 10 }), first);
  // One batch holding both examples' samples gives the same per-example totals.
  const oneBatch = sampleCounts(linear, points, { ...options, batchSize: 600 });
  assert.equal(oneBatch[0] + oneBatch[1], 300);
  assert.equal(oneBatch[2] + oneBatch[3], 300);
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => sampleCounts(linear, points, { ...options, sigma: 0 }), /sigma/);
  assert.throws(() => sampleCounts(linear, points, { ...options, samples: 0 }), /samples/);
  points.dispose();
});

Deno.test("in steps: one step per batch of f, the same counts as at once", () => {
  const points = tf.tensor2d([[0.05, 0, 0, 0], [0, 0.1, 0, 0]]);
  const options = { sigma: 1, samples: 300, classes: 2, batchSize: 128, seed: 9 };
  const steps = sampleCountsInSteps(linear, points, options);
  let pauses = 0;
  let step = steps.next();
  while (!step.done) {
    pauses++;
    step = steps.next();
  }
  assert.equal(pauses, Math.ceil(600 / 128) - 1);
  assert.deepEqual(step.value, sampleCounts(linear, points, options));
  assert.deepEqual(runSteps(sampleCountsInSteps(linear, points, options)), step.value);
  points.dispose();
});
