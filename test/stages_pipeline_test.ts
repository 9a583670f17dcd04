import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../src/data/dataset.ts";
import { buildProfile } from "../src/nip/calibrate.ts";
import { NipDefense } from "../src/nip/defense.ts";
import type { ModelPart, SplitModel } from "../src/nip/types.ts";
import { DefensePipeline } from "../src/stages/pipeline.ts";
import { nipStage } from "../src/stages/nip.ts";
import type { DefenseStage } from "../src/stages/stage.ts";
import { nipFixture } from "./nip_fixture.ts";

const fixture = await nipFixture();
const calibrationX = toTensor(fixture.calibration, 0, 300);
const profile = buildProfile(fixture.split, calibrationX, fixture.calibration.labels.slice(0, 300), {
  modelHash: "f",
});
calibrationX.dispose();

/** The fixture's split model counting its forwards: through the body (to the layer) or the whole model. */
function countingSplit(): { split: SplitModel; forwards: () => number } {
  let count = 0;
  const counting = (model: ModelPart) => {
    const wrapped = Object.create(model) as { -readonly [K in keyof ModelPart]: ModelPart[K] };
    wrapped.apply = ((...args: Parameters<ModelPart["apply"]>) => {
      count++;
      return model.apply(...args);
    }) as ModelPart["apply"];
    return wrapped;
  };
  const split = {
    ...fixture.split,
    body: counting(fixture.split.body),
    model: counting(fixture.split.model),
  };
  return { split, forwards: () => count };
}

/** A scoring stage that reads the shared forward: the top score of each example. */
function topScoreStage(name: string): DefenseStage {
  return {
    name,
    description: "top score",
    settings: {},
    role: "score",
    domain: "input",
    score: (input) => ({ scores: tf.tidy(() => input.forward().scores.max(1).dataSync() as Float32Array) }),
    dispose() {},
  };
}

Deno.test("one body forward per batch is shared by NIP, the scoring stages and the verdict before", () => {
  const { split, forwards } = countingSplit();
  const x = toTensor(fixture.test, 0, 16);
  const before = tf.memory().numTensors;
  const pipeline = new DefensePipeline(split, [
    topScoreStage("first"),
    nipStage(new NipDefense(split, profile)),
  ]);
  const start = tf.memory().numTensors;
  const withoutAfter = pipeline.run(x, { verdictAfter: false });
  assert.equal(forwards(), 1, "detector + NIP key + verdict before read one forward");
  assert.equal(withoutAfter.labelsAfter, undefined);
  assert.equal(withoutAfter.scores.first.length, 16);
  assert.equal(withoutAfter.details.nip.candidateIndex.length, 16);
  withoutAfter.defended.dispose();

  const withAfter = pipeline.run(x);
  assert.equal(forwards(), 3, "the verdict after defense is one more forward, of the defended batch");
  withAfter.defended.dispose();
  assert.equal(tf.memory().numTensors, start);
  pipeline.dispose();
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
});

Deno.test("a stage after a transform reads the forward of the transformed batch, once", () => {
  const { split, forwards } = countingSplit();
  const x = toTensor(fixture.test, 0, 8);
  const pipeline = new DefensePipeline(split, [
    topScoreStage("before"),
    nipStage(new NipDefense(split, profile)),
    topScoreStage("after"),
  ]);
  const outcome = pipeline.run(x);
  assert.equal(
    forwards(),
    2,
    "one forward of the input, one of the defended batch shared by stage and verdict",
  );
  const top = tf.tidy(() =>
    (split.model.apply(outcome.defended, { training: false }) as tf.Tensor).max(1).dataSync() as Float32Array
  );
  top.forEach((v, i) => assert.ok(Math.abs(v - outcome.scores.after[i]) < 1e-5));
  outcome.defended.dispose();
  pipeline.dispose();
  x.dispose();
});

Deno.test("the NIP stage gives NipDefense's outcome; the verdict before is the bare model's", () => {
  const x = toTensor(fixture.test, 0, 12);
  const defense = new NipDefense(fixture.split, profile);
  const pipeline = new DefensePipeline(fixture.split, [nipStage(defense, "matched", false)]);
  const direct = defense.defendBatch(x);
  const outcome = pipeline.run(x);
  const a = outcome.defended.dataSync();
  const b = direct.defended.dataSync();
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-6);
  assert.deepEqual(outcome.labelsAfter, direct.labelsAfter);
  assert.deepEqual(outcome.labelsBefore, direct.labelsBefore);
  assert.deepEqual(outcome.details.nip.candidateIndex, direct.candidateIndex);
  tf.dispose([outcome.defended, direct.defended, x]);
  defense.dispose();
});

Deno.test("an answering stage's labels are the verdict after defense; no extra forward is made for them", () => {
  const { split, forwards } = countingSplit();
  const x = toTensor(fixture.test, 0, 6);
  const answer: DefenseStage = {
    name: "always-three",
    description: "answers 3",
    settings: {},
    role: "answer",
    domain: "input",
    answer: (input) => ({ labels: new Int32Array(input.x.shape[0]).fill(3) }),
    dispose() {},
  };
  const pipeline = new DefensePipeline(split, [answer]);
  const outcome = pipeline.run(x);
  assert.deepEqual(Array.from(outcome.labelsAfter!), [3, 3, 3, 3, 3, 3]);
  assert.equal(forwards(), 1);
  outcome.defended.dispose();
  x.dispose();
  assert.throws(
    () => new DefensePipeline(split, [answer, { ...answer, name: "again" }]),
    /one answering stage/,
  );
  assert.throws(() => new DefensePipeline(split, [answer, answer]), /appears twice/);
});

Deno.test("signal stages run before the front end; input stages go on from its output", async () => {
  const calls: string[] = [];
  const halve: DefenseStage = {
    name: "halve",
    description: "halves the signal",
    settings: {},
    role: "transform",
    domain: "signal",
    transformSignals: (signals) => {
      calls.push("signal");
      return Promise.resolve(signals.map((s) => s.map((v) => v / 2)));
    },
    dispose() {},
  };
  const x = toTensor(fixture.test, 0, 4);
  const signals = Array.from({ length: 4 }, (_, i) => fixture.test.images.slice(i * 784, (i + 1) * 784));
  const frontEnd = (s: Float32Array[]) => {
    calls.push("front end");
    return tf.tensor4d(s.flatMap((row) => Array.from(row)), [s.length, 28, 28, 1]);
  };
  const pipeline = new DefensePipeline(fixture.split, [halve]);
  assert.throws(() => pipeline.run(x), /runWithSignals/);
  const before = tf.memory().numTensors;
  const outcome = await pipeline.runWithSignals(x, signals, frontEnd);
  assert.deepEqual(calls, ["signal", "front end"]);
  const defended = outcome.defended.dataSync();
  assert.ok(Math.abs(defended[300] - x.dataSync()[300] / 2) < 1e-7);
  const bare = tf.tidy(() => (fixture.split.model.predict(x) as tf.Tensor).argMax(1).dataSync());
  assert.deepEqual(Array.from(outcome.labelsBefore), Array.from(bare));
  outcome.defended.dispose();
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
});

Deno.test("the differentiable pipeline gives the defended values and NIP's gradient with the match held", () => {
  const x = toTensor(fixture.test, 0, 5);
  const defense = new NipDefense(fixture.split, profile);
  const pipeline = new DefensePipeline(fixture.split, [nipStage(defense)]);
  const outcome = pipeline.run(x);
  const values = tf.tidy(() => pipeline.differentiable(x).dataSync());
  const expected = outcome.defended.dataSync();
  for (let i = 0; i < values.length; i++) assert.ok(Math.abs(values[i] - expected[i]) < 1e-6);
  const gradient = tf.tidy(() =>
    tf.grad((input: tf.Tensor) => pipeline.differentiable(input).sum())(x).dataSync()
  );
  assert.ok(gradient.every((g) => Number.isFinite(g)));
  assert.ok(gradient.some((g) => g !== 0));
  tf.dispose([outcome.defended, x]);
  pipeline.dispose();
});

Deno.test("transforms: false runs the scoring stages only; the input is the defended batch", () => {
  const { split, forwards } = countingSplit();
  const x = toTensor(fixture.test, 0, 6);
  const pipeline = new DefensePipeline(split, [
    topScoreStage("score"),
    nipStage(new NipDefense(split, profile)),
  ]);
  const outcome = pipeline.run(x, { transforms: false });
  assert.equal(forwards(), 1, "one forward: the scoring stage's, reused as both verdicts");
  assert.deepEqual(outcome.defended.dataSync(), x.dataSync());
  assert.deepEqual(outcome.labelsAfter, outcome.labelsBefore);
  assert.equal(outcome.details.nip, undefined);
  assert.equal(outcome.scores.score.length, 6);
  outcome.defended.dispose();
  pipeline.dispose();
  x.dispose();
});
