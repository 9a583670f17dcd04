/**
 * Detection in the sidecar over real loopback gRPC: every verdict carries the combined p-value and each
 * detector's; the policies decide what is defended and what goes upstream (a real OIP server counts its
 * calls): `reject` never calls the upstream for a flagged input, `flag` forwards inputs unchanged, `detect`
 * forwards nothing, `defend-if-flagged` defends flagged inputs only; Describe lists the detectors and alpha;
 * Prometheus counts flagged inputs per detector; a policy that needs detection on a model without it is
 * INVALID_ARGUMENT.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../src/data/dataset.ts";
import { loadFashionMnist } from "../src/data/fashion_mnist.ts";
import { fashionMnistSplit, samplePart } from "../src/data/splits.ts";
import { initBackend } from "../src/engine/backend.ts";
import { defaultConfig } from "../src/server/config.ts";
import { DefenseClient, float32Input, readFloat32 } from "../src/server/client.ts";
import { trainDemoPipeline } from "../src/server/demo_pipeline.ts";
import { ServingEngine } from "../src/server/engine.ts";
import { createLogger } from "../src/server/log.ts";
import { startSidecar } from "../src/server/server.ts";
import { calibrateDetection, DETECTION } from "../src/stages/detection.ts";
import { DefensePipeline } from "../src/stages/pipeline.ts";
import { buildStages, stageFactory } from "../src/stages/registry.ts";
import { OipUpstream } from "../src/upstream/oip_client.ts";
import { startOipServer } from "../src/upstream/oip_server.ts";

await initBackend("wasm");
const demo = await trainDemoPipeline({ seed: 5 });
const { split } = demo;
const fashion = await loadFashionMnist();
const parts = fashionMnistSplit(fashion.labels);
// The demo profile's candidates are the first 200 of the calibration order (seed 32); these come after.
const part = (skip: number, n: number) => {
  const d = samplePart(fashion, parts, "calibration", n, { seed: 32, skip });
  return { x: toTensor(d), labels: d.labels };
};
const sets = { fit: part(200, 400), reference: part(600, 200), heldOut: part(800, 400) };
const profile = {
  ...demo.profile,
  stages: calibrateDetection(["squeeze", "knn"].map((n) => stageFactory(n, "image")), demo, sets),
};
Object.values(sets).forEach((s) => s.x.dispose());
const pipeline = new DefensePipeline(
  split,
  buildStages([DETECTION, "nip"], { split, profile, modality: "image" }),
  "flag",
  0.05,
);
const engines = [
  new ServingEngine({ ...demo, profile, defense: pipeline }),
  new ServingEngine({ ...demo, modelName: "no-detection" }),
];
const oip = await startOipServer({ model: split.model, modelName: "fashion-lenet" });
const upstream = new OipUpstream({
  address: oip.address,
  model: "fashion-lenet",
  inputName: "input",
  timeoutMs: 5000,
  retries: 0,
});
const config = defaultConfig();
config.bind = "127.0.0.1:0";
config.metricsBind = "";
config.batching = { enabled: true, maxBatchSize: 64, maxQueueDelayMicros: 0, maxQueueSize: 64 };
const sidecar = await startSidecar({ config, engines, upstream, logger: createLogger("error", () => {}) });
const client = new DefenseClient(`127.0.0.1:${sidecar.port}`);

// Benign test images, and noise images far from anything the detectors were calibrated on.
const benign = demo.test.images.slice(0, 4 * 784);
const noise = Float32Array.from({ length: 4 * 784 }, (_, i) => (Math.sin(i * 12.9898) * 43758.5453) % 1 + 0.5)
  .map((v) => Math.min(1, Math.max(0, v)));
const mixed = new Float32Array(8 * 784);
mixed.set(benign);
mixed.set(noise, 4 * 784);
const direct = tf.tidy(() => {
  const outcome = pipeline.run(tf.tensor4d(mixed, [8, 28, 28, 1]));
  return { pValue: outcome.pValue!, defended: outcome.defended.dataSync() as Float32Array };
});
const flagged = Array.from(direct.pValue, (p) => p <= 0.05);
type Verdict = Record<string, unknown> & {
  flagged: boolean;
  pValue: number;
  rejected: boolean;
  defended: boolean;
};

Deno.test("the fixture: every noise image is flagged, and some benign one is not", () => {
  assert.ok(flagged.slice(4).every((f) => f), JSON.stringify(Array.from(direct.pValue)));
  assert.ok(flagged.slice(0, 4).some((f) => !f), JSON.stringify(Array.from(direct.pValue)));
});

Deno.test("Describe lists the detection, its detectors, alpha and the policy", async () => {
  const { modelInfo } = await client.describe({});
  assert.equal(modelInfo.policy, "flag");
  assert.deepEqual(modelInfo.detectors, ["squeeze", "knn"]);
  assert.equal(modelInfo.detectionAlpha, 0.05);
  assert.deepEqual(modelInfo.stages.map((s: { name: string }) => s.name), [DETECTION, "nip"]);
  const plain = (await client.describe({ model: "no-detection" })).modelInfo;
  assert.deepEqual(plain.detectors, []);
  assert.equal(plain.policy, "defend");
});

Deno.test("flag (the deployment's policy): every input forwarded unchanged, flagged ones marked", async () => {
  const before = oip.receivedCalls;
  const response = await client.classify({
    input: float32Input(mixed, [8, 28, 28, 1]),
    outputFormat: "OUTPUT_FORMAT_TENSOR",
  });
  assert.equal(oip.receivedCalls, before + 1);
  assert.deepEqual(readFloat32(response.defended.tensor), mixed);
  response.verdicts.forEach((v: Verdict, i: number) => {
    assert.equal(v.flagged, flagged[i], `example ${i}`);
    assert.ok(Math.abs(v.pValue - direct.pValue[i]) < 1e-6);
    assert.equal(v.defended, false);
    assert.equal(v.rejected, false);
    assert.deepEqual(Object.keys(v.detectorPValues as object).sort(), ["knn", "squeeze"]);
    // The upstream classified the unchanged input: its label is the local label before.
    assert.equal(response.answers[i].label, v.labelBefore);
  });
});

Deno.test("reject never calls the upstream for flagged inputs and says why", async () => {
  const before = oip.receivedCalls;
  const onlyFlagged = await client.classify({
    input: float32Input(noise, [4, 28, 28, 1]),
    policy: "POLICY_REJECT",
  });
  assert.equal(oip.receivedCalls, before, "no ModelInfer for a batch of flagged inputs");
  for (const [i, v] of onlyFlagged.verdicts.entries()) {
    assert.equal(v.rejected, true);
    assert.match(v.reason, /^rejected: combined p-value [\d.e-]+ <= alpha 0\.05/);
    assert.equal(onlyFlagged.answers[i].label, -1);
  }
  const both = await client.classify({ input: float32Input(mixed, [8, 28, 28, 1]), policy: "POLICY_REJECT" });
  assert.equal(oip.receivedCalls, before + 1);
  both.verdicts.forEach((v: Verdict, i: number) => {
    assert.equal(v.rejected, flagged[i]);
    assert.equal(both.answers[i].label === -1, flagged[i], `example ${i}`);
  });
});

Deno.test("detect answers with the detection only; defend-if-flagged defends flagged inputs only", async () => {
  const before = oip.receivedCalls;
  const detected = await client.classify({
    input: float32Input(mixed, [8, 28, 28, 1]),
    policy: "POLICY_DETECT",
  });
  assert.equal(oip.receivedCalls, before);
  assert.ok(detected.answers.every((a: { label: number }) => a.label === -1));
  const defended = await client.defend({
    input: float32Input(mixed, [8, 28, 28, 1]),
    policy: "POLICY_DEFEND_IF_FLAGGED",
  });
  const rows = readFloat32(defended.defended.tensor);
  for (let i = 0; i < 8; i++) {
    const got = rows.subarray(i * 784, (i + 1) * 784);
    const expected = (flagged[i] ? direct.defended : mixed).subarray(i * 784, (i + 1) * 784);
    got.forEach((v, j) => assert.ok(Math.abs(v - expected[j]) < 1e-6, `example ${i} value ${j}`));
    assert.equal(defended.verdicts[i].defended, flagged[i]);
  }
  const all = await client.defend({ input: float32Input(mixed, [8, 28, 28, 1]), policy: "POLICY_DEFEND" });
  assert.ok(all.verdicts.every((v: Verdict) => v.defended));
});

Deno.test("serving with detection leaves the tensor count flat", async () => {
  const before = tf.memory().numTensors;
  await Promise.all(
    ["POLICY_FLAG", "POLICY_REJECT", "POLICY_DETECT", "POLICY_DEFEND_IF_FLAGGED", "POLICY_DEFEND"].map((
      policy,
    ) => client.classify({ input: float32Input(mixed, [8, 28, 28, 1]), policy })),
  );
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("metrics count flagged inputs per detector; detection on a model without it is INVALID_ARGUMENT", async () => {
  assert.ok(sidecar.metrics.flagged.get({ detector: "combined" }) >= 4);
  assert.ok(sidecar.metrics.rejected.get({ detector: "combined" }) >= 8);
  assert.ok(
    sidecar.metrics.flagged.get({ detector: "knn" }) + sidecar.metrics.flagged.get({ detector: "squeeze" }) >
      0,
  );
  await assert.rejects(
    client.defend({
      model: "no-detection",
      input: float32Input(benign, [4, 28, 28, 1]),
      policy: "POLICY_REJECT",
    }),
    (e: { code: number; details: string }) => {
      assert.equal(e.code, 3);
      assert.match(e.details, /POLICY_REJECT needs a detection stage; model no-detection runs without one/);
      return true;
    },
  );
  const fine = await client.defend({ model: "no-detection", input: float32Input(benign, [4, 28, 28, 1]) });
  assert.equal(fine.verdicts.length, 4);
});

Deno.test("teardown", async () => {
  client.close();
  await sidecar.shutdown();
  upstream.close();
  await oip.close();
});
