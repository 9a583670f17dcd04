import assert from "node:assert/strict";
import { clopperPearson } from "../src/stats/binomial.ts";
import * as tf from "@tensorflow/tfjs";
import {
  bonferroni,
  conformalPValues,
  fisherStatistic,
  smoothNegLogPValue,
  sortedAscending,
} from "../src/stages/conformal.ts";
import { mulberry32 } from "../src/random.ts";

Deno.test("p = (1 + #{calibration >= s}) / (m + 1), ties counted, NaN the most suspicious", () => {
  const calibration = sortedAscending([3, 1, 2, 2, 5]);
  assert.deepEqual(Array.from(calibration), [1, 2, 2, 3, 5]);
  const p = conformalPValues(calibration, [0, 2, 2.5, 5, 6, NaN]);
  assert.deepEqual(Array.from(p, (v) => Math.round(v * 6)), [6, 5, 3, 2, 1, 1]);
  assert.throws(() => conformalPValues(new Float32Array(0), [1]), /calibration scores/);
});

Deno.test("on exchangeable benign scores the flagged fraction stays within alpha (binomial interval)", () => {
  const random = mulberry32(11);
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const calibration = sortedAscending(Array.from({ length: 999 }, normal));
  const n = 20000;
  const p = conformalPValues(calibration, Array.from({ length: n }, normal));
  for (const alpha of [0.01, 0.05, 0.1]) {
    const flagged = p.filter((v) => v <= alpha).length;
    const [lower] = clopperPearson(flagged, n, 0.999);
    assert.ok(lower <= alpha, `alpha ${alpha}: ${flagged}/${n} flagged`);
    assert.ok(flagged / n > alpha / 2, `alpha ${alpha}: the bound is used, not wasted (${flagged}/${n})`);
  }
});

Deno.test("Fisher's statistic and Bonferroni's p-value on hand-computed cases", () => {
  const a = Float32Array.from([0.5, 0.01]);
  const b = Float32Array.from([0.25, 1]);
  const t = fisherStatistic([a, b]);
  assert.ok(Math.abs(t[0] - -2 * Math.log(0.125)) < 1e-5);
  assert.ok(Math.abs(t[1] - -2 * Math.log(0.01)) < 1e-5);
  assert.deepEqual(Array.from(bonferroni([a, b]), (v) => Number(v.toFixed(6))), [0.5, 0.02]);
});

Deno.test("the smoothed -ln p follows the conformal one, grows with the score and keeps growing past the largest", () => {
  const calibration = sortedAscending(Float32Array.from({ length: 200 }, (_, i) => i / 10));
  const probes = [-5, 0.55, 5.05, 10.05, 15.05, 19.85, 25, 30];
  const scores = tf.tensor1d(probes);
  const smooth = smoothNegLogPValue(calibration, scores);
  const values = Array.from(smooth.dataSync());
  const exact = Array.from(conformalPValues(calibration, probes), (p) => -Math.log(p));
  // Inside the calibration range, between calibration points, the two agree to a few hundredths (at the
  // top edge the sigmoids below the score have no partners above it to cancel them).
  for (let i = 1; i <= 4; i++) {
    assert.ok(Math.abs(values[i] - exact[i]) < 0.05, `${probes[i]}: ${values[i]} vs ${exact[i]}`);
  }
  for (let i = 1; i < values.length; i++) assert.ok(values[i] > values[i - 1], `increasing at ${probes[i]}`);
  // Past the largest (19.9), one unit of -ln p per 5-95% spread (18.9 - 0.9 = 18).
  assert.ok(Math.abs(values[7] - values[6] - 5 / 18) < 1e-3, `${values[7] - values[6]}`);
  const gradient = tf.grad((s: tf.Tensor) => smoothNegLogPValue(calibration, s as tf.Tensor1D).sum())(
    scores,
  );
  assert.ok(
    Array.from(gradient.dataSync()).slice(1).every((g) => g > 0),
    "positive gradient past the lowest",
  );
  tf.dispose([scores, smooth, gradient]);
});
