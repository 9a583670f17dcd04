import assert from "node:assert/strict";
import { betaQuantile, clopperPearson, lnGamma, regularizedBeta } from "../src/stats/binomial.ts";

Deno.test("lnGamma matches factorials and Gamma(1/2) = sqrt(pi)", () => {
  for (
    const [x, expected] of [[1, 0], [5, Math.log(24)], [11, Math.log(3628800)], [
      0.5,
      0.5 * Math.log(Math.PI),
    ]]
  ) {
    assert.ok(Math.abs(lnGamma(x) - expected) < 1e-10, `lnGamma(${x})`);
  }
});

Deno.test("the incomplete beta is the binomial tail and its closed forms", () => {
  // I_x(1, 1) = x; I_x(a, 1) = x^a; I_x(1, b) = 1 - (1 - x)^b.
  assert.ok(Math.abs(regularizedBeta(0.3, 1, 1) - 0.3) < 1e-12);
  assert.ok(Math.abs(regularizedBeta(0.3, 4, 1) - 0.3 ** 4) < 1e-12);
  assert.ok(Math.abs(regularizedBeta(0.3, 1, 3) - (1 - 0.7 ** 3)) < 1e-12);
  // P(X >= k) for X ~ Bin(n, p) equals I_p(k, n - k + 1): check against a direct sum.
  const n = 20;
  const p = 0.17;
  const choose = (a: number, b: number) => Math.exp(lnGamma(a + 1) - lnGamma(b + 1) - lnGamma(a - b + 1));
  for (const k of [1, 3, 7, 15]) {
    let tail = 0;
    for (let i = k; i <= n; i++) tail += choose(n, i) * p ** i * (1 - p) ** (n - i);
    assert.ok(Math.abs(regularizedBeta(p, k, n - k + 1) - tail) < 1e-10, `k = ${k}`);
  }
  assert.ok(Math.abs(regularizedBeta(betaQuantile(0.9, 3, 5), 3, 5) - 0.9) < 1e-9);
});

Deno.test("Clopper-Pearson: the textbook cases and the edges", () => {
  // 0 of n: upper = 1 - (alpha/2)^(1/n); n of n: lower = (alpha/2)^(1/n).
  const [lo0, hi0] = clopperPearson(0, 100);
  assert.equal(lo0, 0);
  assert.ok(Math.abs(hi0 - (1 - 0.025 ** (1 / 100))) < 1e-9);
  const [lon, hin] = clopperPearson(50, 50);
  assert.equal(hin, 1);
  assert.ok(Math.abs(lon - 0.025 ** (1 / 50)) < 1e-9);
  // 5 of 100 at 95%: [0.01643, 0.11284] (the published table value).
  const [lo, hi] = clopperPearson(5, 100);
  assert.ok(Math.abs(lo - 0.016431) < 1e-5 && Math.abs(hi - 0.112835) < 1e-5, `${lo} ${hi}`);
  assert.throws(() => clopperPearson(3, 2), /0 <= k <= n/);
});
