import assert from "node:assert/strict";
import { loadNamedDataset } from "../src/data/named_datasets.ts";
import { toTensor } from "../src/data/dataset.ts";
import { samplePart } from "../src/data/splits.ts";
import { initBackend } from "../src/engine/backend.ts";
import { certifiedAccuracy, certifyVariant } from "../src/eval/certification.ts";
import { renderCertificationMarkdown } from "../src/eval/certification_report.ts";
import { loadSplitModel } from "../src/pipeline.ts";
import { ABSTAIN } from "../src/smoothing/cohen.ts";
import { SMOOTHING_FACTORY } from "../src/stages/smoothing.ts";

await initBackend("wasm");

Deno.test("certified accuracy counts right answers certified at least that far; abstentions never count", () => {
  const certificates = [
    { label: 1, radius: 0.6, pALower: 0.9, n: 100 },
    { label: 2, radius: 0.3, pALower: 0.8, n: 100 },
    { label: ABSTAIN, radius: 0, pALower: 0.4, n: 100 },
    { label: 0, radius: 1.2, pALower: 0.99, n: 100 },
  ];
  const labels = [1, 2, 2, 3];
  assert.equal(certifiedAccuracy(certificates, labels, 0), 0.5);
  assert.equal(certifiedAccuracy(certificates, labels, 0.3), 0.5);
  assert.equal(certifiedAccuracy(certificates, labels, 0.5), 0.25);
  assert.equal(certifiedAccuracy(certificates, labels, 1), 0);
});

Deno.test("a variant's evaluation: a falling curve, the bare and noise rows beside it, SmoothAdv checked against it", async () => {
  const { split } = await loadSplitModel("models/fashion-lenet", {
    layerName: "flatten",
    inputRange: [0, 1],
  });
  const { dataset, split: parts } = await loadNamedDataset("fashion-mnist");
  const test = samplePart(dataset, parts, "test", 16, { seed: 2 });
  const set = { x: toTensor(test), labels: test.labels };
  const stage = SMOOTHING_FACTORY.create({
    split,
    overrides: { sigma: 0.25, denoiser: "none", "predict-n": 50 },
  });
  const progress: string[] = [];
  const result = await certifyVariant({ name: "frozen", stage, split }, set, {
    n0: 20,
    n: 200,
    alpha: 0.001,
    radii: [0, 0.25, 0.5],
    seed: 1,
    chunk: 8,
    adaptive: { epsilons: [0.5], n: 6, steps: 2, samples: 2, strongerSteps: 4, strongerSamples: 4 },
    onProgress: (stage) => progress.push(stage),
  });
  assert.equal(result.perExample.length, 16);
  const curve = result.certified.map((c) => c.accuracy);
  assert.ok(curve[0] >= curve[1] && curve[1] >= curve[2], `curve ${curve}`);
  assert.equal(curve[0], result.certifyAccuracy);
  assert.ok(result.bareAccuracy >= 0.75, `bare ${result.bareAccuracy}`);
  assert.ok(result.noisyBaseAccuracy <= result.bareAccuracy + 0.1);
  assert.equal(result.certifyForwardsPerExample, 220);
  assert.equal(result.predictForwardsPerExample, 50);
  // 0.001^(1/200) = 0.96605, Phi^-1 of which is 1.8257.
  assert.ok(Math.abs(result.maxRadius - 0.25 * 1.8257) < 0.001, `max radius ${result.maxRadius}`);
  const [empirical] = result.empirical!;
  assert.equal(empirical.epsilon, 0.5);
  // The per-example worst case is at most either run.
  assert.ok(
    empirical.worstEmpiricalAccuracy! <=
      Math.min(empirical.empiricalAccuracy, empirical.strongerEmpiricalAccuracy),
  );
  for (
    const value of [empirical.empiricalAccuracy, empirical.strongerEmpiricalAccuracy, empirical.bareAccuracy]
  ) {
    assert.ok(value >= 0 && value <= 1);
  }
  assert.ok(progress.some((p) => p.includes("CERTIFY")) && progress.some((p) => p.includes("SmoothAdv")));
  const markdown = renderCertificationMarkdown({
    title: "t",
    data: "d",
    examples: 16,
    n0: 20,
    n: 200,
    alpha: 0.001,
    inputValues: 784,
    radii: [0, 0.25, 0.5],
    bySigma: [{ sigma: 0.25, variants: [result] }],
    seconds: 1,
    createdAt: "now",
  });
  assert.match(markdown, /\| frozen \| /);
  // Radius 0.5 lies beyond the largest certifiable one (0.456): its cell says so instead of a figure.
  assert.match(markdown, /\| – \|/);
  assert.match(markdown, /L_inf covered \| 0\.0089 \| 0\.0179 \|/);
  set.x.dispose();
  stage.dispose();
});
