import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { mulberry32 } from "../src/random.ts";
import {
  TOTAL_VAR_MIN,
  totalVarMin,
  TVM_DEFAULTS,
  tvMinimizeChannel,
} from "../src/stages/image/tv_minimization.ts";
import { assertTransformWithIdentityGradient, splitFor, stageInput } from "./stages_fixture.ts";

await initBackend("wasm");

/** ART's TotalVarMin objective, unsmoothed: fit, TV (row and column difference norms) and the total. */
function artObjective(
  z: ArrayLike<number>,
  x: ArrayLike<number>,
  mask: ArrayLike<number>,
  h: number,
  w: number,
) {
  let fit = 0;
  for (let i = 0; i < h * w; i++) fit += mask[i] * (z[i] - x[i]) ** 2;
  let tv = 0;
  for (let r = 0; r < h - 1; r++) {
    tv += Math.hypot(...Array.from({ length: w }, (_, col) => z[(r + 1) * w + col] - z[r * w + col]));
  }
  for (let col = 0; col < w - 1; col++) {
    tv += Math.hypot(...Array.from({ length: h }, (_, r) => z[r * w + col + 1] - z[r * w + col]));
  }
  return { fit: Math.sqrt(fit), tv };
}

/** A ring (an MNIST-like stroke) with noise on it, values in [0, 1]. */
function ring(h: number, w: number, seed: number): Float64Array {
  const random = mulberry32(seed);
  return Float64Array.from({ length: h * w }, (_, i) => {
    const distance = Math.hypot(Math.floor(i / w) - h / 2, (i % w) - w / 2);
    return Math.abs(distance - h / 4) < 2 ? 0.7 + 0.3 * random() : 0.15 * random();
  });
}

Deno.test("tvMinimizeChannel lowers ART's objective, and its TV term, from the input", () => {
  const [h, w] = [20, 24];
  for (const seed of [1, 2, 3]) {
    const x = ring(h, w, seed);
    const random = mulberry32(100 + seed);
    const mask = Uint8Array.from({ length: h * w }, () => (random() < 0.5 ? 1 : 0));
    for (const lambda of [0.1, 0.5]) {
      const z = tvMinimizeChannel(x, mask, h, w, lambda, 10);
      const before = artObjective(x, x, mask, h, w);
      const after = artObjective(z, x, mask, h, w);
      const [objectiveBefore, objectiveAfter] = [before.tv * lambda, after.fit + lambda * after.tv];
      assert.ok(objectiveAfter < 0.9 * objectiveBefore, `${objectiveAfter} vs ${objectiveBefore}`);
      assert.ok(after.tv < 0.9 * before.tv);
      // More iterations lower it further.
      const longer = tvMinimizeChannel(x, mask, h, w, lambda, 30);
      const afterLonger = artObjective(longer, x, mask, h, w);
      assert.ok(afterLonger.fit + lambda * afterLonger.tv < objectiveAfter);
    }
  }
});

Deno.test("tvMinimizeChannel: with every value kept and a tiny lambda the image barely moves", () => {
  const [h, w] = [16, 16];
  const x = ring(h, w, 4);
  const z = tvMinimizeChannel(x, new Uint8Array(h * w).fill(1), h, w, 1e-4, 10);
  const largest = z.reduce((m, v, i) => Math.max(m, Math.abs(v - x[i])), 0);
  assert.ok(largest < 1e-3, `moved by ${largest}`);
});

Deno.test("totalVarMin: masks drawn per value in memory order, channels solved apart, clipped to the range", () => {
  const [n, h, w, c] = [2, 10, 12, 3];
  const random = mulberry32(8);
  const images = Float32Array.from({ length: n * h * w * c }, () => 2 * random() - 1);
  const settings = { prob: 0.5, lambda: 0.3, maxIter: 10 };
  const out = totalVarMin(images, [n, h, w, c], settings, [-1, 1], mulberry32(21));
  assert.ok(out.every((v) => v >= -1 && v <= 1));
  // The same masks, drawn here in the documented order, and each plane solved on the unit scale.
  const draw = mulberry32(21);
  for (let b = 0; b < n; b++) {
    const mask = Array.from({ length: h * w * c }, () => (draw() < 0.5 ? 1 : 0));
    for (let ch = 0; ch < c; ch++) {
      const pick = (p: number) => (b * h * w + p) * c + ch;
      const plane = Float64Array.from({ length: h * w }, (_, p) => (images[pick(p)] + 1) / 2);
      const planeMask = Uint8Array.from({ length: h * w }, (_, p) => mask[p * c + ch]);
      const z = tvMinimizeChannel(plane, planeMask, h, w, 0.3, 10);
      for (let p = 0; p < h * w; p++) {
        assert.ok(Math.abs(out[pick(p)] - (-1 + 2 * Math.min(1, Math.max(0, z[p])))) < 1e-6);
      }
    }
  }
});

Deno.test("tvm stage: paper defaults, settings, overrides validated", () => {
  const stage = TOTAL_VAR_MIN.create({ split: splitFor([28, 28, 1]) });
  assert.deepEqual(TVM_DEFAULTS, { prob: 0.5, lambda: 0.1, maxIter: 10 });
  assert.deepEqual(stage.settings, { prob: 0.5, lambda: 0.1, max_iter: 10 });
  assert.match(stage.description, /prob=0.5, lambda=0.1, max_iter=10/);
  const custom = TOTAL_VAR_MIN.create({
    split: splitFor([28, 28, 1]),
    overrides: { prob: "0.3", lambda: 0.5, max_iter: 20 },
  });
  assert.deepEqual(custom.settings, { prob: 0.3, lambda: 0.5, max_iter: 20 });
  const invalid: Record<string, number>[] = [{ prob: 1.5 }, { lambda: -1 }, { max_iter: 0 }, {
    max_iter: 2.5,
  }];
  for (const bad of invalid) {
    assert.throws(() => TOTAL_VAR_MIN.create({ split: splitFor([28, 28, 1]), overrides: bad }), RangeError);
  }
});

Deno.test("tvm stage: seeded, BPDA identity gradient, no leaked tensors", () => {
  const values = Float32Array.from(
    { length: 3 * 12 * 12 },
    (_, i) => ring(12, 12, 1 + Math.floor(i / 144))[i % 144],
  );
  const x = tf.tensor4d(values, [3, 12, 12, 1]);
  const baseline = tf.memory().numTensors;
  const stage = TOTAL_VAR_MIN.create({ split: splitFor([12, 12, 1]) });
  const first = stage.transform!(stageInput(x, 5)).x;
  const again = stage.transform!(stageInput(x, 5)).x;
  const other = stage.transform!(stageInput(x, 6)).x;
  assert.notEqual(first, x);
  const expected = totalVarMin(values, [3, 12, 12, 1], TVM_DEFAULTS, [0, 1], mulberry32(5));
  assert.deepEqual(first.dataSync(), expected);
  assert.deepEqual(again.dataSync(), expected);
  assert.ok(other.dataSync().some((v, i) => Math.abs(v - expected[i]) > 1e-3), "another seed, another mask");
  tf.dispose([first, again, other]);
  assert.equal(tf.memory().numTensors, baseline);
  assertTransformWithIdentityGradient(stage, x, expected, 5);
  x.dispose();
});
