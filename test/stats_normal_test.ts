import assert from "node:assert/strict";
import { normalCdf, normalQuantile, regularizedGammaP } from "../src/stats/normal.ts";

Deno.test("Phi matches tabulated values, in both tails", () => {
  const table: [number, number][] = [
    [0, 0.5],
    [1, 0.8413447460685429],
    [-1.959963984540054, 0.025],
    [2.5, 0.9937903346742238],
    [-5, 2.866515718791939e-7],
    [-8, 6.22096057427178e-16],
  ];
  for (const [x, expected] of table) {
    assert.ok(Math.abs(normalCdf(x) - expected) <= 1e-14 + 1e-12 * expected, `Phi(${x}) = ${normalCdf(x)}`);
  }
  assert.ok(Math.abs(regularizedGammaP(1, 2) - (1 - Math.exp(-2))) < 1e-14);
});

Deno.test("Phi^-1 inverts Phi and keeps its precision near 1", () => {
  for (const x of [-7, -3, -1.2, -0.3, 0, 0.4, 1, 2.2, 4]) {
    assert.ok(Math.abs(normalQuantile(normalCdf(x)) - x) < 1e-8, `x = ${x}`);
  }
  assert.ok(Math.abs(normalQuantile(0.975) - 1.959963984540054) < 1e-12);
  // Phi^-1(0.001^(1/1000)): the largest radius CERTIFY gives at n = 1,000, alpha = 0.001, in sigmas.
  assert.ok(Math.abs(normalQuantile(0.001 ** (1 / 1000)) - 2.4632626) < 1e-6);
  assert.equal(normalQuantile(0), -Infinity);
  assert.equal(normalQuantile(1), Infinity);
  assert.throws(() => normalQuantile(1.5), /must be in \[0, 1\]/);
});
