import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../src/data/dataset.ts";
import {
  ADAPTIVE_DETECTION_ATTACKS,
  evaluateAdaptiveDetection,
  renderAdaptiveDetectionMarkdown,
} from "../src/eval/detection_adaptive.ts";
import { detectionFixture } from "./detection_fixture.ts";

const { fixture, pipeline: detecting } = await detectionFixture();

Deno.test("adaptive detection report: every attack per budget, worst case over runs, per-run rates", async () => {
  const pipeline = detecting();
  const x = toTensor(fixture.test, 0, 40);
  const labels = fixture.test.labels.slice(0, 40);
  const before = tf.memory().numTensors;
  const report = await evaluateAdaptiveDetection(pipeline, { x, labels }, {
    epsilons: [0.05, 0.2],
    runs: 2,
    n: 12,
    steps: 10,
    squareSteps: 30,
    boundarySteps: 20,
    boundaryN: 3,
  });
  assert.equal(tf.memory().numTensors, before, "no tensor left");
  // Three L_inf attacks per radius, then Boundary once at its L2 radius on its own few inputs.
  assert.equal(report.rows.length, 2 * (ADAPTIVE_DETECTION_ATTACKS.length - 1) + 1);
  const boundary = report.rows[report.rows.length - 1];
  assert.deepEqual([boundary.attack, boundary.norm, boundary.epsilon, boundary.attacked], [
    "boundary",
    "l2",
    2,
    3,
  ]);
  assert.equal(report.runs, 2);
  for (const row of report.rows) {
    assert.ok(row.attacked > 0 && row.attacked <= 12);
    assert.equal(row.perRun.length, 2);
    // An input counts as defended only when defended in every run.
    assert.ok(row.worst <= Math.min(...row.perRun) + 1e-9, `${row.attack} ${row.epsilon}`);
    assert.equal(Math.round((1 - row.worst) * row.attacked), row.evaded);
  }
  // A larger budget never leaves more defended under the aware PGD.
  const aware = (e: number) => report.rows.find((r) => r.attack === "pgd-detect" && r.epsilon === e)!.worst;
  assert.ok(aware(0.2) <= aware(0.05), `eps 0.2: ${aware(0.2)}, eps 0.05: ${aware(0.05)}`);
  const markdown = renderAdaptiveDetectionMarkdown(report);
  assert.match(markdown, /\| boundary \| L2 2 \| 3 \|/);
  assert.match(markdown, /\| pgd-detect \| L_inf 0.2 \| \d+ \| \*\*\d+\.\d%\*\* \| \d+\.\d%, \d+\.\d% \|/);
  assert.match(markdown, /worst case over 2 runs/);
  x.dispose();
  pipeline.dispose();
});
