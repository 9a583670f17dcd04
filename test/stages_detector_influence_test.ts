import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../src/data/dataset.ts";
import { buildProfile } from "../src/nip/calibrate.ts";
import { forwardAtLayer, neuronInfluence } from "../src/nip/neurons.ts";
import { INFLUENCE_DETECTOR, INFLUENCE_FEATURES } from "../src/stages/detectors/influence.ts";
import { nipFixture } from "./nip_fixture.ts";
import {
  assertDetectsFgsm,
  assertSurrogate,
  mean,
  scoreBatch,
  scoreRepeatedly,
} from "./detectors_fixture.ts";

const fixture = await nipFixture();
const { split } = fixture;
// NIP's profile from calibration images 300-600; the detector is fitted on images 0-300.
const profileX = toTensor(fixture.calibration, 300, 600);
const profile = buildProfile(split, profileX, fixture.calibration.labels.slice(300, 600), { modelHash: "f" });
profileX.dispose();
const benignX = toTensor(fixture.calibration, 0, 300);
const benign = { x: benignX, labels: fixture.calibration.labels.slice(0, 300) };
const state = INFLUENCE_DETECTOR.fit!({ split, profile }, benign);
const { k1, k2 } = profile.settings;

Deno.test("influence: features and score of one example equal a hand computation from neuronInfluence", () => {
  const x = toTensor(fixture.test, 3, 4);
  const stage = INFLUENCE_DETECTOR.create({ split, profile, state });
  assert.equal(stage.role, "score");
  assert.equal(stage.domain, "input");
  const out = scoreBatch(stage, split, x);
  // Independent: the head gradient for the predicted label, then a plain sort of the 288 influences.
  const f = forwardAtLayer(split, x);
  const influence = neuronInfluence(split.head, f.layerOutput, f.labels);
  const sigma = Array.from(influence.dataSync());
  const c = f.labels.dataSync()[0];
  tf.dispose([f.layerOutput, f.scores, f.labels, influence]);
  const order = sigma.map((_, n) => n).sort((i, j) => sigma[j] - sigma[i] || i - j);
  const front = order.slice(0, k1).reduce((s, n) => s + sigma[n], 0);
  const tail = order.slice(sigma.length - k2).reduce((s, n) => s + sigma[n], 0);
  const total = sigma.reduce((s, v) => s + v, 0);
  const expected = [front, tail, Math.abs(tail) / (Math.abs(front) + Math.abs(tail)), total];
  assert.ok(front > 0 && tail < 0, `front ${front} > 0 > tail ${tail}`);
  INFLUENCE_FEATURES.forEach((name, j) => {
    const got = out.details![name][0];
    assert.ok(
      Math.abs(got - expected[j]) <= 1e-6 + 1e-5 * Math.abs(expected[j]),
      `${name}: ${got} vs ${expected[j]}`,
    );
  });
  const { mean: mu, std } = state.arrays;
  const z = expected.map((v, j) => Math.abs(v - mu[c * 4 + j]) / std[c * 4 + j]);
  assert.ok(Math.abs(out.scores[0] - Math.max(...z)) < 1e-4 * Math.max(1, out.scores[0]));
  stage.dispose();
  x.dispose();
});

Deno.test("influence: on its own fitting examples each class's z-scores have mean 0 and variance 1", () => {
  assert.deepEqual(
    { layer: state.meta.layer, classes: state.meta.classes, neurons: state.meta.neurons, k1: state.meta.k1 },
    { layer: "flatten", classes: 10, neurons: 288, k1 },
  );
  const stage = INFLUENCE_DETECTOR.create({ split, profile, state });
  const out = scoreBatch(stage, split, benignX);
  const kept = Array.from(benign.labels.keys()).filter((i) => out.labels[i] === benign.labels[i]);
  assert.equal(state.meta.examples, kept.length);
  const { mean: mu, std, counts } = state.arrays;
  for (let c = 0; c < 10; c++) {
    const rows = kept.filter((i) => benign.labels[i] === c);
    assert.equal(counts[c], rows.length);
    INFLUENCE_FEATURES.forEach((name, j) => {
      const z = rows.map((i) => (out.details![name][i] - mu[c * 4 + j]) / std[c * 4 + j]);
      assert.ok(Math.abs(mean(z)) < 1e-3, `class ${c} ${name}: mean z ${mean(z)}`);
      const variance = z.reduce((s, v) => s + v * v, 0) / (rows.length - 1);
      assert.ok(Math.abs(variance - 1) < 1e-3, `class ${c} ${name}: variance ${variance}`);
    });
  }
  const benignMean = mean(kept.map((i) => out.scores[i]));
  assert.ok(benignMean < 2, `mean max |z| on the fitting examples ${benignMean}`);
  stage.dispose();
});

Deno.test("influence: a missing or mismatched state and a missing profile are refused by name", () => {
  const baseline = tf.memory().numTensors;
  assert.throws(
    () => INFLUENCE_DETECTOR.create({ split, profile }),
    /^RangeError: influence: not calibrated/,
  );
  const otherClasses = { ...state, meta: { ...state.meta, classes: 3 } };
  assert.throws(
    () => INFLUENCE_DETECTOR.create({ split, profile, state: otherClasses }),
    /influence: .*3 classes/,
  );
  const otherK = { ...profile, settings: { ...profile.settings, k1: 7 } };
  assert.throws(() => INFLUENCE_DETECTOR.create({ split, profile: otherK, state }), /influence: .*k1 7/);
  const otherFeatures = { ...state, meta: { ...state.meta, features: "frontMass,tailMass" } };
  assert.throws(
    () => INFLUENCE_DETECTOR.create({ split, profile, state: otherFeatures }),
    /influence: .*features/,
  );
  const shortArrays = { ...state, arrays: { ...state.arrays, std: new Float32Array(4) } };
  assert.throws(() => INFLUENCE_DETECTOR.create({ split, profile, state: shortArrays }), /influence: .*std/);
  assert.throws(() => INFLUENCE_DETECTOR.create({ split, state }), /influence: needs .*profile/);
  assert.throws(() => INFLUENCE_DETECTOR.fit!({ split }, benign), /influence: needs .*profile/);
  // Five examples leave most classes without two: those take the statistics of all five.
  const few = { x: benignX.slice(0, 5), labels: benign.labels.slice(0, 5) };
  const pooled = INFLUENCE_DETECTOR.fit!({ split, profile }, few);
  assert.ok(Number(pooled.meta.pooledClasses) >= 8, JSON.stringify(pooled.meta));
  const one = { x: benignX.slice(0, 1), labels: benign.labels.slice(0, 1) };
  assert.throws(() => INFLUENCE_DETECTOR.fit!({ split, profile }, one), /influence: \d correctly classified/);
  tf.dispose([few.x, one.x]);
  assert.equal(tf.memory().numTensors, baseline);
});

Deno.test("influence: fit, create, score and dispose leave no tensor behind; fit is deterministic", () => {
  const x = toTensor(fixture.test, 0, 64);
  const baseline = tf.memory().numTensors;
  const again = INFLUENCE_DETECTOR.fit!({ split, profile }, benign);
  assert.deepEqual(again, state);
  const stage = INFLUENCE_DETECTOR.create({ split, profile, state: again });
  scoreRepeatedly(stage, split, x);
  stage.dispose();
  assert.equal(tf.memory().numTensors, baseline);
  x.dispose();
});

Deno.test("influence: FGSM adversarial examples (L_inf 0.1) score above benign ones", async () => {
  const stage = INFLUENCE_DETECTOR.create({ split, profile, state });
  await assertDetectsFgsm(stage, split, fixture.test);
  stage.dispose();
});

Deno.test("influence: the surrogate (gradient factor and partition held) is the score, with a gradient", () => {
  const x = toTensor(fixture.test, 0, 16);
  const stage = INFLUENCE_DETECTOR.create({ split, profile, state });
  assertSurrogate(stage, split, x, true);
  stage.dispose();
  x.dispose();
});
