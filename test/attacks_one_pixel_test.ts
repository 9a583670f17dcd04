import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { onePixel } from "../src/attacks/one_pixel.ts";
import { getAttack } from "../src/attacks/registry.ts";
import { budgetPreset, paperAttackSettings } from "../src/attacks/presets.ts";
import { misclassification } from "../src/attacks/criteria.ts";
import { assertValidResult, fashionFixture, rate } from "./attacks_fixture.ts";

Deno.test("one-pixel on a score-only target changes at most `pixels` pixels; successes are misclassified; queries bounded; no leaks", async () => {
  const fixture = await fashionFixture({ testCount: 30 });
  const blackBox = { ...fixture.target, differentiable: false };
  const baseline = tf.memory().numTensors;
  const criterion = misclassification(fixture.test.y);
  for (const pixels of [1, 3]) {
    const params = { pixels, populationSize: 60, maxIter: 15 };
    const result = await onePixel(params).run(blackBox, fixture.test.x, criterion, { epsilon: pixels });
    const success = await assertValidResult(blackBox, fixture.test.x, criterion, "l0", pixels, result);
    console.log(`one-pixel (${pixels} pixels, population 60, 15 generations): success ${success}`);
    for (let i = 0; i < result.queries.length; i++) {
      assert.ok(result.distances.l0[i] <= pixels, `example ${i} changed ${result.distances.l0[i]} pixels`);
      const q = result.queries[i];
      assert.ok(q >= 2 && q <= params.populationSize * (params.maxIter + 1) + 1, `queries ${q}`);
    }
    if (pixels === 3) assert.ok(success > 0, "three pixels fooled nothing");
    result.adversarial.dispose();
  }
  assert.equal(tf.memory().numTensors, baseline);
  fixture.dispose();
});

Deno.test("one-pixel success does not fall with more generations; maxQueries caps the search; the paper row runs", async () => {
  const fixture = await fashionFixture({ testCount: 30 });
  const criterion = misclassification(fixture.test.y);
  const short = await onePixel({ pixels: 3, populationSize: 40, maxIter: 2, seed: 7 }).run(
    fixture.target,
    fixture.test.x,
    criterion,
    { epsilon: 3 },
  );
  const long = await onePixel({ pixels: 3, populationSize: 40, maxIter: 20, seed: 7 }).run(
    fixture.target,
    fixture.test.x,
    criterion,
    { epsilon: 3 },
  );
  // The long run repeats the short one's first generations exactly, so it keeps every success.
  for (let i = 0; i < short.success.length; i++) if (short.success[i]) assert.equal(long.success[i], 1);
  assert.ok(rate(long.success) >= rate(short.success));
  const capped = await onePixel({ pixels: 3, populationSize: 40, maxIter: 20 }).run(
    fixture.target,
    fixture.test.x,
    criterion,
    { epsilon: 3, maxQueries: 130 },
  );
  for (const q of capped.queries) assert.ok(q <= 130, `queries ${q} above the cap`);
  tf.dispose([short.adversarial, long.adversarial, capped.adversarial]);
  const setting = paperAttackSettings.find((s) => s.paperName === "Pixel")!;
  const paper = getAttack(setting.attack, { ...setting.params, populationSize: 40, maxIter: 5 });
  const result = await paper.run(fixture.target, fixture.test.x, criterion, budgetPreset(setting.budget));
  await assertValidResult(fixture.target, fixture.test.x, criterion, "l0", 1, result);
  result.adversarial.dispose();
  await assert.rejects(
    () => onePixel({ pixels: 2 }).run(fixture.target, fixture.test.x, criterion, { epsilon: 1 }),
    /allows fewer than pixels = 2/,
  );
  fixture.dispose();
});
