import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../src/data/dataset.ts";
import { forwardAtLayer, neuronOutputs, predictLabels } from "../src/nip/neurons.ts";
import { INPUT_MAHALANOBIS, MAHALANOBIS } from "../src/stages/detectors/mahalanobis.ts";
import { nipFixture } from "./nip_fixture.ts";
import { assertDetectsFgsm, assertSurrogate, scoreBatch } from "./detectors_fixture.ts";

const fixture = await nipFixture();
const { split } = fixture;
const calibrationX = toTensor(fixture.calibration, 0, 300);
const calibrationLabels = fixture.calibration.labels.slice(0, 300);

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
