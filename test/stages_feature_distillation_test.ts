import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { mulberry32 } from "../src/random.ts";
import {
  distillationTable,
  FDISTILL_DEFAULTS,
  FEATURE_DISTILLATION,
  featureDistillation,
} from "../src/stages/image/feature_distillation.ts";
import { assertTransformWithIdentityGradient, splitFor } from "./stages_fixture.ts";

await initBackend("wasm");

function byteImages(length: number, seed: number): Float32Array {
  const random = mulberry32(seed);
  return Float32Array.from({ length }, () => Math.floor(random() * 256) / 255);
}

/** Half to even after snapping float noise away, the rounding the module documents. */
function roundTie(value: number): number {
  const v = Math.round(value * 2 ** 20) / 2 ** 20;
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** One 8x8 block through the textbook DCT-II / DCT-III sums with quantisation `table`. */
function naiveBlock(block: number[], table: Float64Array): number[] {
  const a = (k: number) => (k === 0 ? Math.SQRT1_2 : 1) / 2;
  const cos = (n: number, k: number) => Math.cos(((2 * n + 1) * k * Math.PI) / 16);
  const coefficients = Array.from({ length: 64 }, (_, uv) => {
    const [u, v] = [Math.floor(uv / 8), uv % 8];
    let sum = 0;
    for (let i = 0; i < 64; i++) sum += (block[i] - 128) * cos(Math.floor(i / 8), u) * cos(i % 8, v);
    return roundTie((a(u) * a(v) * sum) / table[uv]) * table[uv];
  });
  return Array.from({ length: 64 }, (_, xy) => {
    const [y, x] = [Math.floor(xy / 8), xy % 8];
    let sum = 0;
    for (let uv = 0; uv < 64; uv++) {
      const [u, v] = [Math.floor(uv / 8), uv % 8];
      sum += a(u) * a(v) * coefficients[uv] * cos(y, u) * cos(x, v);
    }
    return Math.min(255, Math.max(0, roundTie(sum + 128)));
  });
}

Deno.test("distillationTable: the reference's DNN-oriented table, hand-computed entries", () => {
  const at = (table: Float64Array, u: number, v: number) => table[u * 8 + v];
  // factor 50: scale 100, entries (t*100 + 50)/100 = t + 0.5; t = 1 for u + v < 5, qs + 1 = 41 beyond.
  const half = distillationTable(40, 50);
  assert.deepEqual([at(half, 0, 0), at(half, 0, 4), at(half, 4, 0), at(half, 2, 2)], [1.5, 1.5, 1.5, 1.5]);
  assert.deepEqual([at(half, 0, 5), at(half, 1, 4), at(half, 3, 2), at(half, 7, 7)], [
    41.5,
    41.5,
    41.5,
    41.5,
  ]);
  assert.equal(half.filter((q) => q === 1.5).length, 15);
  // factor 10: scale 500 -> 5t + 0.5; factor 1: scale 5000 -> 50t + 0.5, the high band clipped at 255.
  assert.deepEqual([at(distillationTable(40, 10), 0, 0), at(distillationTable(40, 10), 7, 0)], [5.5, 205.5]);
  assert.deepEqual([at(distillationTable(40, 1), 0, 0), at(distillationTable(40, 1), 5, 5)], [50.5, 255]);
  // qs moves only the high band: qs 10, factor 50 -> 11.5.
  assert.equal(at(distillationTable(10, 50), 6, 6), 11.5);
  // The paper's factor 100 gives scale 0: every entry (0 + 50)/100 clipped up to 1, whatever qs.
  assert.ok(distillationTable(FDISTILL_DEFAULTS.qs, FDISTILL_DEFAULTS.factor).every((q) => q === 1));
});

Deno.test("featureDistillation with a table of ones is a near identity on bytes", () => {
  const ones = new Float64Array(64).fill(1);
  for (const [h, w, c] of [[16, 16, 1], [16, 24, 3], [28, 28, 1]]) {
    const images = byteImages(2 * h * w * c, h + c);
    const out = featureDistillation(images, [2, h, w, c], ones, [0, 1]);
    const errors = out.map((v, i) => Math.abs(v - images[i]) * 255);
    const mean = errors.reduce((a, b) => a + b, 0) / errors.length;
    // Grey: only coefficient rounding, within one level. Colour adds the YCbCr byte round trip.
    const limit = c === 1 ? 1 : 4;
    assert.ok(Math.max(...errors) <= limit + 1e-3, `[${h},${w},${c}] largest error ${Math.max(...errors)}`);
    assert.ok(mean < 0.6, `[${h},${w},${c}] mean error ${mean}`);
  }
});

Deno.test("featureDistillation matches the authors' jpeg.py on a grey block (dnn, qs 40, factor 50)", () => {
  const block = [
    [136, 138, 163, 159, 124, 114, 87, 65],
    [115, 149, 170, 158, 128, 82, 49, 50],
    [164, 190, 151, 126, 103, 65, 80, 79],
    [163, 176, 173, 132, 71, 75, 77, 115],
    [191, 166, 142, 119, 83, 70, 93, 98],
    [202, 144, 112, 117, 88, 52, 69, 118],
    [155, 176, 124, 83, 47, 69, 87, 158],
    [171, 116, 86, 79, 62, 76, 108, 138],
  ];
  // jpeg.py's `jpeg(Y, component="dnn", factor=50)` on Y = this block with Cb = Cr = 128, channel Y.
  const expected = [
    [117, 144, 173, 156, 113, 101, 95, 69],
    [128, 159, 168, 157, 134, 86, 51, 54],
    [163, 176, 157, 125, 108, 83, 62, 65],
    [173, 168, 166, 130, 71, 61, 93, 112],
    [183, 160, 147, 122, 84, 81, 98, 98],
    [213, 154, 104, 105, 99, 55, 60, 125],
    [152, 178, 143, 66, 33, 51, 98, 145],
    [172, 102, 79, 96, 81, 68, 105, 150],
  ];
  const out = featureDistillation(
    Float32Array.from(block.flat(), (v) => v / 255),
    [1, 8, 8, 1],
    distillationTable(40, 50),
    [0, 1],
  );
  assert.deepEqual(Array.from(out, (v) => Math.round(v * 255)), expected.flat());
});

Deno.test("featureDistillation equals textbook DCT sums: padded grey planes and YCbCr colour", () => {
  const table = distillationTable(40, 30);
  // Grey 10x9: padded to 16x16 by repeating the last row and column.
  const [h, w] = [10, 9];
  const grey = byteImages(h * w, 3);
  const out = featureDistillation(grey, [1, h, w, 1], table, [0, 1]);
  const padded = (y: number, x: number) =>
    Math.round(grey[Math.min(y, h - 1) * w + Math.min(x, w - 1)] * 255);
  for (const [top, left] of [[0, 0], [0, 8], [8, 0], [8, 8]]) {
    const result = naiveBlock(
      Array.from({ length: 64 }, (_, i) => padded(top + (i >> 3), left + (i & 7))),
      table,
    );
    for (let i = 0; i < 64; i++) {
      const [y, x] = [top + (i >> 3), left + (i & 7)];
      if (y < h && x < w) assert.equal(Math.round(out[y * w + x] * 255), result[i], `grey (${y}, ${x})`);
    }
  }
  // Colour 8x8: JFIF YCbCr bytes, each component distilled, back to RGB bytes.
  const rgb = byteImages(64 * 3, 4);
  const colour = featureDistillation(rgb, [1, 8, 8, 3], table, [0, 1]);
  const px = (i: number, k: number) => Math.round(rgb[i * 3 + k] * 255);
  const toByte = (v: number) => Math.min(255, Math.max(0, roundTie(v)));
  const ycc = Array.from({ length: 64 }, (_, i) => [
    toByte(0.299 * px(i, 0) + 0.587 * px(i, 1) + 0.114 * px(i, 2)),
    toByte(128 - 0.168736 * px(i, 0) - 0.331264 * px(i, 1) + 0.5 * px(i, 2)),
    toByte(128 + 0.5 * px(i, 0) - 0.418688 * px(i, 1) - 0.081312 * px(i, 2)),
  ]);
  const [y, cb, cr] = [0, 1, 2].map((k) => naiveBlock(ycc.map((p) => p[k]), table));
  for (let i = 0; i < 64; i++) {
    const expected = [
      toByte(y[i] + 1.402 * (cr[i] - 128)),
      toByte(y[i] - 0.344136 * (cb[i] - 128) - 0.714136 * (cr[i] - 128)),
      toByte(y[i] + 1.772 * (cb[i] - 128)),
    ];
    assert.deepEqual([0, 1, 2].map((k) => Math.round(colour[i * 3 + k] * 255)), expected, `pixel ${i}`);
  }
});

Deno.test("featureDistillation stays in range, lands on the byte grid and changes the input", () => {
  const random = mulberry32(6);
  const images = Float32Array.from({ length: 2 * 16 * 16 * 3 }, () => random() * 2 - 1);
  for (const factor of [100, 50]) {
    const out = featureDistillation(images, [2, 16, 16, 3], distillationTable(40, factor), [-1, 1]);
    assert.ok(out.every((v) => v >= -1 && v <= 1));
    assert.ok(out.every((v) => Math.abs(((v + 1) / 2) * 255 - Math.round(((v + 1) / 2) * 255)) < 1e-3));
    const change = out.reduce((sum, v, i) => sum + Math.abs(v - images[i]), 0) / out.length;
    assert.ok(change > 0, `factor ${factor}`);
  }
});

Deno.test("fdistill stage: paper defaults, settings, overrides validated", () => {
  const stage = FEATURE_DISTILLATION.create({ split: splitFor([32, 32, 3]) });
  assert.deepEqual(stage.settings, { qs: 40, factor: 100, block_side: 8 });
  assert.match(stage.description, /qs=40, factor=100, block_side=8/);
  assert.deepEqual(
    FEATURE_DISTILLATION.create({ split: splitFor([32, 32, 3]), overrides: { qs: 20, factor: "50" } })
      .settings,
    { qs: 20, factor: 50, block_side: 8 },
  );
  const invalid: Record<string, number>[] = [{ qs: -1 }, { factor: 0 }, { factor: 101 }, { block_side: 16 }];
  for (const bad of invalid) {
    assert.throws(
      () => FEATURE_DISTILLATION.create({ split: splitFor([32, 32, 3]), overrides: bad }),
      RangeError,
    );
  }
});

Deno.test("fdistill stage: transform equals featureDistillation, BPDA identity gradient, no leaked tensors", () => {
  const values = byteImages(2 * 12 * 12 * 3, 8);
  const x = tf.tensor4d(values, [2, 12, 12, 3]);
  const stage = FEATURE_DISTILLATION.create({ split: splitFor([12, 12, 3]), overrides: { factor: 50 } });
  const expected = featureDistillation(values, [2, 12, 12, 3], distillationTable(40, 50), [0, 1]);
  assertTransformWithIdentityGradient(stage, x, expected);
  x.dispose();
});
