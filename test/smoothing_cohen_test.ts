import assert from "node:assert/strict";
import {
  ABSTAIN,
  binomialTestHalf,
  certifiedRadius,
  certifyFromCounts,
  lowerConfidenceBound,
  maxCertifiableRadius,
  predictFromCounts,
  topTwo,
} from "../src/smoothing/cohen.ts";

const close = (a: number, b: number, tolerance: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tolerance, `${what}: ${a} vs ${b}`);

Deno.test("the lower confidence bound is the Clopper-Pearson one (scipy's beta.ppf)", () => {
  // Reference values from scipy.stats.beta.ppf(alpha, k, n - k + 1).
  close(lowerConfidenceBound(990, 1000, 0.001), 0.9760361871553114, 1e-9, "990/1000");
  close(lowerConfidenceBound(9900, 10000, 0.001), 0.9865311593238062, 1e-9, "9900/10000");
  // All n samples agree: the bound is alpha^(1/n) in closed form.
  close(lowerConfidenceBound(100, 100, 0.01), 0.01 ** (1 / 100), 1e-9, "100/100");
  assert.equal(lowerConfidenceBound(0, 50, 0.05), 0);
  assert.throws(() => lowerConfidenceBound(5, 4, 0.05), /0 <= k <= n/);
  assert.throws(() => lowerConfidenceBound(1, 4, 0), /alpha/);
});

Deno.test("the radius is sigma Phi^-1(pA) and the largest one is reached when every sample agrees", () => {
  close(certifiedRadius(0.8413447460685429, 0.5), 0.5, 1e-9, "Phi(1) at sigma 0.5");
  assert.equal(certifiedRadius(0.5, 1), 0);
  assert.equal(certifiedRadius(0.3, 1), 0);
  close(maxCertifiableRadius(1, 1000, 0.001), 2.4632626, 1e-6, "n = 1,000");
  close(maxCertifiableRadius(0.5, 10000, 0.001), 0.5 * 3.1985775, 1e-6, "n = 10,000");
});

Deno.test("CERTIFY by hand: 990 of 1,000 for the class the selection picked", () => {
  const selection = [2, 95, 3];
  const estimation = [4, 990, 6];
  const certificate = certifyFromCounts(selection, estimation, 0.25, 0.001);
  assert.equal(certificate.label, 1);
  assert.equal(certificate.n, 1000);
  close(certificate.pALower, 0.9760361871553114, 1e-9, "pA lower");
  // scipy: 0.25 * norm.ppf(0.9760361871553114) = 0.49450239553529984.
  close(certificate.radius, 0.49450239553529984, 1e-9, "radius");
});

Deno.test("CERTIFY abstains when the selected class is not a majority, or the selection disagrees", () => {
  const split = certifyFromCounts([0, 10], [480, 520], 0.5, 0.001);
  assert.equal(split.label, ABSTAIN);
  assert.equal(split.radius, 0);
  // The estimation favours class 0, but the selection picked class 1: the bound is on class 1's count.
  const disagreeing = certifyFromCounts([1, 9], [900, 100], 0.5, 0.001);
  assert.equal(disagreeing.label, ABSTAIN);
});

Deno.test("PREDICT answers only when the binomial test separates the top two classes", () => {
  // scipy.stats.binomtest(60, 100).pvalue = 0.0568879...
  close(binomialTestHalf(60, 100), 0.05688793364098089, 1e-10, "60 of 100");
  assert.equal(binomialTestHalf(50, 100), 1);
  close(binomialTestHalf(10, 10), 2 * 0.5 ** 10, 1e-15, "10 of 10");
  assert.equal(predictFromCounts([30, 60, 10], 0.001), ABSTAIN);
  assert.equal(predictFromCounts([30, 60, 10], 0.1), 1);
  assert.equal(predictFromCounts([0, 0, 100], 0.001), 2);
  assert.deepEqual(topTwo([3, 9, 9, 1]), [1, 2]);
  assert.deepEqual(topTwo([5, 0]), [0, 1]);
});
