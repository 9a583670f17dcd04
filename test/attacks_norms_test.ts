import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { computeDistances, exactSign, projectToBall, randomInBall } from "../src/attacks/norms.ts";
import { Rng } from "../src/attacks/rng.ts";
import { setup } from "./attacks_fixture.ts";

Deno.test("projection onto L_inf and L2 balls and the input range", async () => {
  await setup();
  const baseline = tf.memory().numTensors;
  const x0 = tf.fill([2, 2, 2, 1], 0.5) as tf.Tensor4D;
  const x = tf.tensor4d([0.9, 0.1, 0.5, 0.52, 2, -2, 0.5, 0.5], [2, 2, 2, 1]);
  const linf = projectToBall(x0, x, "linf", 0.1, [0, 1]);
  assert.deepEqual(Array.from(await linf.data()).map((v) => +v.toFixed(5)), [
    0.6,
    0.4,
    0.5,
    0.52,
    0.6,
    0.4,
    0.5,
    0.5,
  ]);
  const l2 = projectToBall(x0, x, "l2", 0.3, [-10, 10]);
  const d = await computeDistances(x0, l2);
  assert.ok(Math.abs(d.l2[0] - 0.3) < 1e-5 && Math.abs(d.l2[1] - 0.3) < 1e-5);
  assert.deepEqual(Array.from(d.l0), [3, 2]);
  assert.throws(() => projectToBall(x0, x, "l0", 1, [0, 1]), /l0 ball/);
  tf.dispose([x0, x, linf, l2]);
  assert.equal(tf.memory().numTensors, baseline);
});

Deno.test("random starts lie in the ball; exactSign keeps tiny components that wasm's tf.sign drops", async () => {
  await setup();
  const rng = new Rng(7);
  const z = tf.zeros([5, 4, 4, 3]);
  for (const norm of ["linf", "l2"] as const) {
    const r = randomInBall(rng, [5, 4, 4, 3], norm, 0.25);
    const d = await computeDistances(z, r);
    for (const v of d[norm]) assert.ok(v <= 0.25 + 1e-6 && v > 0);
    r.dispose();
  }
  const s = exactSign(tf.tensor1d([2e-8, -3e-9, 0, 4]));
  assert.deepEqual(Array.from(await s.data()), [1, -1, 0, 1]);
  tf.dispose([z, s]);
  assert.deepEqual(new Rng(3).permutation(5).slice().sort(), Int32Array.from([0, 1, 2, 3, 4]));
});
