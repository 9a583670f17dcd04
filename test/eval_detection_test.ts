import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../src/data/dataset.ts";
import { IMAGE_CORRUPTIONS } from "../src/eval/corruptions.ts";
import { evaluateDetection, renderDetectionMarkdown } from "../src/eval/detection.ts";
import { resolveSpecs } from "../src/eval/specs.ts";
import { buildProfile } from "../src/nip/calibrate.ts";
import type { NipProfile } from "../src/nip/profile.ts";
import { calibrateDetection, DETECTION } from "../src/stages/detection.ts";
import { buildPipelines, stageFactory } from "../src/stages/registry.ts";
import { nipFixture } from "./nip_fixture.ts";

const fixture = await nipFixture();
const x = toTensor(fixture.calibration, 0, 600);
const labels = fixture.calibration.labels;
const nipX = x.slice(0, 150);
const base = buildProfile(fixture.split, nipX, labels.slice(0, 150), { modelHash: "f" });
nipX.dispose();
const part = (start: number, n: number) => ({ x: x.slice(start, n), labels: labels.slice(start, start + n) });
const sets = { fit: part(150, 200), reference: part(350, 100), heldOut: part(450, 150) };
const members = ["squeeze", "mahalanobis", "knn"].map((name) => stageFactory(name, "image"));
const profile: NipProfile = {
  ...base,
  stages: calibrateDetection(members, { split: fixture.split, profile: base }, sets),
};
Object.values(sets).forEach((s) => s.x.dispose());
x.dispose();

Deno.test("the detection report: false positives with intervals, detection and AUC per detector, rejected-or-correct", async () => {
  const [pipeline] = buildPipelines([[DETECTION]], { split: fixture.split, profile, modality: "image" });
  const test = toTensor(fixture.test, 0, 120);
  const testLabels = fixture.test.labels.slice(0, 120);
  const before = tf.memory().numTensors;
  const report = await evaluateDetection(
    pipeline,
    { x: test, labels: testLabels },
    resolveSpecs(["fgsm"], ["0.1", "0.3"], "grey28"),
    { alpha: 0.1, corruptions: IMAGE_CORRUPTIONS },
  );
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(report.detectors, ["squeeze", "mahalanobis", "knn"]);
  const fp = report.benign.falsePositive.combined;
  assert.equal(fp.n, 120);
  assert.ok(fp.interval[0] <= fp.rate && fp.rate <= fp.interval[1]);
  assert.ok(fp.interval[0] <= 0.1, `benign false-positive rate ${fp.rate} at alpha 0.1`);
  assert.equal(report.corruptions.length, 3);
  for (const row of report.rows) {
    assert.ok(row.adversarial > 0);
    for (const name of ["combined", "bonferroni", "squeeze", "mahalanobis", "knn"]) {
      assert.ok(row.detection[name].rate >= 0 && row.detection[name].rate <= 1, name);
      assert.ok(row.auc[name] >= 0 && row.auc[name] <= 1, name);
    }
    // Failed attacks count as correct; detected successes as rejected.
    const floor = (row.attacked - row.adversarial) / row.attacked;
    const expected = floor + row.detection.combined.count / row.attacked;
    assert.ok(Math.abs(row.rejectedOrCorrect - expected) < 1e-9);
  }
  const strong = report.rows.find((r) => r.budget.includes("0.3"))!;
  const weak = report.rows.find((r) => r.budget.includes("0.1"))!;
  assert.ok(strong.auc.combined > 0.5 && weak.auc.combined > 0.5);
  const markdown = renderDetectionMarkdown(report);
  assert.match(
    markdown,
    /\| false-positive rate \| combined \| bonferroni \| squeeze \| mahalanobis \| knn \|/,
  );
  assert.match(markdown, /\| benign test split \| \d+\.\d% \[\d+\.\d, \d+\.\d\]/);
  assert.match(markdown, /rejected-or-correct/);
  test.dispose();
  pipeline.dispose();
});

Deno.test("a pipeline without a calibrated detection stage is refused", async () => {
  const [pipeline] = buildPipelines([["cbdr"]], { split: fixture.split, modality: "image" });
  const test = toTensor(fixture.test, 0, 10);
  await assert.rejects(
    evaluateDetection(pipeline, { x: test, labels: fixture.test.labels.slice(0, 10) }, [], { alpha: 0.05 }),
    /has no calibrated detection stage/,
  );
  test.dispose();
  pipeline.dispose();
});
