/**
 * Certify and the smoothed policies over real loopback gRPC on the embedded default model: certificates
 * equal the smoothing stage's own (same seed) and their radius is the library's sigma * Phi^-1(pA lower);
 * bad sigma, n0, n and alpha answer INVALID_ARGUMENT naming the field, and a good call still succeeds; a
 * deployment that runs NIP certifies too; under `smoothed-reject` an upstream answer that disagrees with
 * the smoothed classifier is withheld; the tensor count stays flat.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import * as tf from "@tensorflow/tfjs";
import { loadNamedDataset } from "../src/data/named_datasets.ts";
import { samplePart } from "../src/data/splits.ts";
import { initBackend } from "../src/engine/backend.ts";
import { loadPipeline } from "../src/pipeline.ts";
import { DefenseClient, float32Input } from "../src/server/client.ts";
import { defaultConfig } from "../src/server/config.ts";
import { ServingEngine } from "../src/server/engine.ts";
import { createLogger } from "../src/server/log.ts";
import { startSidecar } from "../src/server/server.ts";
import { certifiedRadius } from "../src/smoothing/cohen.ts";
import { OipUpstream } from "../src/upstream/oip_client.ts";
import { startOipServer } from "../src/upstream/oip_server.ts";

await initBackend("wasm");
const SIGMA = 0.25;
const overrides = { smooth: { sigma: SIGMA, "predict-n": 100, n: 500 } };
const smoothed = await loadPipeline({ defenses: ["smooth"], overrides });
const nip = await loadPipeline({ defenses: ["nip"], overrides });
const engines = [new ServingEngine(smoothed), new ServingEngine({ ...nip, modelName: "fashion-lenet-nip" })];
const { dataset, split } = await loadNamedDataset("fashion-mnist");
const test = samplePart(dataset, split, "test", 10, { seed: 31 });
const PIXELS = 28 * 28;
const rows = (start: number, n: number) => test.images.slice(start * PIXELS, (start + n) * PIXELS);

// The upstream answers class 0 for everything, so every example the smoothed classifier puts elsewhere
// disagrees with it.
const constant = tf.sequential({
  layers: [
    tf.layers.flatten({ inputShape: [28, 28, 1] }),
    tf.layers.dense({
      units: 10,
      kernelInitializer: "zeros",
      biasInitializer: "zeros",
      activation: "softmax",
    }),
  ],
});
constant.layers[1].setWeights([tf.zeros([PIXELS, 10]), tf.tensor1d([5, 0, 0, 0, 0, 0, 0, 0, 0, 0])]);
const oip = await startOipServer({ model: constant, modelName: "always-zero" });
const upstream = new OipUpstream({
  address: oip.address,
  model: "always-zero",
  inputName: "input",
  timeoutMs: 5000,
  retries: 1,
});
const config = defaultConfig();
config.bind = "127.0.0.1:0";
config.metricsBind = "";
const sidecar = await startSidecar({ config, engines, upstream, logger: createLogger("error", () => {}) });
const client = new DefenseClient(`127.0.0.1:${sidecar.port}`);

Deno.test("Certify answers the smoothing stage's certificates, with the library's radius", async () => {
  const request = { input: float32Input(rows(0, 4), [4, 28, 28, 1]), n0: 50, n: 500, alpha: 0.001, seed: 7 };
  const response = await client.certify(request);
  assert.equal(response.certifications.length, 4);
  let certified = 0;
  for (const [i, c] of response.certifications.entries()) {
    assert.equal(c.sigma, SIGMA);
    assert.equal(c.n, 500);
    assert.equal(c.n0, 50);
    assert.equal(c.seed, 7 + 2 * i);
    assert.equal(c.radiusSpace, "input");
    assert.equal(c.abstained, c.label === -1);
    assert.ok(Math.abs(c.radius - certifiedRadius(c.pALower, SIGMA)) < 1e-9, `radius ${c.radius}`);
    // The same stage on the same example with the same seed gives the same certificate.
    const x = tf.tensor4d(rows(i, 1), [1, 28, 28, 1]);
    const [own] = smoothed.defense.stages[0].certify!(x, { n0: 50, n: 500, alpha: 0.001, seed: 7 + 2 * i });
    x.dispose();
    assert.equal(c.label, own.label);
    assert.ok(Math.abs(c.pALower - own.pALower) < 1e-9);
    if (c.label === test.labels[i] && c.radius > 0) certified++;
  }
  assert.ok(certified >= 2, `only ${certified} of 4 test images certified correct`);
  // The seed reproduces the answer.
  const again = await client.certify(request);
  assert.deepEqual(
    again.certifications.map((c: { radius: number }) => c.radius),
    response.certifications.map((c: { radius: number }) => c.radius),
  );
  assert.ok(response.timings.computeMs > 0);
});

Deno.test("bad sigma, n0, n and alpha (NaN included) answer INVALID_ARGUMENT naming the field; good calls go on", async () => {
  const input = float32Input(rows(0, 1), [1, 28, 28, 1]);
  const cases: [Record<string, number>, RegExp][] = [
    [{ sigma: -1 }, /^sigma: .*non-negative/],
    [{ sigma: 0.5 }, /^sigma: .*certifies at sigma 0\.25/],
    [{ n: 200_000 }, /^n: n = 200000 must be an integer in \[1, 100000\]/],
    [{ n0: 20_000 }, /^n0: n0 = 20000/],
    [{ alpha: 0.7 }, /^alpha: alpha = 0\.7 must be in \(0, 0\.5\)/],
    [{ alpha: NaN }, /^alpha: NaN is not a number/],
  ];
  for (const [fields, pattern] of cases) {
    await assert.rejects(client.certify({ input, ...fields }), (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.INVALID_ARGUMENT, e.details);
      assert.match(e.details, pattern);
      return true;
    });
    const good = await client.certify({ input, n: 100 });
    assert.equal(good.certifications.length, 1);
  }
  await assert.rejects(
    client.certify({ input: float32Input(rows(0, 10), [10, 28, 28, 1]), n: 100_000, n0: 10_000 }),
    (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /exceeds the limit/.test(e.details),
  );
});

Deno.test("a deployment that runs NIP certifies with a smoothing stage of its own; Describe lists it", async () => {
  const described = await client.describe({ model: "fashion-lenet-nip" });
  assert.equal(described.modelInfo.certifier.name, "smooth");
  assert.equal(described.modelInfo.certifier.settings.sigma, String(SIGMA));
  assert.equal(described.modelInfo.stages[0].name, "nip");
  const response = await client.certify({
    model: "fashion-lenet-nip",
    input: float32Input(rows(0, 2), [2, 28, 28, 1]),
    n: 200,
    seed: 3,
  });
  assert.equal(response.certifications.length, 2);
  assert.equal((await client.describe({})).modelInfo.policy, "smoothed");
});

Deno.test("smoothed policies: the smoothed answer is the verdict; disagreeing upstream answers are flagged or withheld", async () => {
  const input = float32Input(rows(0, 8), [8, 28, 28, 1]);
  const defended = await client.defend({ input, policy: "POLICY_SMOOTHED" });
  for (const v of defended.verdicts) {
    assert.equal(v.flagged, v.labelAfter === -1 || v.labelAfter !== v.labelBefore);
  }
  const flagged = await client.classify({ input, policy: "POLICY_SMOOTHED" });
  const rejected = await client.classify({ input, policy: "POLICY_SMOOTHED_REJECT" });
  let disagreements = 0;
  for (let i = 0; i < 8; i++) {
    const smoothedLabel = flagged.verdicts[i].labelAfter;
    const disagrees = smoothedLabel !== 0;
    assert.equal(flagged.answers[i].label, 0, "policy smoothed forwards the upstream's answer");
    assert.equal(flagged.verdicts[i].flagged, disagrees);
    if (rejected.verdicts[i].labelAfter !== 0) {
      disagreements++;
      assert.equal(rejected.verdicts[i].rejected, true);
      assert.equal(rejected.answers[i].label, -1);
      assert.match(rejected.verdicts[i].reason, /^rejected: the smoothed classifier (abstains|answers \d)/);
    } else {
      assert.equal(rejected.answers[i].label, 0);
    }
  }
  assert.ok(
    disagreements >= 4,
    `${disagreements} of 8 examples disagree with an upstream that always says 0`,
  );
  await assert.rejects(
    client.defend({ model: "fashion-lenet-nip", input, policy: "POLICY_SMOOTHED" }),
    (e: grpc.ServiceError) =>
      e.code === grpc.status.INVALID_ARGUMENT && /needs a smoothing stage/.test(e.details),
  );
});

Deno.test("certifying leaves the tensor count where it was", async () => {
  const input = float32Input(rows(0, 2), [2, 28, 28, 1]);
  await client.certify({ input, n: 100 });
  const before = tf.memory().numTensors;
  await Promise.all([
    client.certify({ input, n: 100 }),
    client.defend({ input }),
    client.certify({ input, n: 50 }),
  ]);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("shutdown", async () => {
  client.close();
  await sidecar.shutdown();
  upstream.close();
  await oip.close();
  engines.forEach((e) => e.dispose());
  smoothed.defense.dispose();
  nip.defense.dispose();
  constant.dispose();
});
