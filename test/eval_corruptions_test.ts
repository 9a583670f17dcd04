import assert from "node:assert/strict";
import { blur, gaussianNoise, IMAGE_CORRUPTIONS, jpegCorruption } from "../src/eval/corruptions.ts";
import { jpegCompression } from "../src/stages/image/jpeg.ts";
import { mulberry32 } from "../src/random.ts";

Deno.test("gaussian noise has the asked spread and stays in range", () => {
  const values = new Float32Array(20000).fill(0.5);
  const out = gaussianNoise(0.05).apply(values, [1, 100, 200, 1], [0, 1], mulberry32(3));
  const mean = out.reduce((a, b) => a + b, 0) / out.length;
  const sd = Math.sqrt(out.reduce((a, b) => a + (b - mean) ** 2, 0) / out.length);
  assert.ok(Math.abs(mean - 0.5) < 0.002 && Math.abs(sd - 0.05) < 0.002, `${mean} ${sd}`);
  const edge = gaussianNoise(0.5).apply(new Float32Array(1000), [1, 10, 100, 1], [0, 1], mulberry32(4));
  assert.ok(edge.every((v) => v >= 0 && v <= 1) && edge.some((v) => v === 0));
});

Deno.test("the JPEG corruption is the codec round trip; blur spreads a point as [1, 2, 1] x [1, 2, 1] / 16", () => {
  const random = mulberry32(5);
  const image = Float32Array.from({ length: 2 * 16 * 16 * 3 }, () => random());
  assert.deepEqual(
    jpegCorruption(50).apply(image, [2, 16, 16, 3], [0, 1], random),
    jpegCompression(image, [2, 16, 16, 3], 50, [0, 1]),
  );
  const point = new Float32Array(5 * 5);
  point[12] = 16;
  const blurred = blur().apply(point, [1, 5, 5, 1], [0, 1], random);
  const expected = [0, 0, 0, 0, 0, 0, 1, 2, 1, 0, 0, 2, 4, 2, 0, 0, 1, 2, 1, 0, 0, 0, 0, 0, 0];
  blurred.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-6, `${i}: ${v}`));
  const flat = new Float32Array(3 * 4 * 2).fill(0.3);
  assert.ok(blur().apply(flat, [1, 3, 4, 2], [0, 1], random).every((v) => Math.abs(v - 0.3) < 1e-6));
  assert.equal(IMAGE_CORRUPTIONS.length, 3);
});
