import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { attackLoss, largestScores } from "../src/attacks/loss.ts";
import { misclassification } from "../src/attacks/criteria.ts";
import type { AttackTarget } from "../src/attacks/types.ts";

await initBackend("wasm");

const logitsTarget: AttackTarget = {
  scores: (x) => x as tf.Tensor2D,
  inputRange: [-10, 10],
  scoreKind: "logits",
};

Deno.test("largestScores returns each row's k largest values, largest first", () => {
  const scores = tf.tensor2d([[0.1, 3, 2, -1], [5, 4, 6, 0]]);
  const [a, b, c] = largestScores(scores, 3).map((t) => Array.from(t.dataSync()));
  assert.deepEqual(a, [3, 6]);
  assert.deepEqual(b, [2, 5]);
  assert.deepEqual(c.map((v) => Number(v.toFixed(5))), [0.1, 4]);
  scores.dispose();
});

Deno.test("the DLR loss has a gradient (tf.topk has none) equal to finite differences", () => {
  const z = tf.tensor2d([[2, 0.5, 1.2, -0.3]]);
  const criterion = misclassification(Int32Array.from([0]));
  const loss = (input: tf.Tensor) => attackLoss(logitsTarget, input as tf.Tensor2D, criterion, "dlr").sum();
  const gradient = Array.from(tf.grad(loss)(z).dataSync());
  const h = 1e-3;
  const values = Array.from(z.dataSync());
  for (let i = 0; i < 4; i++) {
    const plus = values.slice();
    const minus = values.slice();
    plus[i] += h;
    minus[i] -= h;
    const numeric = (loss(tf.tensor2d([plus])).dataSync()[0] - loss(tf.tensor2d([minus])).dataSync()[0]) /
      (2 * h);
    assert.ok(Math.abs(numeric - gradient[i]) < 1e-2, `logit ${i}: ${numeric} vs ${gradient[i]}`);
  }
  z.dispose();
});
