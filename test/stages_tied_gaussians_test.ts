import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { mulberry32 } from "../src/random.ts";
import { choleskyInverse } from "../src/stages/detectors/linear_algebra.ts";
import {
  densePrecision,
  fitTiedGaussians,
  lowRankForm,
  mahalanobisScores,
} from "../src/stages/detectors/tied_gaussians.ts";

Deno.test("with fewer examples than features the low-rank precision gives the dense inverse's distances", () => {
  const neurons = 40;
  const n = 25;
  const random = mulberry32(9);
  const phi = Float32Array.from({ length: n * neurons }, () => random() * 2 - 1);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  const fitted = fitTiedGaussians(phi, labels, 3, neurons, 0.05);
  assert.equal(fitted.precision, undefined);
  const { basis, weights, ridge, rank } = fitted.lowRank!;
  assert.equal(rank, n - 3, "deviations from 3 class means span n - 3 directions");
  // The dense inverse of the same shrunk covariance, by Cholesky.
  const covariance = new Float64Array(neurons * neurons);
  for (let i = 0; i < n; i++) {
    const d = Array.from(
      { length: neurons },
      (_, j) => phi[i * neurons + j] - fitted.means[labels[i] * neurons + j],
    );
    for (let j = 0; j < neurons; j++) {
      for (let k = 0; k < neurons; k++) covariance[j * neurons + k] += d[j] * d[k] / n;
    }
  }
  for (let j = 0; j < neurons; j++) covariance[j * neurons + j] += ridge;
  const dense = densePrecision(
    tf.tensor2d(Float32Array.from(choleskyInverse(covariance, neurons)), [neurons, neurons]),
  );
  const low = lowRankForm(
    tf.tensor2d(Float32Array.from(basis), [neurons, rank]),
    tf.tensor1d(Float32Array.from(weights)),
    ridge,
  );
  const points = tf.tensor2d(Float32Array.from({ length: 5 * neurons }, () => random() * 2 - 1), [
    5,
    neurons,
  ]);
  const expected = tf.tidy(() => Array.from(dense.quadratic(points).dataSync()));
  const actual = tf.tidy(() => Array.from(low.quadratic(points).dataSync()));
  actual.forEach((v, i) =>
    assert.ok(Math.abs(v - expected[i]) <= 1e-3 * expected[i], `${v} vs ${expected[i]}`)
  );
  dense.dispose();
  low.dispose();
  points.dispose();
});

Deno.test("a hand-made 2-D case: class means, tied covariance with its ridge, and the score in closed form", () => {
  // Both classes deviate by (+-1, 0) and (0, +-2) from their means (0, 0) and (10, 10): the tied covariance
  // is diag(0.5, 2), its mean variance 1.25, so shrinkage 0.2 adds 0.25: precision diag(4/3, 4/9).
  const phi = Float32Array.from([1, 0, -1, 0, 0, 2, 0, -2, 11, 10, 9, 10, 10, 12, 10, 8]);
  const labels = Int32Array.from([0, 0, 0, 0, 1, 1, 1, 1]);
  const fitted = fitTiedGaussians(phi, labels, 2, 2, 0.2);
  assert.deepEqual(Array.from(fitted.means), [0, 0, 10, 10]);
  assert.deepEqual(Array.from(fitted.counts), [4, 4]);
  const expected = [4 / 3, 0, 0, 4 / 9];
  fitted.precision!.forEach((v, i) =>
    assert.ok(Math.abs(v - expected[i]) < 1e-12, `precision ${fitted.precision}`)
  );
  // A third class without examples is scored against the mean of all of them; the covariance is unchanged.
  const withEmpty = fitTiedGaussians(phi, labels, 3, 2, 0.2);
  assert.deepEqual(Array.from(withEmpty.means), [0, 0, 10, 10, 5, 5]);
  assert.deepEqual(Array.from(withEmpty.counts), [4, 4, 0]);
  assert.deepEqual(Array.from(withEmpty.precision!), Array.from(fitted.precision!));
  assert.throws(() => fitTiedGaussians(new Float32Array(0), new Int32Array(0), 3, 2, 0.2), /no correctly/);

  const before = tf.memory().numTensors;
  const means = tf.tensor2d(Float32Array.from(fitted.means), [2, 2]);
  const precision = densePrecision(tf.tensor2d(Float32Array.from(fitted.precision!), [2, 2]));
  // (3, -3) from class 0 and (13, 13) from class 1: 9 * 4/3 + 9 * 4/9 = 16 each.
  const points = tf.tensor2d([3, -3, 13, 13], [2, 2]);
  const pointLabels = tf.tensor1d([0, 1], "int32");
  const scores = mahalanobisScores(points, pointLabels, means, precision);
  scores.forEach((s) => assert.ok(Math.abs(s - 16) < 1e-4, `scores ${scores}`));
  // A full precision [[2, 1], [1, 3]], mean (1, 2), point (2, 0): d = (1, -2), d^T P d = 2 - 4 + 12 = 10.
  const point = tf.tensor2d([2, 0], [1, 2]);
  const label = tf.tensor1d([0], "int32");
  const mean = tf.tensor2d([1, 2], [1, 2]);
  const full = densePrecision(tf.tensor2d([2, 1, 1, 3], [2, 2]));
  const score = mahalanobisScores(point, label, mean, full)[0];
  assert.ok(Math.abs(score - 10) < 1e-5, `score ${score}`);
  tf.dispose([means, points, pointLabels, point, label, mean]);
  precision.dispose();
  full.dispose();
  assert.equal(tf.memory().numTensors, before);
});
