import assert from "node:assert/strict";
import { downsampleDefense } from "../audio/baselines/downsample.ts";

const tone = (hz: number) =>
  Float32Array.from({ length: 8000 }, (_, i) => 0.5 * Math.sin(2 * Math.PI * hz * i / 8000));
const rms = (x: Float32Array) => Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length);
const inner = (x: Float32Array) => x.subarray(300, 7700);

Deno.test("DS keeps content below the low Nyquist frequency and removes content above it", () => {
  const low = tone(1000);
  const kept = downsampleDefense(low);
  assert.equal(kept.length, 8000);
  const error = inner(kept).map((v, i) => v - inner(low)[i]);
  assert.ok(20 * Math.log10(rms(inner(low)) / rms(error)) > 40);
  const removed = downsampleDefense(tone(3000));
  assert.ok(20 * Math.log10(rms(inner(removed)) / rms(tone(3000))) < -40);
  assert.equal(downsampleDefense(tone(500), 2000).length, 8000);
});
