import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../src/data/dataset.ts";
import { buildProfile } from "../src/nip/calibrate.ts";
import { knnKeys } from "../src/nip/keys.ts";
import { forwardAtLayer, neuronOutputs, predictLabels } from "../src/nip/neurons.ts";
import { mulberry32 } from "../src/random.ts";
import { KNN_DETECTOR, NO_CANDIDATE_SCORE } from "../src/stages/detectors/knn.ts";
import { nipFixture } from "./nip_fixture.ts";
import { assertDetectsFgsm, assertSurrogate, scoreBatch } from "./detectors_fixture.ts";

const fixture = await nipFixture();
const { split } = fixture;
const calibrationX = toTensor(fixture.calibration, 0, 300);
const calibrationLabels = fixture.calibration.labels.slice(0, 300);
const profile = buildProfile(split, calibrationX, calibrationLabels, { modelHash: "f" });
// Candidate j is the j-th correctly classified calibration example.
const predicted = predictLabels(split.model, calibrationX);
const candidateExamples = Int32Array.from(calibrationLabels.keys()).filter((i) =>
  predicted[i] === calibrationLabels[i]
);
calibrationX.dispose();

/** 1 - the largest cosine similarity to the (same-class) candidates, by brute force over the profile. */
function bruteForce(x: tf.Tensor, sameClass: boolean): Float32Array {
  const f = forwardAtLayer(split, x);
  const phi = neuronOutputs(f.layerOutput);
  const keys = knnKeys(phi.dataSync() as Float32Array, profile.neuronCount, profile.keyNeurons);
  const labels = f.labels.dataSync();
  tf.dispose([phi, f.layerOutput, f.scores, f.labels]);
  const d = profile.keyNeurons.length;
  return Float32Array.from(labels, (label, i) => {
    let best = -Infinity;
    for (let j = 0; j < profile.candidateCount; j++) {
      if (sameClass && profile.candidateLabels[j] !== label) continue;
      let dot = 0;
      for (let k = 0; k < d; k++) dot += keys[i * d + k] * profile.keys[j * d + k];
      best = Math.max(best, dot);
    }
    return best === -Infinity ? NO_CANDIDATE_SCORE : 1 - best;
  });
}

Deno.test("a candidate's own example scores ~0 and finds itself; a far input scores higher", () => {
  const before = tf.memory().numTensors;
  const stage = KNN_DETECTOR.create({ split, profile });
  assert.equal(stage.role, "score");
  assert.equal(stage.domain, "input");
  assert.equal(stage.settings.sameClass, true);
  const picked = Array.from(candidateExamples.slice(0, 12));
  const own = tf.tidy(() => toTensor(fixture.calibration, 0, 300).gather(tf.tensor1d(picked, "int32")));
  const afterInput = tf.memory().numTensors;
  const out = scoreBatch(stage, split, own);
  assert.equal(tf.memory().numTensors, afterInput, "score leaves no tensor");
  out.scores.forEach((s) => assert.ok(s >= 0 && s < 1e-5, `own scores ${out.scores}`));
  assert.deepEqual(Array.from(out.details!.nearestCandidate), picked.map((_, j) => j));
  // Uniform noise is nothing like a Fashion-MNIST image.
  const random = mulberry32(5);
  const noise = tf.tensor4d(Float32Array.from({ length: 4 * 784 }, random), [4, 28, 28, 1]);
  const far = scoreBatch(stage, split, noise).scores;
  far.forEach((s) => assert.ok(s > 0.05, `noise scores ${far}`));
  tf.dispose([own, noise]);
  stage.dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("scores equal a brute-force search over the profile's keys, both ways, and are deterministic", () => {
  const x = toTensor(fixture.test, 0, 40);
  for (const sameClass of [true, false]) {
    const stage = KNN_DETECTOR.create({ split, profile, overrides: { sameClass } });
    const scores = scoreBatch(stage, split, x).scores;
    const expected = bruteForce(x, sameClass);
    scores.forEach((s, i) =>
      assert.ok(Math.abs(s - Math.max(0, expected[i])) < 1e-5, `${s} vs ${expected[i]}`)
    );
    assert.deepEqual(scoreBatch(stage, split, x).scores, scores);
    stage.dispose();
  }
  // The command line's "false" is read as false.
  const unrestricted = KNN_DETECTOR.create({ split, profile, overrides: { sameClass: "false" } });
  assert.equal(unrestricted.settings.sameClass, false);
  unrestricted.dispose();
  x.dispose();
});

Deno.test("an input predicted into a class without candidates scores the largest distance", () => {
  // Relabel class 3's candidates as class 4: inputs predicted 3 have no candidate of their class.
  const relabelled = { ...profile, candidateLabels: profile.candidateLabels.map((c) => c === 3 ? 4 : c) };
  const stage = KNN_DETECTOR.create({ split, profile: relabelled });
  const x = toTensor(fixture.test, 0, 60);
  const labels = predictLabels(split.model, x);
  assert.ok(labels.includes(3) && labels.some((c) => c !== 3));
  const out = scoreBatch(stage, split, x);
  labels.forEach((label, i) => {
    assert.equal(out.scores[i] === NO_CANDIDATE_SCORE, label === 3);
    assert.equal(out.details!.nearestCandidate[i] === -1, label === 3);
  });
  stage.dispose();
  x.dispose();
});

Deno.test("a missing profile, one of another layer size and a bad setting are refused, naming the stage", () => {
  assert.throws(() => KNN_DETECTOR.create({ split }), /knn: needs the model's calibration profile/);
  assert.throws(
    () => KNN_DETECTOR.create({ split, profile: { ...profile, neuronCount: 10 } }),
    /knn: profile was built at layer flatten \(10 neurons\)/,
  );
  assert.throws(
    () => KNN_DETECTOR.create({ split, profile, overrides: { sameClass: 1 } }),
    /knn: setting sameClass = 1 must be true or false/,
  );
});

Deno.test("knn: FGSM adversarial examples (L_inf 0.1) are farther from the candidates than benign ones", async () => {
  const stage = KNN_DETECTOR.create({ split, profile });
  await assertDetectsFgsm(stage, split, fixture.test);
  stage.dispose();
});

Deno.test("knn: the surrogate is the score (both ways), with a gradient", () => {
  const x = toTensor(fixture.test, 0, 16);
  for (const sameClass of [true, false]) {
    const stage = KNN_DETECTOR.create({ split, profile, overrides: { sameClass } });
    assertSurrogate(stage, split, x, true);
    stage.dispose();
  }
  x.dispose();
});
