import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { FEATURE_RANGE, FEATURE_SHAPE } from "../audio/config.ts";
import { toTensor } from "../src/data/dataset.ts";
import { splitModel } from "../src/engine/split.ts";
import type { SplitModel } from "../src/nip/types.ts";
import { SQUEEZE_AUDIO_BITS, SQUEEZE_DETECTOR } from "../src/stages/detectors/squeeze.ts";
import { bitDepthReduction } from "../src/stages/image/bit_depth.ts";
import { medianSmoothing } from "../src/stages/image/median_smoothing.ts";
import { nipFixture } from "./nip_fixture.ts";
import { assertDetectsFgsm, assertSurrogate, scoreBatch } from "./detectors_fixture.ts";

/** The detector's score computed independently: each squeezed copy predicted alone, L1 of softmax, max. */
function expectedScores(split: SplitModel, x: tf.Tensor, bits: number, window: number, logits: boolean) {
  const shape = x.shape as [number, number, number, number];
  const values = x.dataSync() as Float32Array;
  const probs = (input: Float32Array) =>
    tf.tidy(() => {
      const out = split.model.predict(tf.tensor4d(input, shape)) as tf.Tensor;
      return (logits ? tf.softmax(out) : out).arraySync() as number[][];
    });
  const p = probs(values);
  const copies = [bitDepthReduction(values, bits, split.inputRange), medianSmoothing(values, shape, window)]
    .map(probs);
  return p.map((row, i) =>
    Math.max(...copies.map((q) => row.reduce((sum, v, j) => sum + Math.abs(v - q[i][j]), 0)))
  );
}

/** A seeded conv net on 28x28x1 whose last layer is linear, so it outputs logits. */
function logitsSplit(): SplitModel {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 4, kernelSize: 3, kernelInitializer: init(7) }),
      tf.layers.flatten({ name: "flatten" }),
      tf.layers.dense({ units: 10, kernelInitializer: init(8), biasInitializer: "zeros" }),
    ],
  });
  return splitModel(model, { layerName: "flatten", inputRange: [0, 1] });
}

Deno.test("squeeze: score equals an independent squeeze-predict-L1-max, on probs and on logits", async () => {
  const { split, test } = await nipFixture();
  const x = toTensor(test, 0, 8);
  // A second model whose last layer is linear: the detector applies softmax first. Built and predicted
  // (tfjs-layers caches a few scalars on a model's first use) before the tensor baseline.
  const logits = logitsSplit();
  const expected = expectedScores(split, x, 1, 2, false);
  const otherExpected = expectedScores(logits, x, 3, 3, true);
  const baseline = tf.memory().numTensors;
  const stage = SQUEEZE_DETECTOR.create({ split });
  assert.deepEqual(stage.settings, { bits: 1, window: 2 });
  assert.equal(stage.role, "score");
  assert.equal(stage.domain, "input");
  const out = scoreBatch(stage, split, x);
  out.scores.forEach((s, i) => assert.ok(Math.abs(s - expected[i]) < 1e-5, `${i}: ${s} vs ${expected[i]}`));
  out.scores.forEach((s, i) =>
    assert.equal(s, Math.max(out.details!.l1BitDepth[i], out.details!.l1Median[i]))
  );
  assert.ok(out.scores.some((s) => s > 1e-3), "real images move under squeezing");
  // Deterministic: the same batch scores the same.
  assert.deepEqual(scoreBatch(stage, split, x).scores, out.scores);
  const other = SQUEEZE_DETECTOR.create({ split: logits, overrides: { bits: 3, window: 3 } });
  const otherScores = scoreBatch(other, logits, x).scores;
  otherScores.forEach((s, i) =>
    assert.ok(Math.abs(s - otherExpected[i]) < 1e-5, `${s} vs ${otherExpected[i]}`)
  );
  otherScores.forEach((s) => assert.ok(s >= 0 && s <= 2));
  stage.dispose();
  other.dispose();
  assert.equal(tf.memory().numTensors, baseline);
  logits.model.dispose();
  x.dispose();
});

Deno.test("squeeze: an input at both squeezers' fixed point scores 0", async () => {
  const { split } = await nipFixture();
  // Binary (fixed under 1 bit) and 1 exactly where y >= a or x >= b: every 2x2 window (offsets -1..0,
  // upper median) then keeps its cell's value.
  const corners = [[28, 28], [0, 0], [14, 28], [28, 9], [10, 20], [5, 3]];
  const values = new Float32Array(corners.length * 28 * 28);
  corners.forEach(([a, b], n) => {
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) values[(n * 28 + y) * 28 + x] = +(y >= a || x >= b);
    }
  });
  const shape: [number, number, number, number] = [corners.length, 28, 28, 1];
  assert.deepEqual(bitDepthReduction(values, 1, [0, 1]), values);
  assert.deepEqual(medianSmoothing(values, shape, 2), values);
  const x = tf.tensor4d(values, shape);
  const baseline = tf.memory().numTensors;
  const stage = SQUEEZE_DETECTOR.create({ split });
  // The copies go through the whole model in a batch of 2n, the input through body and head in a batch
  // of n: the same arithmetic (exactly 0 on wasm), allowed float32 rounding elsewhere.
  scoreBatch(stage, split, x).scores.forEach((s) => assert.ok(s < 1e-6, `score ${s}`));
  stage.dispose();
  assert.equal(tf.memory().numTensors, baseline);
  x.dispose();
});

Deno.test("squeeze: settings validated; 4 bits on an audio model's log-mel map", async () => {
  const { split } = await nipFixture();
  assert.deepEqual(SQUEEZE_DETECTOR.create({ split, overrides: { bits: "5", window: 3 } }).settings, {
    bits: 5,
    window: 3,
  });
  const bad: Record<string, number | string>[] = [
    { bits: 0 },
    { bits: 17 },
    { bits: 1.5 },
    { bits: "many" },
    { window: 0 },
    { window: 2.5 },
  ];
  for (const overrides of bad) {
    assert.throws(() => SQUEEZE_DETECTOR.create({ split, overrides }), RangeError, JSON.stringify(overrides));
  }
  const colour = { ...split, inputShape: [32, 32, 3] };
  assert.equal(SQUEEZE_DETECTOR.create({ split: colour }).settings.bits, 5);
  const audio = {
    ...split,
    inputShape: [...FEATURE_SHAPE],
    inputRange: [...FEATURE_RANGE] as [number, number],
  };
  assert.equal(SQUEEZE_DETECTOR.create({ split: audio }).settings.bits, SQUEEZE_AUDIO_BITS);
  assert.equal(SQUEEZE_DETECTOR.create({ split: audio, overrides: { bits: 6 } }).settings.bits, 6);
});

Deno.test("squeeze: FGSM adversarial examples (L_inf 0.1) score above benign ones", async () => {
  const fixture = await nipFixture();
  const stage = SQUEEZE_DETECTOR.create({ split: fixture.split });
  await assertDetectsFgsm(stage, fixture.split, fixture.test);
  stage.dispose();
});

Deno.test("squeeze: the surrogate (squeezers by BPDA) is the score, with a gradient", async () => {
  const { split } = await nipFixture();
  const x = toTensor((await nipFixture()).test, 0, 16);
  const stage = SQUEEZE_DETECTOR.create({ split });
  assertSurrogate(stage, split, x, true);
  stage.dispose();
  x.dispose();
});
