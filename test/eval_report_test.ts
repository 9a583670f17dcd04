import assert from "node:assert/strict";
import type { DefenseScore, EvalReport } from "../src/eval/harness.ts";
import { marginOverControls, pct, renderMarkdown, verdict } from "../src/eval/report.ts";

function score(dsr: number, randomNoise: number, ownControl?: number): DefenseScore {
  return {
    dsr,
    randomNoise,
    ownControl,
    protocols: {},
    change: { l2: 1, linf: 0.1 },
    psnr: 30,
    tknc: 0.5,
    msPerExample: 0.4,
  };
}

Deno.test("a defense beats its controls only by 2 points over the better of them", () => {
  assert.ok(Math.abs(marginOverControls(score(0.5, 0.2, 0.4)) - 10) < 1e-9);
  assert.equal(verdict(score(0.5, 0.2, 0.4)), "beats controls by 10.0 pp");
  assert.equal(verdict(score(0.41, 0.4)), "no better than the controls");
  assert.equal(verdict(score(0.1, 0.4)), "WORSE than a control by 30.0 pp");
  assert.equal(verdict(undefined), "no adversarial examples");
  assert.equal(pct(NaN), "–");
});

Deno.test("the table has a column group per defense and names who beats its controls", () => {
  const info = (name: string, control?: string) => ({
    name,
    stages: [{ name, description: `${name} settings`, settings: {} }],
    control,
    protocols: [],
  });
  const report: EvalReport = {
    defenses: [info("nip", "nip-random-candidate"), info("jc")],
    benign: {
      examples: 10,
      accuracy: 0.9,
      msPerExampleBare: 0.3,
      defenses: {
        nip: { accuracy: 0.9, labelFlips: 0, msPerExample: 0.5 },
        jc: { accuracy: 0.8, labelFlips: 0.1, msPerExample: 2 },
      },
    },
    rows: [
      ["fgsm", { nip: score(0.6, 0.1, 0.2), jc: score(0.1, 0.1) }],
      ["pgd-linf", { nip: score(0.6, 0.1, 0.2), jc: score(0.5, 0.1) }],
    ].map(([attack, defenses]) => ({
      attack: attack as string,
      norm: "linf",
      domain: "input",
      budget: "L_inf 0.1",
      budgetSource: "custom",
      epsilon: 0.1,
      attacked: 9,
      adversarial: 8,
      asr: 8 / 9,
      perturbation: {},
      msPerExample: { attack: 1, bare: 0.3 },
      defenses: defenses as Record<string, DefenseScore>,
    })),
  };
  const markdown = renderMarkdown(report, "t");
  assert.match(
    markdown,
    /\| attack \| domain \| budget \| ASR \| nip DSR \| nip noise ctrl \| nip own ctrl \| nip benign acc\. \| nip ms \| jc DSR \| jc noise ctrl \| jc benign acc\. \| jc ms \| verdict \|/,
  );
  assert.match(
    markdown,
    /\| fgsm .*\| \*\*60\.0%\*\* \| 10\.0% \| 20\.0% \| 90\.0% \| 0\.400 \| .* nip beats its controls \|/,
  );
  assert.match(markdown, /\| pgd-linf .* nip, jc beat their controls \|/);
  assert.match(markdown, /\| jc \| 80\.0% \| 10\.0% \| 2\.000 \| jc settings \|/);
});
