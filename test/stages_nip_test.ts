import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../src/data/dataset.ts";
import { buildProfile } from "../src/nip/calibrate.ts";
import { NipDefense } from "../src/nip/defense.ts";
import { forwardAtLayer } from "../src/nip/neurons.ts";
import { NIP, nipStage } from "../src/stages/nip.ts";
import { mulberry32 } from "../src/random.ts";
import type { StageInput } from "../src/stages/stage.ts";
import { nipFixture } from "./nip_fixture.ts";

const fixture = await nipFixture();
const calibrationX = toTensor(fixture.calibration, 0, 300);
const profile = buildProfile(fixture.split, calibrationX, fixture.calibration.labels.slice(0, 300), {
  modelHash: "f",
});
calibrationX.dispose();

function stageInput(x: tf.Tensor, seed = 1): { input: StageInput; dispose: () => void } {
  const forward = forwardAtLayer(fixture.split, x);
  return {
    input: { x, forward: () => forward, random: mulberry32(seed) },
    dispose: () => tf.dispose([forward.layerOutput, forward.scores, forward.labels]),
  };
}

Deno.test("the NIP stage perturbs by the matched candidate, as NipDefense does, and reports the match", () => {
  const x = toTensor(fixture.test, 0, 10);
  const defense = new NipDefense(fixture.split, profile);
  const stage = nipStage(defense, "matched", false);
  const { input, dispose } = stageInput(x);
  const before = tf.memory().numTensors;
  const out = stage.transform!(input);
  const direct = defense.defendBatch(x);
  assert.deepEqual(out.details!.candidateIndex, direct.candidateIndex);
  assert.deepEqual(out.details!.similarity, direct.similarity);
  const a = out.x.dataSync();
  const b = direct.defended.dataSync();
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-6);
  tf.dispose([out.x, direct.defended]);
  assert.equal(tf.memory().numTensors, before);
  assert.equal(stage.role, "transform");
  assert.equal(stage.settings.candidates, profile.candidateCount);
  dispose();
  x.dispose();
  defense.dispose();
});

Deno.test("its own control draws candidates at random from the seed; it has no protocols of its own", () => {
  const x = toTensor(fixture.test, 0, 40);
  const stage = NIP.create({ split: fixture.split, profile });
  const control = stage.randomChoice!();
  assert.equal(control.name, "nip-random-candidate");
  assert.equal(control.protocols, undefined);
  const first = stageInput(x, 7);
  const again = stageInput(x, 7);
  const other = stageInput(x, 8);
  const picks = [first, again, other].map(({ input }) => {
    const out = control.transform!(input);
    out.x.dispose();
    return Array.from(out.details!.candidateIndex);
  });
  assert.deepEqual(picks[0], picks[1]);
  assert.notDeepEqual(picks[0], picks[2]);
  assert.ok(new Set(picks[0]).size > 30, "40 draws from hundreds of candidates mostly differ");
  assert.ok(picks[0].every((c) => c >= 0 && c < profile.candidateCount));
  [first, again, other].forEach((s) => s.dispose());
  control.dispose();
  stage.dispose();
  x.dispose();
});

Deno.test("protocols: paper-oracle is marked as reading the truth, NIP_n is not", () => {
  const x = toTensor(fixture.test, 0, 12);
  const labels = fixture.test.labels.slice(0, 12);
  const stage = NIP.create({ split: fixture.split, profile });
  const [oracle, nipN] = stage.protocols!;
  assert.equal(oracle.name, "paper-oracle");
  assert.equal(oracle.usesTruth, true);
  assert.equal(nipN.name, "NIP_n");
  assert.equal(nipN.usesTruth, false);
  assert.equal(oracle.labels(x, { benignTwins: x, trueLabels: labels }).length, 12);
  assert.equal(nipN.labels(x, { benignTwins: x, trueLabels: labels }).length, 12);
  stage.dispose();
  x.dispose();
});

Deno.test("overrides: strength and scale rule are applied; bad values and a missing profile are refused", () => {
  const stage = NIP.create({ split: fixture.split, profile, overrides: { strength: 0.5, scaleRule: "rms" } });
  assert.equal(stage.settings.strength, 0.5);
  assert.equal(stage.settings.scaleRule, "rms");
  stage.dispose();
  assert.throws(
    () => NIP.create({ split: fixture.split, profile, overrides: { scaleRule: "cubic" } }),
    /paper or rms/,
  );
  assert.throws(() => NIP.create({ split: fixture.split, profile, overrides: { strength: -1 } }), /strength/);
  assert.throws(() => NIP.create({ split: fixture.split }), /profile/);
});
