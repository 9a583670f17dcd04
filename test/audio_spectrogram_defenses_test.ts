import assert from "node:assert/strict";
import { bitDepthReduction, spatialSmoothing } from "../audio/baselines/spectrogram.ts";
import { FEATURE_RANGE, MEL_BANDS, NUM_FRAMES } from "../audio/config.ts";

const size = NUM_FRAMES * MEL_BANDS;

Deno.test("spatial smoothing removes an isolated spike and keeps flat regions", () => {
  const flat = new Float32Array(size).fill(7);
  assert.deepEqual(spatialSmoothing(flat), flat);
  const spiked = flat.slice();
  spiked[30 * MEL_BANDS + 20] = 20;
  assert.equal(spatialSmoothing(spiked, 3)[30 * MEL_BANDS + 20], 7);
  assert.equal(spatialSmoothing(spiked, 2)[30 * MEL_BANDS + 20], 7);
  const ramp = Float32Array.from({ length: size }, (_, i) => i % MEL_BANDS);
  assert.equal(spatialSmoothing(ramp, 3)[10 * MEL_BANDS + 5], 5); // median of 4,5,6 rows
});

Deno.test("bit-depth reduction leaves 2^bits levels with at most half a step of error", () => {
  const x = Float32Array.from({ length: size }, (_, i) => (i / size) * FEATURE_RANGE[1]);
  const reduced = bitDepthReduction(x, 4);
  assert.ok(new Set(reduced).size <= 16);
  const step = (FEATURE_RANGE[1] - FEATURE_RANGE[0]) / 15;
  for (let i = 0; i < size; i++) assert.ok(Math.abs(reduced[i] - x[i]) <= step / 2 + 1e-4);
});
