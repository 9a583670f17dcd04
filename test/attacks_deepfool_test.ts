import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { deepFool, deepFoolLinf } from "../src/attacks/deepfool.ts";
import { misclassification, targetedMisclassification } from "../src/attacks/criteria.ts";
import { assertAttacksValid, assertValidResult, fashionFixture, LINEAR, rate } from "./attacks_fixture.ts";

Deno.test("deepfool (L2, L_inf) finds small adversarials within range; successes misclassified; no leaks", async () => {
  const fixture = await fashionFixture();
  await assertAttacksValid(fixture, [[deepFool(), Infinity], [deepFoolLinf(), Infinity]], {
    minSuccess: 0.9,
    check: (result, attack) => {
      const median = Array.from(result.distances[attack.norm]).sort((a, b) =>
        a - b
      )[result.success.length >> 1];
      assert.ok(median < (attack.norm === "l2" ? 1.5 : 0.1), `${attack.name} median distance ${median}`);
      for (const q of result.queries) assert.ok(q >= 3 && q <= 1 + 2 * 50 + 1);
    },
  });
  fixture.dispose();
});

Deno.test("deepfool with a finite epsilon is restricted to it; success grows with epsilon and steps", async () => {
  const fixture = await fashionFixture();
  const criterion = misclassification(fixture.test.y);
  const rates: number[] = [];
  for (const epsilon of [0.2, 0.6, 2]) {
    const result = await deepFool().run(fixture.target, fixture.test.x, criterion, { epsilon });
    rates.push(await assertValidResult(fixture.target, fixture.test.x, criterion, "l2", epsilon, result));
    for (const d of result.distances.l2) assert.ok(d <= epsilon + 1e-5);
    result.adversarial.dispose();
  }
  for (let i = 1; i < rates.length; i++) assert.ok(rates[i] >= rates[i - 1], `rates ${rates}`);
  const one = await deepFool({ steps: 1 }).run(fixture.target, fixture.test.x, criterion, {
    epsilon: Infinity,
  });
  const many = await deepFool({ steps: 20 }).run(fixture.target, fixture.test.x, criterion, {
    epsilon: Infinity,
  });
  assert.ok(rate(many.success) >= rate(one.success));
  tf.dispose([one.adversarial, many.adversarial]);
  await assert.rejects(
    () =>
      deepFool().run(fixture.target, fixture.test.x, targetedMisclassification(fixture.test.y), {
        epsilon: 1,
      }),
    /only the misclassification criterion/,
  );
  fixture.dispose();
});

Deno.test("deepfool on a linear model is the closed-form step to the nearest hyperplane", async () => {
  const fixture = await fashionFixture({ ...LINEAR, trainPerClass: 100, testPerClass: 2, testCount: 12 });
  const { model, test } = fixture;
  // A wide declared range so clipping plays no part: the closed form is exact.
  const target = { ...fixture.target, inputRange: [-1e3, 1e3] as [number, number] };
  const overshoot = 0.02;
  for (
    const [attack, norm] of [[deepFool({ overshoot }), "l2"], [deepFoolLinf({ overshoot }), "linf"]] as const
  ) {
    const result = await attack.run(target, test.x, misclassification(test.y), { epsilon: Infinity });
    const w = (await model.layers[1].getWeights()[0].data()) as Float32Array; // [784, 10]
    const b = (await model.layers[1].getWeights()[1].data()) as Float32Array;
    const x = (await test.x.data()) as Float32Array;
    const adversarial = (await result.adversarial.data()) as Float32Array;
    for (let i = 0; i < test.y.length; i++) {
      const y = test.y[i];
      const logit = (c: number) => {
        let z = b[c];
        for (let p = 0; p < 784; p++) z += w[p * 10 + c] * x[i * 784 + p];
        return z;
      };
      let best = -1, bestDistance = Infinity, bestF = 0, bestNorm = 0;
      for (let k = 0; k < 10; k++) {
        if (k === y) continue;
        const f = logit(k) - logit(y);
        let n = 0;
        for (let p = 0; p < 784; p++) {
          const d = w[p * 10 + k] - w[p * 10 + y];
          n += norm === "l2" ? d * d : Math.abs(d);
        }
        const distance = Math.abs(f) / (norm === "l2" ? Math.sqrt(n) : n);
        if (distance < bestDistance) [best, bestDistance, bestF, bestNorm] = [k, distance, f, n];
      }
      const scale = (Math.abs(bestF) + 1e-4) / bestNorm;
      let worst = 0;
      for (let p = 0; p < 784; p++) {
        const d = w[p * 10 + best] - w[p * 10 + y];
        const expected = x[i * 784 + p] + (1 + overshoot) * scale * (norm === "l2" ? d : Math.sign(d));
        worst = Math.max(worst, Math.abs(adversarial[i * 784 + p] - expected));
      }
      const stepSize = bestDistance;
      assert.ok(
        worst <= 1e-3 * Math.max(stepSize, 1e-2),
        `${norm} example ${i}: off by ${worst} (step ${stepSize})`,
      );
      assert.equal(result.success[i], 1);
      assert.equal(result.queries[i], 4); // first scores, one linearisation step, its check, the final check
    }
    result.adversarial.dispose();
  }
  fixture.dispose();
});
