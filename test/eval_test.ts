import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../src/data/dataset.ts";
import { buildProfile } from "../src/nip/calibrate.ts";
import { NipDefense } from "../src/nip/defense.ts";
import {
  type EvalReport,
  type EvalRun,
  evaluate,
  evaluateBlocks,
  type Protocol,
} from "../src/eval/harness.ts";
import { checkBlocks, reportFromBlocks } from "../src/eval/tally.ts";
import { renderMarkdown, verdict } from "../src/eval/report.ts";
import { resolveSpecs } from "../src/eval/specs.ts";
import { changeNorms, psnr, rocAuc, tknc } from "../src/eval/metrics.ts";
import { randomNoiseControl } from "../src/eval/controls.ts";
import { paperOracleLabels } from "../src/nip/oracle.ts";
import { DefensePipeline } from "../src/stages/pipeline.ts";
import { nipStage } from "../src/stages/nip.ts";
import { buildStages } from "../src/stages/registry.ts";
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

Deno.test("attack overrides apply at every budget, by canonical name or alias; unknown attacks are refused", () => {
  const [custom] = resolveSpecs(["cw"], ["2"], "grey28", { cw: { steps: 7 } });
  assert.equal(custom.attack.params.steps, 7);
  assert.equal(custom.budget.source, "custom");
  const [fixed, paper] = resolveSpecs(["pgd-linf"], ["0.1", "paper"], "grey28", { "pgd-linf": { steps: 3 } });
  assert.equal(fixed.attack.params.steps, 3);
  assert.equal(paper.budget.source, "paper");
  assert.equal(paper.attack.params.steps, 3);
  assert.throws(() => resolveSpecs(["fgsm"], ["0.1"], "grey28", { blur: { steps: 1 } }), /blur/);
});

Deno.test("evaluate gives every defense the same columns and frees its tensors", async () => {
  const pipelines = [
    new DefensePipeline(fixture.split, [nipStage(new NipDefense(fixture.split, profile, { strength: 0.3 }))]),
    new DefensePipeline(fixture.split, buildStages(["cbdr"], { split: fixture.split, modality: "image" })),
  ];
  const x = toTensor(fixture.test, 0, 60);
  const before = tf.memory().numTensors;
  const specs = resolveSpecs(["fgsm", "pgd-linf"], ["0.1", "paper"], "grey28", {
    fgsm: { epsilonSearch: 20 },
    "pgd-linf": { steps: 10, stepSize: 0.03 },
  });
  const stages: string[] = [];
  const report = await evaluate(pipelines, { x, labels: fixture.test.labels.slice(0, 60) }, specs, {
    protocols: ["honest", "paper-oracle"],
    blockSize: 30,
    onProgress: (stage) => stages.push(stage),
  });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(report.rows.length, 4);
  assert.ok(stages.length >= 4);
  assert.ok(report.benign.accuracy > 0.6);
  assert.deepEqual(report.defenses.map((d) => d.name), ["nip", "cbdr"]);
  assert.equal(report.defenses[0].control, "nip-random-candidate");
  assert.equal(report.defenses[1].control, undefined);
  assert.deepEqual(Object.keys(report.benign.defenses), ["nip", "cbdr"]);
  for (const row of report.rows) {
    assert.ok(row.attacked > 30);
    assert.ok(row.asr >= 0 && row.asr <= 1);
    assert.equal(row.domain, "input");
    if (row.adversarial === 0) continue;
    for (const name of ["nip", "cbdr"]) {
      const score = row.defenses[name];
      for (const value of [score.dsr, score.randomNoise]) {
        assert.ok(value >= 0 && value <= 1, JSON.stringify(score));
      }
      assert.ok(score.change.l2 > 0 && score.msPerExample > 0, name);
    }
    const nip = row.defenses.nip;
    assert.ok(nip.ownControl! >= 0 && nip.ownControl! <= 1);
    assert.ok(nip.protocols["paper-oracle"] >= 0 && nip.protocols.NIP_n >= 0);
    assert.deepEqual(row.defenses.cbdr.protocols, {});
  }
  const pgdPaper = report.rows.find((r) => r.attack === "pgd-linf" && r.budgetSource === "paper")!;
  assert.ok(pgdPaper.asr > 0.9, `PGD at L_inf 0.3 should fool a small net: ${pgdPaper.asr}`);
  const markdown = renderMarkdown(report);
  assert.match(
    markdown,
    /nip DSR \| nip noise ctrl \| nip own ctrl \| nip paper-oracle \(uses true labels\)/,
  );
  assert.match(markdown, /cbdr DSR \| cbdr noise ctrl \| cbdr benign acc\. \| cbdr ms/);
  assert.equal(markdown.split("\n").filter((l) => l.startsWith("| fgsm") || l.startsWith("| pgd")).length, 4);
  assert.ok(verdict(pgdPaper.defenses.nip).length > 0);
  x.dispose();
  pipelines.forEach((p) => p.dispose());
});

Deno.test("without the paper-oracle protocol no column reads true labels", async () => {
  const pipeline = new DefensePipeline(fixture.split, [nipStage(new NipDefense(fixture.split, profile))]);
  const x = toTensor(fixture.test, 0, 30);
  const specs = resolveSpecs(["fgsm"], ["0.1"], "grey28");
  const report = await evaluate([pipeline], { x, labels: fixture.test.labels.slice(0, 30) }, specs);
  const row = report.rows[0];
  assert.ok(row.adversarial > 0);
  assert.deepEqual(Object.keys(row.defenses.nip.protocols), ["NIP_n"]);
  assert.doesNotMatch(renderMarkdown(report), /uses true labels/);
  x.dispose();
  pipeline.dispose();
});

Deno.test("ROC AUC is the probability a positive outscores a negative, ties half", () => {
  assert.equal(rocAuc([1, 2, 3], [4, 5]), 1);
  assert.equal(rocAuc([4, 5], [1, 2, 3]), 0);
  assert.equal(rocAuc([1, 1], [1, 1]), 0.5);
  // positives 2 and 4 against negatives 1, 3: pairs won 1 + 2 of 4.
  assert.equal(rocAuc([1, 3], [2, 4]), 0.75);
  assert.ok(Number.isNaN(rocAuc([], [1])));
});

Deno.test("resolveSpecs: a combination with nothing to run is an error naming the skipped pairs", () => {
  const heard: string[] = [];
  assert.throws(
    () => resolveSpecs(["jsma"], ["standard"], "grey28", {}, (reason) => heard.push(reason)),
    /nothing to run: jsma at the standard budget/,
  );
  assert.equal(heard.length, 1);
  const specs = resolveSpecs(["fgsm", "jsma"], ["standard"], "grey28", {}, (reason) => heard.push(reason));
  assert.equal(specs.length, 1);
  assert.equal(heard.length, 2);
  assert.deepEqual(resolveSpecs([], ["standard"], "grey28"), []);
});

Deno.test("evaluateBlocks: shards by block merge into exactly the whole run's report, and repeat exactly", async () => {
  const pipelines = [
    new DefensePipeline(fixture.split, [nipStage(new NipDefense(fixture.split, profile, { strength: 0.3 }))]),
    new DefensePipeline(fixture.split, buildStages(["ss"], { split: fixture.split, modality: "image" })),
  ];
  const x = toTensor(fixture.test, 0, 50);
  const set = { x, labels: fixture.test.labels.slice(0, 50) };
  const specs = resolveSpecs(["fgsm", "pgd-linf"], ["0.1"], "grey28", { "pgd-linf": { steps: 5 } });
  const options = { protocols: ["honest", "paper-oracle"] as Protocol[], blockSize: 12, seed: 3 };
  const whole = await evaluateBlocks(pipelines, set, specs, options);
  assert.equal(whole.blockCount, 5);
  const shards: EvalRun[] = [];
  for (let k = 0; k < 2; k++) {
    shards.push(await evaluateBlocks(pipelines, set, specs, { ...options, selectBlock: (b) => b % 2 === k }));
  }
  const again = await evaluateBlocks(pipelines, set, specs, { ...options, selectBlock: (b) => b % 2 === 1 });
  assert.equal(JSON.stringify(again.tallies), JSON.stringify(shards[1].tallies));
  const merged = reportFromBlocks(whole.layout, shards.flatMap((s) => s.tallies));
  const withoutTimes = (report: EvalReport) =>
    JSON.stringify(report, (key, value) => key.startsWith("ms") ? undefined : value);
  assert.equal(withoutTimes(merged), withoutTimes(whole.report));
  assert.throws(() => checkBlocks(shards[0].tallies, 5), /missing: 1, 3/);
  assert.throws(() => reportFromBlocks(whole.layout, [...whole.tallies, whole.tallies[0]]), /appears twice/);
  x.dispose();
  pipelines.forEach((p) => p.dispose());
});
