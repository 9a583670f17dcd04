/**
 * The sidecar over real loopback gRPC: every RPC, inputs of each kind, bad input answered with the right
 * status and followed by a good request that still succeeds, streams, health, reflection, metrics, and
 * a flat tensor count after a burst.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import * as tf from "@tensorflow/tfjs";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { Buffer } from "node:buffer";
import { initBackend } from "../src/engine/backend.ts";
import { decodeImage, encodeJpeg, encodePng } from "../src/image/codec.ts";
import { convertChannels } from "../src/image/resize.ts";
import { defaultConfig } from "../src/server/config.ts";
import { DefenseClient, float32Input, imagesInput, readFloat32, uint8Input } from "../src/server/client.ts";
import { trainDemoPipeline } from "../src/server/demo_pipeline.ts";
import { ServingEngine } from "../src/server/engine.ts";
import { createLogger } from "../src/server/log.ts";
import { startSidecar } from "../src/server/server.ts";
import { OipUpstream } from "../src/upstream/oip_client.ts";
import { startOipServer } from "../src/upstream/oip_server.ts";

await initBackend("wasm");
const pipeline = await trainDemoPipeline();
const engine = new ServingEngine(pipeline);
const PIXELS = 28 * 28;
const test = pipeline.test;
const oip = await startOipServer({ model: pipeline.split.model, modelName: "fashion-lenet" });
const upstream = new OipUpstream({
  address: oip.address,
  model: "fashion-lenet",
  inputName: "input",
  timeoutMs: 5000,
  retries: 1,
});
const config = defaultConfig();
config.bind = "127.0.0.1:0";
config.metricsBind = "127.0.0.1:0";
config.maxMessageBytes = 256 * 1024;
config.maxExamplesPerRequest = 64;
config.maxImagePixels = 512 * 512;
config.batching = { enabled: true, maxBatchSize: 16, maxQueueDelayMicros: 2000, maxQueueSize: 512 };
const logs: string[] = [];
const sidecar = await startSidecar({
  config,
  engines: [engine],
  upstream,
  logger: createLogger("info", (l) => logs.push(l)),
});
const address = `127.0.0.1:${sidecar.port}`;
const client = new DefenseClient(address);

// deno-lint-ignore no-explicit-any
type GrpcTree = Record<string, any>;

const rows = (start: number, n: number) => test.images.slice(start * PIXELS, (start + n) * PIXELS);
const good = () => ({ input: float32Input(rows(0, 2), [2, 28, 28, 1]) });

async function expectStatus(call: Promise<unknown>, code: grpc.status, pattern: RegExp) {
  await assert.rejects(call, (e: grpc.ServiceError) => {
    assert.equal(e.code, code, `status ${grpc.status[e.code]} (${e.details}), expected ${grpc.status[code]}`);
    assert.match(e.details, pattern);
    return true;
  });
  // The server still answers a good request after the bad one.
  const after = await client.defend(good());
  assert.equal(after.verdicts.length, 2);
}

Deno.test("Describe reports the model and its NIP profile", async () => {
  const { modelInfo, models, upstream: up } = await client.describe({});
  assert.equal(modelInfo.name, "fashion-lenet");
  assert.deepEqual(modelInfo.inputShape, [28, 28, 1]);
  assert.equal(modelInfo.inputMin, 0);
  assert.equal(modelInfo.inputMax, 1);
  assert.equal(modelInfo.layerName, "flatten");
  assert.equal(modelInfo.k1, 5);
  assert.equal(modelInfo.k2, 5);
  assert.equal(modelInfo.candidateCount, pipeline.profile.candidateCount);
  assert.ok(modelInfo.candidateCount > 0);
  assert.equal(modelInfo.keyMode, "knn");
  assert.equal(modelInfo.numClasses, 10);
  assert.deepEqual(models, ["fashion-lenet"]);
  assert.match(up, /^oip:\/\/127\.0\.0\.1:\d+\/fashion-lenet$/);
});

Deno.test("Defend returns the same defended tensor and verdicts as the NIP core", async () => {
  const x = rows(0, 4);
  const response = await client.defend({ input: float32Input(x, [4, 28, 28, 1]) });
  const defended = readFloat32(response.defended.tensor);
  assert.deepEqual(response.defended.tensor.shape, [4, 28, 28, 1]);
  const direct = tf.tidy(() => {
    const outcome = pipeline.defense.run(tf.tensor4d(x, [4, 28, 28, 1]));
    return {
      ...outcome,
      labelsAfter: outcome.labelsAfter!,
      candidateIndex: outcome.details.nip.candidateIndex,
      similarity: outcome.details.nip.similarity,
      values: outcome.defended.dataSync() as Float32Array,
    };
  });
  for (let i = 0; i < defended.length; i++) assert.ok(Math.abs(defended[i] - direct.values[i]) < 1e-6);
  assert.ok(defended.every((v) => v >= 0 && v <= 1));
  response.verdicts.forEach((v: Record<string, number & number[]>, i: number) => {
    assert.equal(v.labelBefore, direct.labelsBefore[i]);
    assert.equal(v.labelAfter, direct.labelsAfter[i]);
    assert.equal(v.candidateIndex, direct.candidateIndex[i]);
    assert.ok(Math.abs(v.similarity - direct.similarity[i]) < 1e-6);
    assert.equal(v.scoresBefore.length, 10);
    assert.equal(v.labelFlipped, direct.labelsBefore[i] !== direct.labelsAfter[i]);
  });
  assert.ok(response.timings.totalMs > 0);
  assert.ok(response.timings.batchExamples >= 4);
});

Deno.test("uint8 tensors and PNG/JPEG images are accepted; output as PNG or JPEG images", async () => {
  const x = rows(10, 1);
  const bytes = Uint8Array.from(x, (v) => Math.round(v * 255));
  const fromUint8 = await client.defend({
    input: uint8Input(bytes, [28, 28, 1]),
    outputFormat: "OUTPUT_FORMAT_PNG",
  });
  const png = encodePng({ width: 28, height: 28, channels: 1, data: bytes });
  const fromPng = await client.defend({ input: imagesInput([png]), outputFormat: "OUTPUT_FORMAT_TENSOR" });
  assert.equal(fromUint8.verdicts[0].labelBefore, fromPng.verdicts[0].labelBefore);
  assert.equal(fromUint8.defended.images.length, 1);
  const decoded = convertChannels(decodeImage(fromUint8.defended.images[0].data), 1);
  const tensor = readFloat32(fromPng.defended.tensor);
  for (let i = 0; i < PIXELS; i++) assert.ok(Math.abs(decoded.data[i] / 255 - tensor[i]) <= 0.5 / 255 + 1e-6);
  // A larger RGB JPEG is converted to gray and resized to 28x28.
  const big = { width: 56, height: 56, channels: 3 as const, data: new Uint8Array(56 * 56 * 3) };
  for (let i = 0; i < 56 * 56; i++) {
    big.data.fill(bytes[((i / 56 >> 1) * 28) + ((i % 56) >> 1)], i * 3, i * 3 + 3);
  }
  const fromJpeg = await client.defend({
    input: imagesInput([encodeJpeg(big, 95), png]),
    outputFormat: "OUTPUT_FORMAT_JPEG",
  });
  assert.equal(fromJpeg.verdicts.length, 2);
  assert.equal(fromJpeg.defended.images[0].format, "IMAGE_FORMAT_JPEG");
});

Deno.test("Predict is the bare model; Classify forwards the defended input to the OIP upstream", async () => {
  const x = rows(20, 3);
  const predicted = await client.predict({ input: float32Input(x, [3, 28, 28, 1]) });
  const expected = tf.tidy(() =>
    Array.from(
      (pipeline.split.model.predict(tf.tensor4d(x, [3, 28, 28, 1])) as tf.Tensor).argMax(-1).dataSync(),
    )
  );
  assert.deepEqual(predicted.predictions.map((p: { label: number }) => p.label), expected);
  const calls = oip.inferCalls;
  const classified = await client.classify({
    input: float32Input(x, [3, 28, 28, 1]),
    outputFormat: "OUTPUT_FORMAT_TENSOR",
  });
  assert.equal(oip.inferCalls, calls + 1);
  const defended = readFloat32(classified.defended.tensor);
  const upstreamLabels = tf.tidy(() =>
    Array.from(
      (pipeline.split.model.predict(tf.tensor4d(defended, [3, 28, 28, 1])) as tf.Tensor).argMax(-1)
        .dataSync(),
    )
  );
  assert.deepEqual(classified.answers.map((a: { label: number }) => a.label), upstreamLabels);
  // The upstream serves the same model, so its answer is the local label after defense.
  assert.deepEqual(classified.verdicts.map((v: { labelAfter: number }) => v.labelAfter), upstreamLabels);
  assert.ok(classified.timings.upstreamMs > 0);
  const noDefended = await client.classify({ input: float32Input(x, [3, 28, 28, 1]) });
  assert.equal(noDefended.defended, null);
});

Deno.test("concurrent Classify calls are defended and forwarded upstream as one batch", async () => {
  const calls = oip.inferCalls;
  const answers = await Promise.all(
    Array.from(
      { length: 8 },
      (_, i) =>
        client.classify({
          input: float32Input(rows(30 + i, 1), [28, 28, 1]),
          outputFormat: "OUTPUT_FORMAT_TENSOR",
        }),
    ),
  );
  const forwarded = oip.inferCalls - calls;
  assert.ok(forwarded >= 1 && forwarded < 8, `${forwarded} ModelInfer calls for 8 Classify calls`);
  for (const a of answers) {
    const defended = readFloat32(a.defended.tensor);
    const label = tf.tidy(() =>
      (pipeline.split.model.predict(tf.tensor4d(defended, [1, 28, 28, 1])) as tf.Tensor).argMax(-1)
        .dataSync()[0]
    );
    assert.equal(a.answers.length, 1);
    assert.equal(a.answers[0].label, label);
  }
  assert.ok(answers.some((a) => a.timings.batchExamples > 1));
});

Deno.test("bad input answers INVALID_ARGUMENT / RESOURCE_EXHAUSTED with the reason, then good calls succeed", async () => {
  const { INVALID_ARGUMENT, RESOURCE_EXHAUSTED } = grpc.status;
  const x = rows(0, 1);
  await expectStatus(
    client.defend({ input: float32Input(x, [28, 28, 3]) }),
    INVALID_ARGUMENT,
    /shape: got \[28,28,3\], expected \[28, 28, 1\]/,
  );
  await expectStatus(
    client.defend({ input: float32Input(x, [1, 784]) }),
    INVALID_ARGUMENT,
    /input.tensor.shape/,
  );
  await expectStatus(
    client.defend({
      input: { tensor: { shape: [28, 28, 1], dtype: "DATA_TYPE_UNSPECIFIED", data: Buffer.alloc(3136) } },
    }),
    INVALID_ARGUMENT,
    /dtype: DATA_TYPE_UNSPECIFIED; expected DATA_TYPE_FLOAT32 or DATA_TYPE_UINT8/,
  );
  await expectStatus(
    client.defend({
      input: { tensor: { shape: [28, 28, 1], dtype: "DATA_TYPE_FLOAT32", data: Buffer.alloc(3000) } },
    }),
    INVALID_ARGUMENT,
    /3000 bytes, shape \[28,28,1\] as float32 needs 3136/,
  );
  await expectStatus(
    client.defend({ input: uint8Input(new Uint8Array(700), [28, 28, 1]) }),
    INVALID_ARGUMENT,
    /700 bytes.*uint8 needs 784/,
  );
  const nan = x.slice();
  nan[17] = NaN;
  await expectStatus(
    client.defend({ input: float32Input(nan, [28, 28, 1]) }),
    INVALID_ARGUMENT,
    /element 17 is NaN/,
  );
  const inf = x.slice();
  inf[3] = Infinity;
  await expectStatus(
    client.defend({ input: float32Input(inf, [28, 28, 1]) }),
    INVALID_ARGUMENT,
    /element 3 is Infinity/,
  );
  const outside = x.slice();
  outside[5] = 1.5;
  await expectStatus(
    client.defend({ input: float32Input(outside, [28, 28, 1]) }),
    INVALID_ARGUMENT,
    /element 5 is 1.5, outside the model's input range \[0, 1\]/,
  );
  await expectStatus(
    client.defend({ input: imagesInput([new TextEncoder().encode("GIF89a not an image")]) }),
    INVALID_ARGUMENT,
    /images\[0\]: not a PNG or JPEG/,
  );
  const png = encodePng({ width: 28, height: 28, channels: 1, data: new Uint8Array(PIXELS) });
  await expectStatus(
    client.defend({ input: imagesInput([png, png.subarray(0, 50)]) }),
    INVALID_ARGUMENT,
    /images\[1\]: PNG decode failed/,
  );
  await expectStatus(
    client.defend({ model: "resnet-9000", input: good().input }),
    INVALID_ARGUMENT,
    /unknown model "resnet-9000"; loaded: fashion-lenet/,
  );
  await expectStatus(client.defend({}), INVALID_ARGUMENT, /input: missing/);
  await expectStatus(
    client.defend({ input: { wav: Buffer.from("RIFF") } }),
    INVALID_ARGUMENT,
    /input.wav: this model takes images/,
  );
  await expectStatus(client.defend({ input: imagesInput([]) }), INVALID_ARGUMENT, /input.images: empty/);
  // Size limits: a message over maxMessageBytes, too many examples, an image over the pixel limit.
  await expectStatus(
    client.defend({ input: float32Input(new Float32Array(100 * PIXELS), [100, 28, 28, 1]) }),
    RESOURCE_EXHAUSTED,
    /larger than max|message/i,
  );
  await expectStatus(
    client.defend({ input: uint8Input(new Uint8Array(65 * PIXELS), [65, 28, 28, 1]) }),
    RESOURCE_EXHAUSTED,
    /65 examples in one request, limit 64/,
  );
  const huge = png.slice();
  new DataView(huge.buffer).setUint32(16, 5000);
  new DataView(huge.buffer).setUint32(20, 5000);
  await expectStatus(
    client.defend({ input: imagesInput([huge]) }),
    RESOURCE_EXHAUSTED,
    /images\[0\]: PNG is 5000x5000 = 25000000 pixels, limit 262144/,
  );
  // Classify and Predict validate the same way.
  await expectStatus(client.classify({ input: float32Input(nan, [28, 28, 1]) }), INVALID_ARGUMENT, /NaN/);
  await expectStatus(
    client.predict({ input: float32Input(outside, [28, 28, 1]) }),
    INVALID_ARGUMENT,
    /outside/,
  );
});

Deno.test("DefendStream and ClassifyStream answer each message by id; a bad message gets an error, the rest go on", async () => {
  const requests = Array.from({ length: 12 }, (_, i) => ({
    id: `m${i}`,
    request: i === 5
      ? { input: float32Input(new Float32Array(3), [3]) }
      : { input: float32Input(rows(i, 1), [28, 28, 1]) },
  }));
  const answers = await client.stream("DefendStream", requests);
  assert.equal(answers.length, 12);
  // deno-lint-ignore no-explicit-any
  const byId = new Map<string, any>(answers.map((a: { id: string }) => [a.id, a]));
  for (const r of requests) assert.ok(byId.has(r.id), r.id);
  const bad = byId.get("m5");
  assert.equal(bad.error.code, grpc.status.INVALID_ARGUMENT);
  assert.match(bad.error.message, /input.tensor.shape/);
  const ok = byId.get("m3");
  assert.equal(ok.response.verdicts.length, 1);
  const classified = await client.stream("ClassifyStream", requests.slice(0, 4));
  assert.equal(
    classified.filter((a: { response?: { answers: unknown[] } }) => a.response?.answers.length === 1).length,
    4,
  );
});

Deno.test("a burst of concurrent calls is batched and leaves the tensor count flat", async () => {
  await client.defend(good());
  const before = tf.memory().numTensors;
  const calls = Array.from({ length: 60 }, (_, i) => {
    const request = { input: float32Input(rows(i % 90, 1), [28, 28, 1]) };
    return i % 3 === 0
      ? client.defend(request)
      : i % 3 === 1
      ? client.predict(request)
      : client.classify(request);
  });
  const answers = await Promise.all(calls);
  assert.equal(answers.length, 60);
  assert.ok(answers.some((a) => a.timings.batchExamples > 1), "concurrent calls share batches");
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("health, reflection and metrics", async () => {
  const health = grpc.loadPackageDefinition(
    protoLoader.loadSync(healthProtoPath, { enums: String }),
  ) as GrpcTree;
  const healthClient = new health.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
  for (const service of ["", "nip.v1.DefenseService"]) {
    const reply = await new Promise<{ status: string }>((resolve, reject) =>
      healthClient.Check(
        { service },
        (e: Error | null, r: { status: string }) => (e ? reject(e) : resolve(r)),
      )
    );
    assert.equal(reply.status, "SERVING");
  }
  healthClient.close();

  const reflectionProto = new URL(
    "../node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto",
    import.meta.url,
  );
  const reflection = grpc.loadPackageDefinition(
    protoLoader.loadSync(decodeURIComponent(reflectionProto.pathname)),
  ) as GrpcTree;
  const reflectionClient = new reflection.grpc.reflection.v1.ServerReflection(
    address,
    grpc.credentials.createInsecure(),
  );
  const services = await new Promise<string[]>((resolve, reject) => {
    const call = reflectionClient.ServerReflectionInfo();
    call.on("data", (m: { listServicesResponse: { service: { name: string }[] } }) => {
      resolve(m.listServicesResponse.service.map((s) => s.name));
      call.end();
    });
    call.on("error", reject);
    call.write({ listServices: "" });
  });
  assert.ok(services.includes("nip.v1.DefenseService"), services.join(","));
  reflectionClient.close();

  const text = await (await fetch(`http://127.0.0.1:${sidecar.metricsPort}/metrics`)).text();
  assert.match(text, /nip_requests_total\{code="OK",method="Defend"\} \d+/);
  assert.match(text, /nip_requests_total\{code="INVALID_ARGUMENT",method="Defend"\} \d+/);
  assert.match(text, /nip_request_duration_seconds_bucket\{le="\+Inf",method="Defend"\} \d+/);
  assert.match(text, /nip_batch_size_count\{op="defend"\} \d+/);
  assert.match(text, /nip_defended_examples_total \d+/);
  assert.match(text, /nip_label_flips_total|# TYPE nip_label_flips_total counter/);
  assert.match(text, /# TYPE nip_upstream_errors_total counter/);
  assert.ok(sidecar.metrics.defended.get() > 0);
  assert.ok(logs.some((l) => JSON.parse(l).msg === "listening"));
  assert.ok(logs.some((l) => JSON.parse(l).code === "INVALID_ARGUMENT"));
});

Deno.test("shutdown stops the server: later calls fail", async () => {
  client.close();
  await sidecar.shutdown();
  upstream.close();
  await oip.close();
  const late = new DefenseClient(address);
  await assert.rejects(
    late.describe({}, { timeoutMs: 500 }),
    (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED,
  );
  late.close();
});
