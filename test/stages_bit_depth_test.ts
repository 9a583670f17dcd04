import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { mulberry32 } from "../src/random.ts";
import {
  BIT_DEPTH_REDUCTION,
  bitDepthReduction,
  defaultBitDepth,
  roundHalfEven,
} from "../src/stages/image/bit_depth.ts";
import { assertTransformWithIdentityGradient, splitFor } from "./stages_fixture.ts";

await initBackend("wasm");

Deno.test("roundHalfEven sends ties to the even neighbour, like numpy's rint", () => {
  assert.deepEqual(
    [-2.5, -1.5, -0.6, 0.5, 1.5, 2.5, 2.4999, 3.5001].map(roundHalfEven),
    [-2, -2, -1, 0, 2, 2, 2, 4],
  );
});

Deno.test("bitDepthReduction gives exactly 2^bits levels and is idempotent", () => {
  const ramp = Float32Array.from({ length: 1001 }, (_, i) => i / 1000);
  for (const bits of [1, 2, 3, 5]) {
    const once = bitDepthReduction(ramp, bits, [0, 1]);
    assert.equal(new Set(once).size, 2 ** bits, `bits ${bits}`);
    assert.deepEqual(bitDepthReduction(once, bits, [0, 1]), once);
  }
  // On another range, with values beyond it clipped first.
  const wide = Float32Array.from({ length: 500 }, (_, i) => -2 + (i / 499) * 4);
  const reduced = bitDepthReduction(wide, 2, [-1, 1]);
  assert.equal(new Set(reduced).size, 4);
  assert.deepEqual(bitDepthReduction(reduced, 2, [-1, 1]), reduced);
});

Deno.test("bitDepthReduction against hand-computed values", () => {
  // 1 bit on [0, 1]: threshold at 0.5, the tie going to the even level 0.
  assert.deepEqual(Array.from(bitDepthReduction(Float32Array.of(0, 0.49, 0.5, 0.51, 1), 1, [0, 1])), [
    0,
    0,
    0,
    1,
    1,
  ]);
  // 2 bits on [-1, 1]: levels -1, -1/3, 1/3, 1. 0 -> unit 0.5 -> 1.5 -> tie to 2 -> 1/3; 0.3 -> 0.65*3 =
  // 1.95 -> 2 -> 1/3; -0.7 -> 0.15*3 = 0.45 -> 0 -> -1; 5 clips to 1.
  const out = bitDepthReduction(Float32Array.of(0, 0.3, -0.7, 5), 2, [-1, 1]);
  const expected = [1 / 3, 1 / 3, -1, 1];
  out.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-6, `${v} vs ${expected[i]}`));
  // 5 bits on [0, 255]: 31 levels apart by 255/31; 100 -> 100/255*31 = 12.157 -> 12 -> 98.709...
  assert.ok(Math.abs(bitDepthReduction(Float32Array.of(100), 5, [0, 255])[0] - (12 * 255) / 31) < 1e-4);
});

Deno.test("cbdr stage: bits from the channel count (Xu et al.), overrides validated", () => {
  assert.equal(defaultBitDepth(1), 1);
  assert.equal(defaultBitDepth(3), 5);
  assert.deepEqual(BIT_DEPTH_REDUCTION.create({ split: splitFor([28, 28, 1]) }).settings, { bits: 1 });
  const colour = BIT_DEPTH_REDUCTION.create({ split: splitFor([32, 32, 3]) });
  assert.deepEqual(colour.settings, { bits: 5 });
  assert.match(colour.description, /bits=5/);
  assert.deepEqual(
    BIT_DEPTH_REDUCTION.create({ split: splitFor([32, 32, 3]), overrides: { bits: "3" } }).settings,
    { bits: 3 },
  );
  for (const bad of [0, 1.5, 17, "many"]) {
    assert.throws(
      () => BIT_DEPTH_REDUCTION.create({ split: splitFor([28, 28, 1]), overrides: { bits: bad } }),
      RangeError,
    );
  }
});

Deno.test("cbdr stage: transform equals bitDepthReduction, BPDA identity gradient, no leaked tensors", () => {
  const random = mulberry32(4);
  const values = Float32Array.from({ length: 2 * 4 * 4 * 3 }, () => random() * 2 - 1);
  const x = tf.tensor4d(values, [2, 4, 4, 3]);
  const stage = BIT_DEPTH_REDUCTION.create({ split: splitFor([4, 4, 3], [-1, 1]) });
  assertTransformWithIdentityGradient(stage, x, bitDepthReduction(values, 5, [-1, 1]));
  x.dispose();
});
