import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { attackInfo, ATTACKS, getAttack } from "../src/attacks/registry.ts";
import { budgetPreset, budgetPresets, paperAttackSettings } from "../src/attacks/presets.ts";
import { misclassification } from "../src/attacks/criteria.ts";
import { assertValidResult, fashionFixture } from "./attacks_fixture.ts";

Deno.test("every registered attack builds through getAttack with its declared name, norm, kind and mode", () => {
  assert.ok(ATTACKS.length >= 15);
  assert.equal(new Set(ATTACKS.map((a) => a.name)).size, ATTACKS.length);
  for (const info of ATTACKS) {
    const attack = getAttack(info.name);
    // Wrappers name themselves after what they wrap (eot -> "eot-pgd-l2").
    assert.ok(
      attack.name === info.name || attack.name.startsWith(`${info.name}-`),
      `${attack.name} vs ${info.name}`,
    );
    assert.equal(attack.norm, info.norm);
    assert.equal(attack.kind, info.kind);
    assert.equal(attack.mode, info.mode);
    assert.equal(typeof attack.run, "function");
  }
  assert.equal(getAttack("pgd").name, "pgd-linf");
  assert.equal(attackInfo("fgm").name, "fgm-l2");
});

Deno.test("getAttack rejects unknown attacks and parameters by name", () => {
  assert.throws(() => getAttack("nope"), /unknown attack "nope"; known: fgsm/);
  assert.throws(
    () => getAttack("pgd-linf", { stepsize: 0.1 }),
    /has no parameter "stepsize"; accepted: steps/,
  );
  assert.throws(() => getAttack("pgd-linf", { steps: -1 }), /steps = -1 is invalid/);
});

Deno.test("budget presets carry the standard budgets and the paper's Table 2 epsilons with labels", () => {
  assert.equal(budgetPresets["standard-linf-8/255"].epsilon, 8 / 255);
  assert.equal(budgetPresets["standard-l2-0.5"].epsilon, 0.5);
  assert.equal(budgetPresets["standard-linf-0.3-grey"].epsilon, 0.3);
  for (const [name, preset] of Object.entries(budgetPresets)) {
    assert.ok(preset.label.length > 0, name);
    assert.ok(name.startsWith(preset.source), `${name} vs source ${preset.source}`);
  }
  assert.throws(() => budgetPreset("cifar"), /unknown budget preset "cifar"/);
  // Each paper row names a budget preset, and its norm matches the implementing attack where registered.
  const registered = new Set(ATTACKS.map((a) => a.name));
  for (const setting of paperAttackSettings) {
    const budget = budgetPreset(setting.budget);
    if (registered.has(setting.attack)) {
      const attack = getAttack(setting.attack, setting.params as Record<string, unknown>);
      // The paper labels FGSM/AUNA/PWA with a norm their Foolbox versions do not bound; check only the rest.
      if (!["fgsm", "pwa"].includes(setting.attack)) {
        assert.equal(attack.norm, budget.norm, setting.paperName);
      }
    }
  }
});

Deno.test("a paper preset runs end to end and its result says which budget produced it", async () => {
  const fixture = await fashionFixture({ trainPerClass: 50, epochs: 3, testCount: 12 });
  const baseline = tf.memory().numTensors;
  const setting = paperAttackSettings.find((s) => s.paperName === "BIM")!;
  const budget = budgetPreset(setting.budget);
  const attack = getAttack(setting.attack, setting.params as Record<string, unknown>);
  const criterion = misclassification(fixture.test.y);
  const result = await attack.run(fixture.target, fixture.test.x, criterion, budget);
  await assertValidResult(fixture.target, fixture.test.x, criterion, "linf", 0.3, result);
  assert.equal(result.budgetLabel, "paper App. A Table 2: BIM L_inf 0.3");
  assert.equal(result.attack, "bim");
  result.adversarial.dispose();
  assert.equal(tf.memory().numTensors, baseline);
  fixture.dispose();
});
