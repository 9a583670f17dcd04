import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../src/data/dataset.ts";
import { splitModel } from "../src/engine/split.ts";
import { buildProfile } from "../src/nip/calibrate.ts";
import { NipDefense } from "../src/nip/defense.ts";
import type { NipProfile } from "../src/nip/profile.ts";
import type { SplitModel } from "../src/nip/types.ts";
import { mulberry32 } from "../src/random.ts";
import { addNoiseRows, NIP_RESPONSE_DETECTOR } from "../src/stages/detectors/nip_response.ts";
import type { BenignExamples, DefenseStage } from "../src/stages/stage.ts";
import { nipFixture } from "./nip_fixture.ts";
import { assertDetectsFgsm, assertSurrogate, scoreBatch, scoreRepeatedly } from "./detectors_fixture.ts";

const fixture = await nipFixture();
const { split } = fixture;
// NIP's profile from calibration images 300-600; the detector is fitted on images 0-300.
const profileX = toTensor(fixture.calibration, 300, 600);
const profile = buildProfile(split, profileX, fixture.calibration.labels.slice(300, 600), { modelHash: "f" });
const benignX = toTensor(fixture.calibration, 0, 300);
const benign = { x: benignX, labels: fixture.calibration.labels.slice(0, 300) };
const state = NIP_RESPONSE_DETECTOR.fit!({ split, profile }, benign);

const close = (a: number, b: number, tolerance = 1e-5) => Math.abs(a - b) <= tolerance;

/** Median L2 norm of NIP's change (by NipDefense.defendBatch) over the correctly classified examples. */
function medianNipChange(model: SplitModel, nipProfile: NipProfile, examples: BenignExamples): number {
  const defense = new NipDefense(model, nipProfile);
  const out = defense.defendBatch(examples.x);
  const norms = tf.tidy(() => out.defended.sub(examples.x).reshape([examples.labels.length, -1]).norm(2, 1))
    .arraySync() as number[];
  const kept = norms.filter((_, i) => out.labelsBefore[i] === examples.labels[i]).sort((a, b) => a - b);
  out.defended.dispose();
  defense.dispose();
  const middle = kept.length >> 1;
  return kept.length % 2 ? kept[middle] : (kept[middle - 1] + kept[middle]) / 2;
}

/**
 * Pins the stage's probes on `x` against an independent run: NipDefense.defendBatch for the NIP probe
 * (matched candidate, label after, drop of the predicted class's softmax probability) and the model on
 * the same seeded noise for the noise probe; the score is max over the probes of (changed + drop).
 */
function assertProbes(
  model: SplitModel,
  nipProfile: NipProfile,
  stage: DefenseStage,
  x: tf.Tensor,
  logits: boolean,
) {
  const n = x.shape[0];
  const noiseL2 = stage.settings.noiseL2 as number;
  const out = scoreBatch(stage, model, x, 5);
  const defense = new NipDefense(model, nipProfile);
  const direct = defense.defendBatch(x);
  const noisy = addNoiseRows(x.dataSync() as Float32Array, n, noiseL2, model.inputRange, mulberry32(5));
  const probs = (scores: Float32Array) =>
    tf.tidy(() => {
      const t = tf.tensor2d(scores, [n, scores.length / n]);
      return (logits ? tf.softmax(t) : t).arraySync() as number[][];
    });
  const before = probs(direct.scoresBefore);
  const afterNip = probs(direct.scoresAfter);
  const afterNoise = tf.tidy(() => {
    const s = model.model.predict(tf.tensor(noisy, x.shape)) as tf.Tensor;
    return (logits ? tf.softmax(s) : s).arraySync() as number[][];
  });
  const argMax = (row: number[]) => row.indexOf(Math.max(...row));
  const d = out.details!;
  assert.deepEqual(d.candidateIndex, direct.candidateIndex);
  assert.deepEqual(out.labels, direct.labelsBefore);
  assert.deepEqual(d.nipLabel, direct.labelsAfter);
  for (let i = 0; i < n; i++) {
    const c = direct.labelsBefore[i];
    assert.equal(d.noiseLabel[i], argMax(afterNoise[i]));
    assert.ok(close(d.nipDrop[i], before[i][c] - afterNip[i][c]), `${i}: ${d.nipDrop[i]}`);
    assert.ok(close(d.noiseDrop[i], before[i][c] - afterNoise[i][c]), `${i}: ${d.noiseDrop[i]}`);
    const expected = Math.max(
      Number(direct.labelsAfter[i] !== c) + before[i][c] - afterNip[i][c],
      Number(argMax(afterNoise[i]) !== c) + before[i][c] - afterNoise[i][c],
    );
    assert.ok(close(out.scores[i], expected), `${i}: ${out.scores[i]} vs ${expected}`);
  }
  direct.defended.dispose();
  defense.dispose();
}

Deno.test("nip-response: fit stores the median L2 of NIP's change as measured by NipDefense.defendBatch", () => {
  const expected = medianNipChange(split, profile, benign);
  assert.ok(expected > 0);
  assert.ok(close(state.meta.noiseL2 as number, expected), `${state.meta.noiseL2} vs ${expected}`);
  assert.equal(state.meta.nipStrength, profile.settings.alpha);
  assert.equal(state.arrays.nipChangeL2.length, state.meta.examples);
});

Deno.test("nip-response: both probes and the score match NipDefense.defendBatch and the model on the noise", () => {
  const x = toTensor(fixture.test, 0, 32);
  const stage = NIP_RESPONSE_DETECTOR.create({ split, profile, state });
  assert.equal(stage.role, "score");
  assert.equal(stage.domain, "input");
  assert.equal(stage.settings.noiseL2, state.meta.noiseL2);
  assertProbes(split, profile, stage, x, false);
  stage.dispose();
  x.dispose();
});

Deno.test("nip-response: on a model that outputs logits the drops are of softmax probabilities", () => {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 4, kernelSize: 3, kernelInitializer: init(7) }),
      tf.layers.flatten({ name: "flatten" }),
      tf.layers.dense({ units: 10, kernelInitializer: init(8) }),
    ],
  });
  const logitsSplit = splitModel(model, { layerName: "flatten", inputRange: [0, 1] });
  const labels = fixture.calibration.labels.slice(300, 600);
  const logitsProfile = buildProfile(logitsSplit, profileX, labels, { modelHash: "l" });
  const fitting = { x: profileX, labels };
  const fitted = NIP_RESPONSE_DETECTOR.fit!({ split: logitsSplit, profile: logitsProfile }, fitting);
  assert.ok(close(fitted.meta.noiseL2 as number, medianNipChange(logitsSplit, logitsProfile, fitting)));
  const stage = NIP_RESPONSE_DETECTOR.create({ split: logitsSplit, profile: logitsProfile, state: fitted });
  const x = toTensor(fixture.test, 0, 16);
  assertProbes(logitsSplit, logitsProfile, stage, x, true);
  stage.dispose();
  model.dispose();
  x.dispose();
});

Deno.test("nip-response: the same seed gives the same scores, another seed other noise", () => {
  const x = toTensor(fixture.test, 0, 64);
  const stage = NIP_RESPONSE_DETECTOR.create({ split, profile, state });
  const [first, again, other] = [7, 7, 8].map((seed) => scoreBatch(stage, split, x, seed));
  assert.deepEqual(first.scores, again.scores);
  assert.deepEqual(first.details, again.details);
  assert.deepEqual(first.details!.nipDrop, other.details!.nipDrop, "the NIP probe is not random");
  assert.notDeepEqual(first.details!.noiseDrop, other.details!.noiseDrop);
  stage.dispose();
  x.dispose();
});

Deno.test("nip-response: a missing or mismatched state, a missing profile, a bad noiseL2 are refused by name", () => {
  const baseline = tf.memory().numTensors;
  const create = (context: Partial<Parameters<typeof NIP_RESPONSE_DETECTOR.create>[0]>) => () =>
    NIP_RESPONSE_DETECTOR.create({ split, profile, state, ...context });
  assert.throws(create({ state: undefined }), /^RangeError: nip-response: not calibrated/);
  assert.throws(
    create({ state: { ...state, meta: { ...state.meta, classes: 3 } } }),
    /nip-response: .*3 classes/,
  );
  assert.throws(
    create({ state: { ...state, meta: { ...state.meta, inputShape: [32, 32, 3] } } }),
    /nip-response: .*input 32x32x3/,
  );
  const stronger = { ...profile, settings: { ...profile.settings, alpha: 0.5 } };
  assert.throws(create({ profile: stronger }), /nip-response: .*strength 1 .*is 0.5/);
  assert.throws(create({ overrides: { noiseL2: -1 } }), /nip-response: setting noiseL2/);
  assert.throws(create({ profile: undefined }), /nip-response: needs .*profile/);
  assert.throws(() => NIP_RESPONSE_DETECTOR.fit!({ split }, benign), /nip-response: needs .*profile/);
  assert.equal(tf.memory().numTensors, baseline);
  const quiet = NIP_RESPONSE_DETECTOR.create({ split, profile, state, overrides: { noiseL2: 0 } });
  assert.equal(quiet.settings.noiseL2, 0);
  const x = toTensor(fixture.test, 0, 8);
  const out = scoreBatch(quiet, split, x);
  assert.deepEqual(out.details!.noiseLabel, out.labels, "no noise, no change");
  x.dispose();
  quiet.dispose();
});

Deno.test("nip-response: fit, create, score and dispose leave no tensor behind", () => {
  const x = toTensor(fixture.test, 0, 64);
  const baseline = tf.memory().numTensors;
  const again = NIP_RESPONSE_DETECTOR.fit!({ split, profile }, benign);
  assert.deepEqual(again, state);
  const stage = NIP_RESPONSE_DETECTOR.create({ split, profile, state: again });
  scoreRepeatedly(stage, split, x);
  stage.dispose();
  assert.equal(tf.memory().numTensors, baseline);
  x.dispose();
});

Deno.test("nip-response: FGSM adversarial examples (L_inf 0.1) score above benign ones", async () => {
  const stage = NIP_RESPONSE_DETECTOR.create({ split, profile, state });
  await assertDetectsFgsm(stage, split, fixture.test);
  stage.dispose();
});

Deno.test("nip-response: the surrogate (one EOT draw, soft label change) lies in [-1, 2] and has a gradient", () => {
  const x = toTensor(fixture.test, 0, 16);
  const stage = NIP_RESPONSE_DETECTOR.create({ split, profile, state });
  const surrogate = assertSurrogate(stage, split, x, false);
  assert.ok(surrogate.every((v) => v >= -1 && v <= 2), `surrogate ${surrogate}`);
  // Where the real score saw no label change, the surrogate's sigmoid adds at most 0.5 to the same drops.
  const real = scoreBatch(stage, split, x, 5);
  real.scores.forEach((s, i) => {
    if (s < 1) assert.ok(surrogate[i] <= s + 0.5 + 1e-4, `example ${i}: ${surrogate[i]} vs ${s}`);
  });
  stage.dispose();
  x.dispose();
});
