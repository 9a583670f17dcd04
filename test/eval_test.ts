import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../src/data/dataset.ts";
import { buildProfile } from "../src/nip/calibrate.ts";
import { NipDefense } from "../src/nip/defense.ts";
import { evaluate } from "../src/eval/harness.ts";
import { renderMarkdown, verdict } from "../src/eval/report.ts";
import { resolveSpecs } from "../src/eval/specs.ts";
import { changeNorms, psnr, tknc } from "../src/eval/metrics.ts";
import { randomNoiseControl } from "../src/eval/controls.ts";
import { paperOracleLabels } from "../src/eval/oracle.ts";
import { nipFixture } from "./nip_fixture.ts";

const fixture = await nipFixture();
const calibrationX = toTensor(fixture.calibration, 0, 300);
const profile = buildProfile(fixture.split, calibrationX, fixture.calibration.labels.slice(0, 300), {
  modelHash: "f",
});
calibrationX.dispose();

Deno.test("psnr, changeNorms and tknc on known inputs", () => {
  const a = tf.tensor4d([0, 0, 0, 0], [1, 2, 2, 1]);
  const b = tf.tensor4d([0.1, 0, 0, 0], [1, 2, 2, 1]);
  const norms = changeNorms(b, a);
  assert.ok(Math.abs(norms.l2[0] - 0.1) < 1e-6 && Math.abs(norms.linf[0] - 0.1) < 1e-6);
  // mse = 0.0025 -> 10 log10(1 / 0.0025) = 26.02 dB
  assert.ok(Math.abs(psnr(b, a, [0, 1])[0] - 26.0206) < 1e-3);
  const x = toTensor(fixture.test, 0, 5);
  assert.deepEqual(Array.from(tknc(fixture.split, x, x)), [1, 1, 1, 1, 1]);
  tf.dispose([a, b, x]);
});

Deno.test("random-noise control adds noise of exactly the given norm (zero norm keeps predictions)", () => {
  const x = toTensor(fixture.test, 0, 20);
  const predicted = tf.tidy(() =>
    (fixture.split.model.predict(x) as tf.Tensor).argMax(1).dataSync() as Int32Array
  );
  assert.equal(randomNoiseControl(fixture.split.model, x, new Float32Array(20), predicted, [0, 1]), 1);
  const huge = randomNoiseControl(fixture.split.model, x, new Float32Array(20).fill(30), predicted, [0, 1]);
  assert.ok(huge < 1);
  x.dispose();
});

Deno.test("paper-oracle retries with the opposite sign only where the first try is wrong", () => {
  const defense = new NipDefense(fixture.split, profile);
  const x = toTensor(fixture.test, 0, 20);
  const labels = fixture.test.labels.slice(0, 20);
  const oracle = paperOracleLabels(defense, x, x, labels);
  assert.equal(oracle.length, 20);
  const bare = tf.tidy(() => (fixture.split.model.predict(x) as tf.Tensor).argMax(1).dataSync());
  const oracleCorrect = oracle.filter((l, i) => l === labels[i]).length;
  const bareCorrect = labels.filter((l, i) => bare[i] === l).length;
  assert.ok(oracleCorrect >= bareCorrect - 2, `${oracleCorrect} vs ${bareCorrect}`);
  x.dispose();
  defense.dispose();
});

Deno.test("evaluate reports every DSR with both controls and frees its tensors", async () => {
  const defense = new NipDefense(fixture.split, profile, { strength: 0.3 });
  const x = toTensor(fixture.test, 0, 60);
  const before = tf.memory().numTensors;
  const specs = resolveSpecs(["fgsm", "pgd-linf"], ["0.1", "paper"], "grey28", {
    fgsm: { epsilonSearch: 20 },
    "pgd-linf": { steps: 10, stepSize: 0.03 },
  });
  const stages: string[] = [];
  const report = await evaluate(defense, x, fixture.test.labels.slice(0, 60), specs, {
    protocols: ["honest", "paper-oracle"],
    batchSize: 30,
    onProgress: (stage) => stages.push(stage),
  });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(report.rows.length, 4);
  assert.ok(stages.length >= 4);
  assert.ok(report.benign.accuracy > 0.6);
  for (const row of report.rows) {
    assert.ok(row.attacked > 30);
    assert.ok(row.asr >= 0 && row.asr <= 1);
    if (row.adversarial === 0) continue;
    for (
      const value of [
        row.dsr.honest!,
        row.dsr["paper-oracle"]!,
        row.controls.randomNoise,
        row.controls.randomCandidate,
      ]
    ) {
      assert.ok(value >= 0 && value <= 1, JSON.stringify(row));
    }
    assert.ok(row.defenseChange.l2 > 0 && row.msPerExample.defense > 0);
  }
  const pgdPaper = report.rows.find((r) => r.attack === "pgd-linf" && r.budgetSource === "paper")!;
  assert.ok(pgdPaper.asr > 0.9, `PGD at L_inf 0.3 should fool a small net: ${pgdPaper.asr}`);
  const markdown = renderMarkdown(report);
  assert.match(markdown, /random-noise control/);
  assert.match(markdown, /paper-oracle/);
  assert.match(markdown, /after defense/);
  assert.equal(markdown.split("\n").filter((l) => l.startsWith("| fgsm") || l.startsWith("| pgd")).length, 4);
  assert.ok(verdict(pgdPaper).length > 0);
  x.dispose();
  defense.dispose();
});
