import assert from "node:assert/strict";
import { auna } from "../src/attacks/auna.ts";
import { misclassification } from "../src/attacks/criteria.ts";
import { assertAttacksValid, assertValidResult, fashionFixture, rate } from "./attacks_fixture.ts";

Deno.test("auna flips labels with growing uniform noise on a label-only target; bounded queries; no leaks", async () => {
  const fixture = await fashionFixture({ testCount: 30 });
  const attack = auna({ steps: 50 });
  assert.equal(attack.norm, "l2");
  await assertAttacksValid(fixture, [[attack, Infinity]], {
    minSuccess: 0.8,
    target: { ...fixture.target, differentiable: false },
    check: (result) => {
      for (let i = 0; i < result.queries.length; i++) {
        assert.ok(result.queries[i] >= 2 && result.queries[i] <= 50 + 1);
      }
    },
  });
  fixture.dispose();
});

Deno.test("auna success grows with the L2 budget; maxQueries caps the queries", async () => {
  const fixture = await fashionFixture({ testCount: 30 });
  const criterion = misclassification(fixture.test.y);
  const rates: number[] = [];
  for (const epsilon of [2, 5, Infinity]) {
    const result = await auna({ steps: 40 }).run(fixture.target, fixture.test.x, criterion, { epsilon });
    rates.push(await assertValidResult(fixture.target, fixture.test.x, criterion, "l2", epsilon, result));
    result.adversarial.dispose();
  }
  for (let i = 1; i < rates.length; i++) assert.ok(rates[i] >= rates[i - 1], `rates ${rates}`);
  const capped = await auna({ steps: 40 }).run(fixture.target, fixture.test.x, criterion, {
    epsilon: Infinity,
    maxQueries: 5,
  });
  for (const q of capped.queries) assert.ok(q <= 5, `queries ${q}`);
  assert.ok(rate(capped.success) <= rates[2]);
  capped.adversarial.dispose();
  fixture.dispose();
});
