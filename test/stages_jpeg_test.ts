import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import jpeg from "jpeg-js";
import { initBackend } from "../src/engine/backend.ts";
import { mulberry32 } from "../src/random.ts";
import { JPEG_COMPRESSION, jpegCompression } from "../src/stages/image/jpeg.ts";
import { assertTransformWithIdentityGradient, splitFor } from "./stages_fixture.ts";

await initBackend("wasm");

/** A smooth random image (low frequencies plus a little noise), like a photo more than like noise. */
function smoothImages(n: number, h: number, w: number, c: number, seed: number): Float32Array {
  const random = mulberry32(seed);
  const out = new Float32Array(n * h * w * c);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const [fy, fx, phase] = [random() * 0.5, random() * 0.5, random() * 6];
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const value = 0.5 + 0.4 * Math.sin(fy * y + fx * x + phase) + 0.05 * (random() - 0.5);
          out[((b * h + y) * w + x) * c + ch] = value;
        }
      }
    }
  }
  return out;
}

/** One image through jpeg-js on its own, bytes in and out, greyscale as R = G = B and R taken back. */
function referenceRoundTrip(bytes: Uint8Array, h: number, w: number, c: number, quality: number): Uint8Array {
  const rgba = new Uint8Array(h * w * 4).fill(255);
  for (let p = 0; p < h * w; p++) {
    for (let k = 0; k < 3; k++) rgba[p * 4 + k] = bytes[p * c + (c === 1 ? 0 : k)];
  }
  const decoded = jpeg.decode(jpeg.encode({ data: rgba, width: w, height: h }, quality).data, {
    useTArray: true,
    formatAsRGBA: true,
  }).data;
  return Uint8Array.from({ length: h * w * c }, (_, i) => decoded[Math.floor(i / c) * 4 + (i % c)]);
}

Deno.test("jpegCompression equals jpeg-js on each image alone (batch mosaic, odd sizes, range mapping)", () => {
  for (const [n, h, w, c] of [[5, 28, 28, 1], [4, 32, 32, 3], [3, 13, 21, 3], [2, 5, 9, 1]]) {
    const images = smoothImages(n, h, w, c, h * w + c);
    for (const range of [[0, 1], [-1, 1]] as [number, number][]) {
      const scaled = images.map((v) => range[0] + v * (range[1] - range[0]));
      const out = jpegCompression(scaled, [n, h, w, c], 80, range);
      const size = h * w * c;
      for (let b = 0; b < n; b++) {
        const bytes = Uint8Array.from(images.subarray(b * size, (b + 1) * size), (v) => Math.round(v * 255));
        const expected = referenceRoundTrip(bytes, h, w, c, 80);
        for (let i = 0; i < size; i++) {
          const got = ((out[b * size + i] - range[0]) / (range[1] - range[0])) * 255;
          assert.ok(Math.abs(got - expected[i]) < 1e-3, `[${n},${h},${w},${c}] image ${b} value ${i}`);
        }
      }
    }
  }
});

Deno.test("jpegCompression: quality 100 is close to identity, quality 10 changes more than 80", () => {
  const images = smoothImages(4, 32, 32, 3, 5);
  const meanChange = (quality: number) => {
    const out = jpegCompression(images, [4, 32, 32, 3], quality, [0, 1]);
    return out.reduce((sum, v, i) => sum + Math.abs(v - images[i]), 0) / out.length;
  };
  const [q100, q80, q10] = [meanChange(100), meanChange(80), meanChange(10)];
  assert.ok(q100 < 2 / 255, `quality 100 changes ${q100 * 255} grey levels on average`);
  assert.ok(q80 > q100);
  assert.ok(q10 > 2 * q80, `quality 10 ${q10}, quality 80 ${q80}`);
});

Deno.test("jc stage: paper default, settings, channels and overrides checked", () => {
  const stage = JPEG_COMPRESSION.create({ split: splitFor([28, 28, 1]) });
  assert.deepEqual(stage.settings, { quality: 80 });
  assert.match(stage.description, /quality=80/);
  assert.deepEqual(
    JPEG_COMPRESSION.create({ split: splitFor([28, 28, 1]), overrides: { quality: "30" } }).settings,
    { quality: 30 },
  );
  for (const bad of [0, 101, 50.5, "high"]) {
    assert.throws(
      () => JPEG_COMPRESSION.create({ split: splitFor([28, 28, 1]), overrides: { quality: bad } }),
      RangeError,
    );
  }
  assert.throws(() => JPEG_COMPRESSION.create({ split: splitFor([28, 28, 2]) }), RangeError);
});

Deno.test("jc stage: transform equals jpegCompression, BPDA identity gradient, no leaked tensors", () => {
  const values = smoothImages(3, 12, 10, 3, 9);
  const x = tf.tensor4d(values, [3, 12, 10, 3]);
  const stage = JPEG_COMPRESSION.create({ split: splitFor([12, 10, 3]) });
  assertTransformWithIdentityGradient(stage, x, jpegCompression(values, [3, 12, 10, 3], 80, [0, 1]));
  x.dispose();
});
