import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { frontTailSigns, inversePerturbations } from "../src/nip/inverse.ts";
import { neuronOutputs } from "../src/nip/neurons.ts";
import { applyPerturbation, applyPerturbationRows, normalizePerturbations } from "../src/nip/scaling.ts";

await initBackend("wasm");

function smallBody(): tf.Sequential {
  return tf.sequential({
    layers: [
      // Seeded: with random weights a ReLU kink can fall inside the finite-difference step.
      tf.layers.conv2d({
        inputShape: [6, 6, 1],
        filters: 4,
        kernelSize: 3,
        activation: "relu",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 11 }),
      }),
      tf.layers.flatten(),
    ],
  });
}

Deno.test("frontTailSigns puts +1 on front and -1 on tail neurons", () => {
  const signs = frontTailSigns([{
    front: Int32Array.from([2]),
    tail: Int32Array.from([0]),
    remaining: Int32Array.from([1]),
  }], 3);
  assert.deepEqual([...signs], [-1, 0, 1]);
});

Deno.test("inversePerturbations is the input gradient of front minus tail (finite differences)", () => {
  const body = smallBody();
  const x = tf.randomUniform([2, 6, 6, 1], 0, 1, "float32", 3);
  const a = 64;
  const signs = new Float32Array(2 * a);
  signs[5] = 1;
  signs[17] = 1;
  signs[40] = -1;
  signs[a + 3] = 1;
  signs[a + 60] = -1;
  const signTensor = tf.tensor2d(signs, [2, a]);
  const rho = inversePerturbations(body, x, signTensor);
  const objective = (input: tf.Tensor) =>
    tf.tidy(() => neuronOutputs(body.predict(input) as tf.Tensor).mul(signTensor).sum(1).dataSync());
  const h = 1e-3;
  const xs = x.dataSync();
  const grad = rho.dataSync();
  for (const position of [7, 14, 21, 36 + 8, 36 + 20]) {
    const plus = Float32Array.from(xs);
    const minus = Float32Array.from(xs);
    plus[position] += h;
    minus[position] -= h;
    const example = position < 36 ? 0 : 1;
    const numeric =
      (objective(tf.tensor(plus, x.shape))[example] - objective(tf.tensor(minus, x.shape))[example]) /
      (2 * h);
    assert.ok(
      Math.abs(numeric - grad[position]) < 2e-2,
      `position ${position}: ${numeric} vs ${grad[position]}`,
    );
  }
  // Ascent direction: a small step along rho raises front - tail (SPEC.md's sign decision).
  const before = objective(x);
  const stepped = x.add(rho.mul(0.01));
  const after = objective(stepped);
  assert.ok(after[0] >= before[0] && after[1] >= before[1]);
  tf.dispose([x, signTensor, rho, stepped]);
  body.dispose();
});

Deno.test("paper scaling is x + alpha * Mean(x) * rho / (max - min), clipped", () => {
  const x = tf.tensor4d([0.2, 0.4, 0.6, 0.8], [1, 2, 2, 1]);
  const rho = tf.tensor4d([1, -1, 3, 0], [1, 2, 2, 1]);
  const normalized = normalizePerturbations(rho, "paper");
  const out = applyPerturbation(x, normalized, "paper", 2, [0, 1]).dataSync();
  const mean = 0.5;
  const expected = [
    0.2 + 2 * mean * 1 / 4,
    0.4 + 2 * mean * -1 / 4,
    Math.min(1, 0.6 + 2 * mean * 3 / 4),
    0.8,
  ];
  Array.from(out).forEach((v, i) =>
    assert.ok(Math.abs(v - expected[i]) < 1e-6, `${i}: ${v} vs ${expected[i]}`)
  );
  tf.dispose([x, rho, normalized]);
});

Deno.test("rms scaling is x + step * rho / rms(rho), and a zero rho changes nothing", () => {
  const x = tf.tensor4d([0.5, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3], [2, 2, 2, 1]);
  const rho = tf.tensor4d([2, -2, 2, -2, 0, 0, 0, 0], [2, 2, 2, 1]);
  const normalized = normalizePerturbations(rho, "rms");
  const out = Array.from(applyPerturbation(x, normalized, "rms", 0.1, [0, 1]).dataSync());
  const expected = [0.6, 0.4, 0.6, 0.4, 0.3, 0.3, 0.3, 0.3];
  out.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-6, `${i}: ${v}`));
  tf.dispose([x, rho, normalized]);
});

Deno.test("applyPerturbationRows gives applyPerturbation's values on plain rows, for both rules", () => {
  const x = tf.randomUniform([3, 4, 4, 2], 0, 1, "float32", 3);
  const rho = tf.randomNormal([5, 4, 4, 2], 0, 1, "float32", 4);
  const index = Int32Array.from([4, 0, 2]);
  for (const rule of ["paper", "rms"] as const) {
    const normalized = normalizePerturbations(rho, rule);
    const expected = tf.tidy(() =>
      applyPerturbation(x, normalized.gather(tf.tensor1d(index, "int32")), rule, 0.7, [0, 1]).dataSync()
    );
    const got = applyPerturbationRows(
      x.dataSync() as Float32Array,
      normalized.dataSync() as Float32Array,
      index,
      rule,
      0.7,
      [0, 1],
    );
    got.forEach((v, i) =>
      assert.ok(Math.abs(v - expected[i]) < 1e-6, `${rule} ${i}: ${v} vs ${expected[i]}`)
    );
    normalized.dispose();
  }
  tf.dispose([x, rho]);
});
