import assert from "node:assert/strict";
import { QUANTIZE_DEFAULT_STEP, quantizeWaveform } from "../audio/baselines/quantize.ts";

Deno.test("QTZ rounds 16-bit samples to multiples of q with at most q/2 error", () => {
  const x = Float32Array.from({ length: 4000 }, (_, i) => Math.sin(i * 0.013) * 0.999);
  const q = quantizeWaveform(x);
  assert.equal(QUANTIZE_DEFAULT_STEP, 256);
  for (let i = 0; i < x.length; i++) {
    const units = q[i] * 32768;
    assert.ok(Math.abs(units / 256 - Math.round(units / 256)) < 1e-6);
    assert.ok(Math.abs(q[i] - x[i]) <= 128 / 32768 + 1e-6 || Math.abs(x[i]) > 32640 / 32768);
  }
  // a perturbation smaller than half a step disappears
  const perturbed = x.map((v, i) => v + (i % 2 ? 1 : -1) * 20 / 32768);
  const same = quantizeWaveform(perturbed).filter((v, i) => v === q[i]).length;
  assert.ok(same / x.length > 0.8);
  assert.throws(() => quantizeWaveform(x, 0), /step must be positive/);
});
