import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../src/data/dataset.ts";
import { forwardAtLayer, neuronOutputs, predictLabels } from "../src/nip/neurons.ts";
import { mulberry32 } from "../src/random.ts";
import { choleskyInverse, symmetricEigen } from "../src/stages/detectors/linear_algebra.ts";
import {
  densePrecision,
  fitTiedGaussians,
  INPUT_MAHALANOBIS,
  lowRankForm,
  MAHALANOBIS,
  mahalanobisScores,
} from "../src/stages/detectors/mahalanobis.ts";
import { nipFixture } from "./nip_fixture.ts";
import { assertDetectsFgsm, assertSurrogate, scoreBatch } from "./detectors_fixture.ts";

const fixture = await nipFixture();
const { split } = fixture;
const calibrationX = toTensor(fixture.calibration, 0, 300);
const calibrationLabels = fixture.calibration.labels.slice(0, 300);

Deno.test("choleskyInverse of a random SPD matrix times the matrix is the identity; non-PD is refused", () => {
  const size = 60;
  const random = mulberry32(3);
  const b = Float64Array.from({ length: size * size }, () => random() * 2 - 1);
  // A = B B^T + I is symmetric positive definite.
  const a = new Float64Array(size * size);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      let s = i === j ? 1 : 0;
      for (let k = 0; k < size; k++) s += b[i * size + k] * b[j * size + k];
      a[i * size + j] = s;
    }
  }
  const inverse = choleskyInverse(a, size);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      let s = 0;
      for (let k = 0; k < size; k++) s += inverse[i * size + k] * a[k * size + j];
      assert.ok(Math.abs(s - (i === j ? 1 : 0)) < 1e-9, `(A^-1 A)[${i}, ${j}] = ${s}`);
    }
  }
  assert.throws(() => choleskyInverse(Float64Array.from([1, 2, 2, 1]), 2), /not positive definite/);
  assert.throws(() => choleskyInverse(new Float64Array(5), 2), /not a 2x2 matrix/);
});

Deno.test("symmetricEigen: A V = V diag(values), V orthonormal, values descending", () => {
  const size = 30;
  const random = mulberry32(4);
  const a = new Float64Array(size * size);
  for (let i = 0; i < size; i++) {
    for (let j = i; j < size; j++) a[i * size + j] = a[j * size + i] = random() * 2 - 1;
  }
  const { values, vectors } = symmetricEigen(a, size);
  for (let k = 1; k < size; k++) assert.ok(values[k] <= values[k - 1]);
  for (let i = 0; i < size; i++) {
    for (let k = 0; k < size; k++) {
      let av = 0;
      for (let j = 0; j < size; j++) av += a[i * size + j] * vectors[j * size + k];
      assert.ok(Math.abs(av - values[k] * vectors[i * size + k]) < 1e-9, `(A v_${k})_${i}`);
      let dot = 0;
      for (let j = 0; j < size; j++) dot += vectors[j * size + i] * vectors[j * size + k];
      assert.ok(Math.abs(dot - (i === k ? 1 : 0)) < 1e-9, `v_${i} . v_${k}`);
    }
  }
});

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
  assert.throws(() => fitTiedGaussians(phi, labels, 3, 2, 0.2), /mahalanobis: class 2 has no correctly/);

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

Deno.test("fit keeps the correctly classified examples; the stage scores as the stored state says, deterministically", () => {
  const before = tf.memory().numTensors;
  const state = MAHALANOBIS.fit!({ split }, { x: calibrationX, labels: calibrationLabels });
  assert.equal(tf.memory().numTensors, before, "fit leaves no tensor");
  const predicted = predictLabels(split.model, calibrationX);
  const correct = calibrationLabels.filter((label, i) => predicted[i] === label).length;
  const a = split.body.outputs[0].shape[1] as number;
  // Fewer correct examples than neurons on the fixture: the precision is kept as ridge plus low rank.
  assert.ok(correct < a, `${correct} examples, ${a} neurons`);
  const { ridge, rank, ...meta } = state.meta;
  assert.deepEqual(meta, { layer: "flatten", neurons: a, classes: 10, shrinkage: 0.01, examples: correct });
  assert.ok(Number(ridge) > 0 && Number(rank) <= correct - 10);
  assert.equal(state.arrays.means.length, 10 * a);
  assert.equal(state.arrays.basis.length, a * Number(rank));
  assert.equal(state.arrays.weights.length, Number(rank));
  assert.equal(state.arrays.precision, undefined);

  const stage = MAHALANOBIS.create({ split, state });
  assert.equal(stage.role, "score");
  assert.equal(stage.domain, "input");
  assert.equal(tf.memory().numTensors, before + 3, "the stage holds its means, basis and weights");
  const x = toTensor(fixture.test, 0, 20);
  const afterInput = tf.memory().numTensors;
  const first = scoreBatch(stage, split, x).scores;
  assert.equal(tf.memory().numTensors, afterInput, "score leaves no tensor");
  assert.deepEqual(scoreBatch(stage, split, x).scores, first);

  // Independently: plain float64 loops over the stored state, the predicted labels and phi.
  const f = forwardAtLayer(split, x);
  const phiTensor = neuronOutputs(f.layerOutput);
  const phi = phiTensor.dataSync();
  const labels = f.labels.dataSync();
  const { means, basis, weights } = state.arrays;
  const k = Number(rank);
  for (let i = 0; i < 20; i++) {
    const d = Array.from({ length: a }, (_, j) => phi[i * a + j] - means[labels[i] * a + j]);
    let s = d.reduce((sum, v) => sum + v * v, 0);
    for (let r = 0; r < k; r++) {
      let projection = 0;
      for (let j = 0; j < a; j++) projection += basis[j * k + r] * d[j];
      s -= weights[r] * projection * projection;
    }
    s /= Number(ridge);
    assert.ok(Math.abs(first[i] - s) <= 1e-3 * s, `example ${i}: ${first[i]} vs ${s}`);
  }
  tf.dispose([phiTensor, f.layerOutput, f.scores, f.labels, x]);
  stage.dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("a missing state, one of another layer size and a bad shrinkage are refused, naming the stage", () => {
  assert.throws(
    () => MAHALANOBIS.create({ split }),
    /mahalanobis: not calibrated; run calibration with this detector/,
  );
  const means = new Float32Array(10 * 4);
  const precision = new Float32Array(16);
  const wrong = { meta: { layer: "flatten", neurons: 4, classes: 10, shrinkage: 0.01, examples: 1 } };
  assert.throws(
    () => MAHALANOBIS.create({ split, state: { ...wrong, arrays: { means, precision } } }),
    /mahalanobis: state was fitted at layer flatten \(4 neurons, 10 classes\)/,
  );
  const a = split.body.outputs[0].shape[1] as number;
  const short = { meta: { ...wrong.meta, neurons: a }, arrays: { means, precision } };
  assert.throws(() => MAHALANOBIS.create({ split, state: short }), /mahalanobis: state's means/);
  assert.throws(
    () =>
      MAHALANOBIS.fit!({ split, overrides: { shrinkage: -1 } }, {
        x: calibrationX,
        labels: calibrationLabels,
      }),
    /mahalanobis: setting shrinkage/,
  );
});

Deno.test("mahalanobis: FGSM adversarial examples (L_inf 0.1) score above benign ones", async () => {
  const stage = MAHALANOBIS.create({
    split,
    state: MAHALANOBIS.fit!({ split }, { x: calibrationX, labels: calibrationLabels }),
  });
  await assertDetectsFgsm(stage, split, fixture.test);
  stage.dispose();
});

Deno.test("mahalanobis and input-mahalanobis: the surrogate is the score, with a gradient", () => {
  const x = toTensor(fixture.test, 0, 16);
  for (const factory of [MAHALANOBIS, INPUT_MAHALANOBIS]) {
    const stage = factory.create({
      split,
      state: factory.fit!({ split }, { x: calibrationX, labels: calibrationLabels }),
    });
    assertSurrogate(stage, split, x, true);
    stage.dispose();
  }
  x.dispose();
});

Deno.test("input-mahalanobis fits on the input values: one mean per class and pixel, and detects FGSM", async () => {
  const state = INPUT_MAHALANOBIS.fit!({ split }, { x: calibrationX, labels: calibrationLabels });
  const width = split.inputShape.reduce((a, b) => a * b, 1);
  assert.equal(state.meta.layer, "input");
  assert.equal(state.meta.neurons, width);
  assert.equal(state.arrays.means.length, 10 * width);
  // Class 0's mean is the mean of its correctly classified calibration images.
  const predicted = predictLabels(split.model, calibrationX);
  const values = calibrationX.dataSync();
  const rows = Array.from(calibrationLabels.keys()).filter((i) =>
    calibrationLabels[i] === 0 && predicted[i] === 0
  );
  const pixel = 300;
  const expected = rows.reduce((s, i) => s + values[i * width + pixel], 0) / rows.length;
  assert.ok(Math.abs(state.arrays.means[pixel] - expected) < 1e-5);
  const stage = INPUT_MAHALANOBIS.create({ split, state });
  assert.match(stage.description, /Mahalanobis detector at input/);
  await assertDetectsFgsm(stage, split, fixture.test);
  stage.dispose();
});
