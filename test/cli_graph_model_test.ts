import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../src/engine/backend.ts";
import { loadLayersModel } from "../src/engine/model_io.ts";
import { convertToGraphModel } from "./graph_fixture.ts";
import { runTask } from "./task_runner.ts";

await initBackend("wasm");

Deno.test("a GraphModel goes through calibrate and eval like a LayersModel; a wrong --layer lists the nodes", async () => {
  const dir = await Deno.makeTempDir();
  const graphDir = join(dir, "lenet-graph");
  const model = await loadLayersModel("models/fashion-lenet");
  await convertToGraphModel(model, graphDir);
  model.dispose();

  const wrong = await runTask("calibrate", [
    "--model",
    graphDir,
    "--layer",
    "flaten",
    "--out",
    join(dir, "p0"),
  ]);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, /flaten/);
  assert.match(wrong.stderr, /Reshape/);

  const profile = join(dir, "profile");
  const calibrated = await runTask("calibrate", [
    "--model",
    graphDir,
    "--candidates",
    "200",
    "--held-out",
    "200",
    "--out",
    profile,
  ]);
  assert.equal(calibrated.code, 0, calibrated.stderr);
  const summary = JSON.parse(calibrated.stdout);
  assert.equal(summary.neurons, 800);
  assert.match(calibrated.stderr, /picked on 200 held-out examples/);
  await assert.rejects(
    Deno.stat(join(graphDir, "profile")),
    "calibrate must not write into the model folder",
  );

  const out = join(dir, "eval");
  const evaluated = await runTask("eval", [
    "--model",
    graphDir,
    "--profile",
    profile,
    "--n",
    "40",
    "--attacks",
    "fgsm",
    "--budgets",
    "0.1",
    "--out",
    out,
  ]);
  assert.equal(evaluated.code, 0, evaluated.stderr);
  const report = JSON.parse(await Deno.readTextFile(join(out, "eval.json"))).report;
  assert.ok(report.benign.accuracy > 0.7, `${report.benign.accuracy}`);
  assert.ok(report.rows[0].adversarial > 0);
  assert.ok(report.rows[0].defenses.nip.dsr >= 0);
  await Deno.remove(dir, { recursive: true });
});
