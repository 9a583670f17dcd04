import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../src/data/dataset.ts";
import { buildProfile, calibrateProfile } from "../src/nip/calibrate.ts";
import { NipDefense } from "../src/nip/defense.ts";
import { calibrateStrength } from "../src/nip/strength.ts";
import { keyUsesAllNeurons } from "../src/nip/profile.ts";
import { nipFixture } from "./nip_fixture.ts";

const fixture = await nipFixture();
const calibrationX = toTensor(fixture.calibration, 0, 400);
const calibrationLabels = fixture.calibration.labels.slice(0, 400);
const profile = buildProfile(fixture.split, calibrationX, calibrationLabels, { modelHash: "fixture" });
calibrationX.dispose();

Deno.test("buildProfile keeps only correctly classified calibration examples, one candidate each", () => {
  const x = toTensor(fixture.calibration, 0, 400);
  const predicted = tf.tidy(() => (fixture.split.model.predict(x) as tf.Tensor).argMax(1).dataSync());
  x.dispose();
  const correct = calibrationLabels.filter((label, i) => predicted[i] === label).length;
  assert.equal(profile.candidateCount, correct);
  assert.ok(correct > 250, `fixture model too weak: ${correct}/400 correct`);
  assert.equal(profile.rho.length, correct * 28 * 28);
  assert.equal(profile.deltas.length, correct);
  assert.equal(profile.frontTail.length, correct * 10);
  assert.equal(profile.neuronCount, 8 * 6 * 6);
  assert.ok(profile.rho.some((v) => v !== 0));
});

Deno.test("the template excludes every candidate's front and tail neurons", () => {
  const template = new Set(profile.template);
  for (const n of profile.frontTail) assert.ok(!template.has(n));
  assert.equal(keyUsesAllNeurons(profile), profile.template.length < 16);
});

Deno.test("a calibration example matches its own candidate (knn key)", () => {
  const defense = new NipDefense(fixture.split, profile);
  const x = toTensor(fixture.calibration, 0, 60);
  const predicted = tf.tidy(() => (fixture.split.model.predict(x) as tf.Tensor).argMax(1).dataSync());
  const matches = defense.match(x);
  let candidate = 0;
  for (let i = 0; i < 60; i++) {
    if (predicted[i] !== calibrationLabels[i]) continue;
    assert.equal(matches.index[i], candidate, `example ${i}`);
    assert.ok(matches.similarity[i] > 0.9999);
    candidate++;
  }
  x.dispose();
  defense.dispose();
});

Deno.test("defendBatch returns in-range inputs, labels, scores and frees every tensor", () => {
  const before = tf.memory().numTensors;
  const defense = new NipDefense(fixture.split, profile, { strength: 0.3 });
  const x = toTensor(fixture.test, 0, 50);
  for (let round = 0; round < 3; round++) {
    const outcome = defense.defendBatch(x);
    const values = outcome.defended.dataSync();
    assert.ok(values.every((v) => v >= 0 && v <= 1));
    assert.equal(outcome.labelsAfter.length, 50);
    assert.equal(outcome.scoresAfter.length, 500);
    assert.ok(outcome.candidateIndex.every((c) => c >= 0 && c < profile.candidateCount));
    const changed = tf.tidy(() => outcome.defended.sub(x).abs().max().dataSync()[0]);
    assert.ok(changed > 0, "the defense must change the input");
    outcome.defended.dispose();
  }
  x.dispose();
  defense.dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("strength 0 is the identity; a forced candidate is used as given", () => {
  const defense = new NipDefense(fixture.split, profile, { strength: 0 });
  const x = toTensor(fixture.test, 0, 10);
  const outcome = defense.defendBatch(x, { candidateIndex: new Int32Array(10).fill(3) });
  assert.deepEqual([...outcome.candidateIndex], new Array(10).fill(3));
  assert.deepEqual(outcome.labelsAfter, outcome.labelsBefore);
  const diff = tf.tidy(() => outcome.defended.sub(x).abs().max().dataSync()[0]);
  assert.equal(diff, 0);
  tf.dispose([x, outcome.defended]);
  defense.dispose();
});

Deno.test("paper key mode matches by nearest delta and defends", () => {
  const paperProfile = { ...profile, settings: { ...profile.settings, keyMode: "paper" as const } };
  const defense = new NipDefense(fixture.split, paperProfile);
  const x = toTensor(fixture.test, 0, 20);
  const outcome = defense.defendBatch(x);
  assert.ok(outcome.similarity.every((s) => s <= 0));
  assert.ok(outcome.candidateIndex.every((c) => c >= 0 && c < profile.candidateCount));
  tf.dispose([x, outcome.defended]);
  defense.dispose();
});

Deno.test("NIP_n perturbs the layer's activations and reclassifies", () => {
  const before = tf.memory().numTensors;
  const defense = new NipDefense(fixture.split, profile);
  const x = toTensor(fixture.test, 0, 30);
  const zero = defense.defendActivations(x, { strength: 0 });
  assert.deepEqual(zero.labelsAfter, zero.labelsBefore);
  const strong = defense.defendActivations(x, { strength: 50 });
  assert.equal(strong.labelsAfter.length, 30);
  x.dispose();
  defense.dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("calibrateStrength picks the largest strength within the benign-accuracy budget", () => {
  const defense = new NipDefense(fixture.split, profile);
  const heldOut = toTensor(fixture.calibration, 400, 600);
  const result = calibrateStrength(defense, heldOut, fixture.calibration.labels.slice(400, 600), {
    budgetPoints: 1,
  });
  const within = result.tried.filter((t) => (result.bareAccuracy - t.accuracy) * 100 <= 1);
  assert.ok(within.length > 0);
  assert.equal(result.chosen, within[within.length - 1].strength);
  assert.equal(result.heldOut, 200);
  assert.equal(result.budgetExamples, 2);
  heldOut.dispose();
  defense.dispose();
});

Deno.test("calibrateStrength refuses a budget smaller than one held-out example's weight", () => {
  const defense = new NipDefense(fixture.split, profile);
  const heldOut = toTensor(fixture.calibration, 400, 450);
  const labels = fixture.calibration.labels.slice(400, 450);
  // 50 examples weigh 2 points each: a 1-point budget cannot be measured on them.
  assert.throws(
    () => calibrateStrength(defense, heldOut, labels, { budgetPoints: 1 }),
    /less than one of the 50 held-out examples \(2\.000 points each\): use at least 100 held-out examples/,
  );
  assert.equal(
    calibrateStrength(defense, heldOut, labels, { budgetPoints: 0, grid: [0.01] }).budgetExamples,
    0,
  );
  heldOut.dispose();
  defense.dispose();
});

Deno.test("calibrateProfile sets a fixed strength, or picks and records one on held-out examples", () => {
  const candidates = {
    x: toTensor(fixture.calibration, 0, 100),
    labels: fixture.calibration.labels.slice(0, 100),
  };
  const heldOut = {
    x: toTensor(fixture.calibration, 400, 500),
    labels: fixture.calibration.labels.slice(400, 500),
  };
  const fixed = calibrateProfile(fixture.split, candidates, undefined, { modelHash: "f", strength: 0.7 });
  assert.equal(fixed.settings.alpha, 0.7);
  assert.equal(fixed.strengthCalibration, undefined);
  assert.ok(Number(fixed.provenance.candidatesPerSecond) > 0);
  const rms = calibrateProfile(fixture.split, candidates, heldOut, {
    modelHash: "f",
    settings: { scaleRule: "rms" },
  });
  assert.equal(rms.settings.rmsStep, rms.strengthCalibration!.chosen);
  assert.equal(rms.strengthCalibration!.heldOut, 100);
  assert.throws(() => calibrateProfile(fixture.split, candidates, undefined, { modelHash: "f" }), /held-out/);
  tf.dispose([candidates.x, heldOut.x]);
});
