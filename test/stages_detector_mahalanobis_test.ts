import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../src/data/dataset.ts";
import { forwardAtLayer, neuronOutputs, predictLabels } from "../src/nip/neurons.ts";
import { mulberry32 } from "../src/random.ts";
import {
  choleskyInverse,
  fitTiedGaussians,
  MAHALANOBIS,
  mahalanobisScores,
} from "../src/stages/detectors/mahalanobis.ts";
import { nipFixture } from "./nip_fixture.ts";
import { assertDetectsFgsm, scoreBatch } from "./detectors_fixture.ts";

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

Deno.test("a hand-made 2-D case: class means, tied covariance with its ridge, and the score in closed form", () => {
  // Both classes deviate by (+-1, 0) and (0, +-2) from their means (0, 0) and (10, 10): the tied covariance
  // is diag(0.5, 2), its mean variance 1.25, so shrinkage 0.2 adds 0.25: precision diag(4/3, 4/9).
  const phi = Float32Array.from([1, 0, -1, 0, 0, 2, 0, -2, 11, 10, 9, 10, 10, 12, 10, 8]);
  const labels = Int32Array.from([0, 0, 0, 0, 1, 1, 1, 1]);
  const fitted = fitTiedGaussians(phi, labels, 2, 2, 0.2);
  assert.deepEqual(Array.from(fitted.means), [0, 0, 10, 10]);
  assert.deepEqual(Array.from(fitted.counts), [4, 4]);
  const expected = [4 / 3, 0, 0, 4 / 9];
  fitted.precision.forEach((v, i) =>
    assert.ok(Math.abs(v - expected[i]) < 1e-12, `precision ${fitted.precision}`)
  );
  assert.throws(() => fitTiedGaussians(phi, labels, 3, 2, 0.2), /mahalanobis: class 2 has no correctly/);

  const before = tf.memory().numTensors;
  const means = tf.tensor2d(Float32Array.from(fitted.means), [2, 2]);
  const precision = tf.tensor2d(Float32Array.from(fitted.precision), [2, 2]);
  // (3, -3) from class 0 and (13, 13) from class 1: 9 * 4/3 + 9 * 4/9 = 16 each.
  const points = tf.tensor2d([3, -3, 13, 13], [2, 2]);
  const pointLabels = tf.tensor1d([0, 1], "int32");
  const scores = mahalanobisScores(points, pointLabels, means, precision);
  scores.forEach((s) => assert.ok(Math.abs(s - 16) < 1e-4, `scores ${scores}`));
  // A full precision [[2, 1], [1, 3]], mean (1, 2), point (2, 0): d = (1, -2), d^T P d = 2 - 4 + 12 = 10.
  const point = tf.tensor2d([2, 0], [1, 2]);
  const label = tf.tensor1d([0], "int32");
  const mean = tf.tensor2d([1, 2], [1, 2]);
  const full = tf.tensor2d([2, 1, 1, 3], [2, 2]);
  const score = mahalanobisScores(point, label, mean, full)[0];
  assert.ok(Math.abs(score - 10) < 1e-5, `score ${score}`);
  tf.dispose([means, precision, points, pointLabels, point, label, mean, full]);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("fit keeps the correctly classified examples; the stage scores as the stored state says, deterministically", () => {
  const before = tf.memory().numTensors;
  const state = MAHALANOBIS.fit!({ split }, { x: calibrationX, labels: calibrationLabels });
  assert.equal(tf.memory().numTensors, before, "fit leaves no tensor");
  const predicted = predictLabels(split.model, calibrationX);
  const correct = calibrationLabels.filter((label, i) => predicted[i] === label).length;
  const a = split.body.outputs[0].shape[1] as number;
  assert.deepEqual(state.meta, {
    layer: "flatten",
    neurons: a,
    classes: 10,
    shrinkage: 0.01,
    examples: correct,
  });
  assert.equal(state.arrays.means.length, 10 * a);
  assert.equal(state.arrays.precision.length, a * a);

  const stage = MAHALANOBIS.create({ split, state });
  assert.equal(stage.role, "score");
  assert.equal(stage.domain, "input");
  assert.equal(tf.memory().numTensors, before + 2, "the stage holds its means and precision");
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
  const { means, precision } = state.arrays;
  for (let i = 0; i < 20; i++) {
    const d = Array.from({ length: a }, (_, j) => phi[i * a + j] - means[labels[i] * a + j]);
    let s = 0;
    for (let j = 0; j < a; j++) for (let k = 0; k < a; k++) s += d[j] * precision[j * a + k] * d[k];
    assert.ok(Math.abs(first[i] - s) <= 1e-4 * s, `example ${i}: ${first[i]} vs ${s}`);
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
