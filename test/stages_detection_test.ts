import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../src/data/dataset.ts";
import { getAttack, misclassification, targetFromModel } from "../src/attacks/mod.ts";
import { clopperPearson } from "../src/stats/binomial.ts";
import { buildProfile } from "../src/nip/calibrate.ts";
import { neuronOutputs } from "../src/nip/neurons.ts";
import type { NipProfile } from "../src/nip/profile.ts";
import {
  calibrateDetection,
  DETECTION,
  detectionMembers,
  detectionStage,
  stageScores,
} from "../src/stages/detection.ts";
import { DefensePipeline } from "../src/stages/pipeline.ts";
import { buildStages } from "../src/stages/registry.ts";
import type { DefenseStage, StageFactory } from "../src/stages/stage.ts";
import { nipFixture } from "./nip_fixture.ts";

const fixture = await nipFixture();
const x = toTensor(fixture.calibration, 0, 600);
const profile: NipProfile = buildProfile(
  fixture.split,
  x.slice(0, 150),
  fixture.calibration.labels.slice(0, 150),
  {
    modelHash: "f",
  },
);

/** A detector for the test: one minus the top score (fit: nothing), or the layer's activation norm (fit: its mean). */
function testDetector(name: string, kind: "confidence" | "norm"): StageFactory {
  const score = (input: Parameters<NonNullable<DefenseStage["score"]>>[0], shift: number) =>
    tf.tidy(() => {
      const forward = input.forward();
      const value = kind === "confidence"
        ? tf.scalar(1).sub(forward.scores.max(1))
        : neuronOutputs(forward.layerOutput).norm("euclidean", 1).sub(shift).abs();
      return value.dataSync() as Float32Array;
    });
  return {
    name,
    summary: name,
    modalities: ["image"],
    needsProfile: false,
    fit: (_context, benign) => ({
      meta: { fitted: benign.labels.length },
      arrays: { shift: Float32Array.of(kind === "norm" ? 10 : 0) },
    }),
    create: ({ state }) => {
      if (!state) throw new RangeError(`${name}: not calibrated`);
      const shift = (state.arrays.shift as Float32Array)[0];
      return {
        name,
        description: name,
        settings: {},
        role: "score",
        domain: "input",
        score: (input) => ({ scores: score(input, shift) }),
        dispose() {},
      };
    },
  };
}

const members = [testDetector("confidence", "confidence"), testDetector("norm", "norm")];
const sets = {
  fit: { x: x.slice(150, 150), labels: fixture.calibration.labels.slice(150, 300) },
  reference: { x: x.slice(300, 150), labels: fixture.calibration.labels.slice(300, 450) },
  heldOut: { x: x.slice(450, 150), labels: fixture.calibration.labels.slice(450, 600) },
};

Deno.test("calibration stores each member's fit with sorted reference and held-out scores, and the combination's", () => {
  const before = tf.memory().numTensors;
  const states = calibrateDetection(members, { split: fixture.split, profile }, sets);
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(Object.keys(states), ["confidence", "norm", DETECTION]);
  assert.deepEqual(detectionMembers(states[DETECTION]), ["confidence", "norm"]);
  assert.equal(states.norm.meta.fitted, 150);
  for (const name of ["confidence", "norm"]) {
    const { reference, heldOut } = states[name].arrays;
    assert.equal(reference.length, 150);
    assert.ok(reference.every((v, i) => i === 0 || reference[i - 1] <= v), "sorted");
    assert.equal(heldOut.length, 150);
  }
  assert.equal(states[DETECTION].arrays.heldOut.length, 150);
  assert.throws(
    () =>
      calibrateDetection(
        [{
          ...members[0],
          create: () => ({ ...buildStages(["cbdr"], { split: fixture.split, modality: "image" })[0] }),
        }],
        { split: fixture.split },
        sets,
      ),
    /not a detector/,
  );
});

Deno.test("the detect stage gives the combined p-value and each member's; benign flags stay near alpha", async () => {
  const states = calibrateDetection(members, { split: fixture.split, profile }, sets);
  const withDetection: NipProfile = { ...profile, stages: states };
  // The registry knows the real detectors only; build the stage the way it does, over the test members.
  const built = members.map((m) => m.create({ split: fixture.split, state: states[m.name] }));
  const pipeline = new DefensePipeline(fixture.split, [detectionStage(built, withDetection.stages!)]);
  const test = toTensor(fixture.test, 0, 300);
  const before = tf.memory().numTensors;
  const outcome = pipeline.run(test, { verdictAfter: false });
  outcome.defended.dispose();
  assert.equal(tf.memory().numTensors, before);
  const details = outcome.details[DETECTION];
  for (const key of ["pValue", "confidence.score", "confidence.pValue", "norm.score", "norm.pValue"]) {
    assert.equal(details[key].length, 300, key);
  }
  assert.ok(details.pValue.every((p) => p > 0 && p <= 1));
  const flagged = details.pValue.filter((p) => p <= 0.1).length;
  const [lower] = clopperPearson(flagged, 300, 0.99);
  assert.ok(lower <= 0.1, `${flagged}/300 benign test inputs flagged at alpha 0.1`);

  // Adversarial examples are less confident: the combination flags more of them than of the benign ones.
  const labels = fixture.test.labels.slice(0, 300);
  const attack = await getAttack("fgsm").run(
    targetFromModel(fixture.split.model, { inputRange: [0, 1] }),
    test as tf.Tensor4D,
    misclassification(labels),
    { epsilon: 0.1 },
  );
  const scores = stageScores(fixture.split, pipeline.stages[0], attack.adversarial);
  const benignScores = stageScores(fixture.split, pipeline.stages[0], test);
  const mean = (v: Float32Array) => v.reduce((a, b) => a + b, 0) / v.length;
  assert.ok(mean(scores) > mean(benignScores), `${mean(scores)} vs ${mean(benignScores)}`);
  tf.dispose([test, attack.adversarial]);
  pipeline.dispose();
});

Deno.test("the detection's surrogate names a member that has no differentiable surrogate", () => {
  const states = calibrateDetection(members, { split: fixture.split, profile }, sets);
  const built = members.map((m) => m.create({ split: fixture.split, state: states[m.name] }));
  const stage = detectionStage(built, states);
  const test = toTensor(fixture.test, 0, 4);
  assert.throws(
    () => stage.surrogateScore!({ x: test, forward: () => assert.fail("unused"), random: () => 0.5 }),
    /detector "confidence" has no differentiable surrogate/,
  );
  test.dispose();
  stage.dispose();
});
