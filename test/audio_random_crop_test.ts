import assert from "node:assert/strict";
import { RANDOM_CROP_DEFAULT_COUNT, randomCrop } from "../audio/baselines/random_crop.ts";
import { mulberry32 } from "../src/random.ts";

Deno.test("RC deletes exactly cropCount samples and keeps the rest in order", () => {
  const ramp = Float32Array.from({ length: 8000 }, (_, i) => i);
  const cropped = randomCrop(ramp, RANDOM_CROP_DEFAULT_COUNT, mulberry32(3));
  assert.equal(RANDOM_CROP_DEFAULT_COUNT, 500);
  assert.equal(cropped.length, 7500);
  for (let i = 1; i < cropped.length; i++) assert.ok(cropped[i] > cropped[i - 1]);
  assert.deepEqual(randomCrop(ramp, 500, mulberry32(3)), cropped);
  assert.notDeepEqual(randomCrop(ramp, 500, mulberry32(4)), cropped);
  assert.equal(randomCrop(ramp, 10_000, mulberry32(1)).length, 0);
  assert.equal(randomCrop(ramp, 0).length, 8000);
});
