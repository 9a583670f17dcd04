/**
 * Hostile traffic over loopback gRPC: raw protobuf garbage (grpc-js clients with pass-through
 * serializers), oversized metadata, unknown enum values, streams cancelled right after writing, batch
 * neighbours with different deadlines, a shutdown with an upstream that never answers, model servers
 * answering NaN or the wrong class count, and the gauges read while calls wait.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import * as tf from "@tensorflow/tfjs";
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import { initBackend } from "../src/engine/backend.ts";
import { MAX_METADATA_BYTES } from "../src/server/admission.ts";
import { defaultConfig, type SidecarConfig } from "../src/server/config.ts";
import { DefenseClient, float32Input } from "../src/server/client.ts";
import { trainDemoPipeline } from "../src/server/demo_pipeline.ts";
import { ServingEngine } from "../src/server/engine.ts";
import { createLogger } from "../src/server/log.ts";
import { type Sidecar, startSidecar } from "../src/server/server.ts";
import { createUpstream } from "../src/server/upstream_factory.ts";
import { float32ToLeBytes, type OipInferRequest, oipService } from "../src/upstream/oip_proto.ts";
import { startOipServer } from "../src/upstream/oip_server.ts";

await initBackend("wasm");
const pipeline = await trainDemoPipeline({ seed: 7 });
const engine = new ServingEngine(pipeline);
const PIXELS = 28 * 28;
const CLASSES = engine.numClasses;
const one = { input: float32Input(pipeline.test.images.slice(0, PIXELS), [28, 28, 1]) };
const GARBAGE = Buffer.from([0xff, 0xff, 0xff, 0xff]); // field 0x1fffff, wire type 7: not protobuf
// deno-lint-ignore no-explicit-any
type Message = any;

function baseConfig(): SidecarConfig {
  const c = defaultConfig();
  c.bind = "127.0.0.1:0";
  c.metricsBind = "";
  return c;
}

/** Starts a sidecar (upstream from `config`), runs `body`, shuts down; returns the log's messages. */
async function withSidecar(
  config: SidecarConfig,
  body: (client: DefenseClient, sidecar: Sidecar) => Promise<void>,
): Promise<string[]> {
  const lines: string[] = [];
  const log = createLogger("info", (line) => lines.push(line));
  const upstream = config.upstream.kind === "none" ? undefined : createUpstream(config, engine.name, log);
  const sidecar = await startSidecar({ config, engines: [engine], upstream, logger: log });
  const client = new DefenseClient(`127.0.0.1:${sidecar.port}`);
  try {
    await body(client, sidecar);
  } finally {
    client.close();
    await sidecar.shutdown();
  }
  return lines.map((l) => JSON.parse(l).msg);
}

/** An OIP model server answering each ModelInfer with `answer` (undefined: never answers). */
async function fakeOip(answer: (request: OipInferRequest) => Message | undefined) {
  const server = new grpc.Server();
  let calls = 0;
  server.addService(oipService().definition, {
    ModelInfer: (call: grpc.ServerUnaryCall<OipInferRequest, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      calls++;
      const response = answer(call.request);
      if (response) cb(null, response);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (e, p) => e ? reject(e) : resolve(p),
    )
  );
  return {
    address: `127.0.0.1:${port}`,
    get calls() {
      return calls;
    },
    close: () => server.forceShutdown(),
  };
}

/** An OIP answer of `n` examples with `classes` scores each, `poison` applied to the values. */
function scoresAnswer(n: number, classes: number, poison: (values: Float32Array) => void = () => {}) {
  const values = new Float32Array(n * classes).fill(1 / classes);
  poison(values);
  return {
    modelName: engine.name,
    outputs: [{ name: "output", datatype: "FP32", shape: [n, classes] }],
    rawOutputContents: [Buffer.from(float32ToLeBytes(values))],
  };
}

function oipConfig(address: string, timeoutMs = 10_000): SidecarConfig {
  const c = baseConfig();
  c.upstream = { ...c.upstream, kind: "oip", address, timeoutMs, retries: 0 };
  return c;
}

const identity = (x: Buffer) => x;

/** A raw unary call: `bytes` as the request, the status back (`method` of DefenseService, or a full path). */
function rawUnary(client: DefenseClient, method: string, bytes: Buffer, metadata = new grpc.Metadata()) {
  return new Promise<grpc.ServiceError | null>((resolve) =>
    client.raw.makeUnaryRequest(
      method.startsWith("/") ? method : `/nip.v1.DefenseService/${method}`,
      identity,
      identity,
      bytes,
      metadata,
      {},
      (error) => resolve(error),
    )
  );
}

const waitFor = async (condition: () => boolean, what: string) => {
  const until = Date.now() + 10_000;
  while (!condition() && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  assert.ok(condition(), `timed out waiting for ${what}`);
};

Deno.test("an undecodable message on DefendStream is answered INVALID_ARGUMENT and the stream goes on", async () => {
  await withSidecar(baseConfig(), async (client, sidecar) => {
    const method = client.raw.constructor as unknown as { service: grpc.ServiceDefinition };
    const { requestSerialize, responseDeserialize } = method.service.DefendStream;
    // Buffers go out as they are; messages through the real serializer.
    const serialize = (m: Message) => Buffer.isBuffer(m) ? m : requestSerialize(m);
    const call = client.raw.makeBidiStreamRequest(
      "/nip.v1.DefenseService/DefendStream",
      serialize,
      responseDeserialize,
    );
    const answers: Message[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on("data", (m: Message) => answers.push(m));
      call.on("error", reject);
      call.on("end", resolve);
    });
    call.write({ id: "a", request: one });
    call.write(GARBAGE);
    call.write({ id: "b", request: one });
    call.write(GARBAGE);
    call.write({ id: "c", request: { ...one, outputFormat: 99 } });
    call.end();
    await done;
    assert.equal(answers.length, 5);
    const byId = (id: string) => answers.filter((a) => a.id === id);
    assert.equal(byId("a")[0].response.verdicts.length, 1);
    assert.equal(byId("b")[0].response.verdicts.length, 1);
    const garbage = byId("");
    assert.equal(garbage.length, 2);
    for (const g of garbage) {
      assert.equal(g.error.code, grpc.status.INVALID_ARGUMENT);
      assert.match(g.error.message, /stream message [13]: not a valid protobuf message/);
    }
    assert.equal(byId("c")[0].error.code, grpc.status.INVALID_ARGUMENT);
    assert.match(byId("c")[0].error.message, /^output_format: unknown value 99/);
    assert.equal(sidecar.metrics.requests.get({ method: "DefendStream", code: "INVALID_ARGUMENT" }), 3);
    assert.equal(sidecar.metrics.requests.get({ method: "DefendStream", code: "OK" }), 2);
  });
});

Deno.test("undecodable requests, oversized metadata and unknown enum values are refused by name and counted", async () => {
  await withSidecar(baseConfig(), async (client, sidecar) => {
    const garbage = await rawUnary(client, "Defend", GARBAGE);
    assert.equal(grpc.status[garbage!.code], "INVALID_ARGUMENT");
    assert.match(garbage!.details, /^request: not a valid protobuf message/);
    const metadata = new grpc.Metadata();
    metadata.set("x-padding", "a".repeat(2 * MAX_METADATA_BYTES));
    const big = await rawUnary(client, "Describe", Buffer.alloc(0), metadata);
    assert.equal(grpc.status[big!.code], "RESOURCE_EXHAUSTED");
    assert.match(big!.details, /request metadata: \d+ bytes exceeds the limit of 16384/);
    await assert.rejects(client.defend({ ...one, outputFormat: 42 }), (e: grpc.ServiceError) => {
      assert.equal(grpc.status[e.code], "INVALID_ARGUMENT");
      assert.match(e.details, /^output_format: unknown value 42/);
      return true;
    });
    assert.equal(sidecar.metrics.requests.get({ method: "Defend", code: "INVALID_ARGUMENT" }), 2);
    assert.equal(sidecar.metrics.requests.get({ method: "Describe", code: "RESOURCE_EXHAUSTED" }), 1);
    const stream = (client.raw as Message).DefendStream(metadata) as grpc.ClientDuplexStream<
      Message,
      Message
    >;
    const streamStatus = new Promise<grpc.ServiceError>((resolve) => stream.on("error", resolve));
    stream.on("data", () => {});
    stream.write({ id: "x", request: one });
    stream.end();
    assert.equal(grpc.status[(await streamStatus).code], "RESOURCE_EXHAUSTED");
    assert.equal(sidecar.metrics.requests.get({ method: "DefendStream", code: "RESOURCE_EXHAUSTED" }), 1);
    assert.equal((await client.defend(one)).verdicts.length, 1);
  });
});

Deno.test("metadata with more header pairs than HTTP/2 admits: the stream is reset ENHANCE_YOUR_CALM; serving goes on", async () => {
  await withSidecar(baseConfig(), async (client, sidecar) => {
    const session = http2.connect(`http://127.0.0.1:${sidecar.port}`);
    try {
      const headers: Record<string, string> = {
        ":method": "POST",
        ":path": "/nip.v1.DefenseService/DefendStream",
        "content-type": "application/grpc",
        te: "trailers",
      };
      for (let i = 0; i < 500; i++) headers[`x-many-${i}`] = "v".repeat(64);
      const request = session.request(headers);
      request.on("error", () => {});
      request.on("data", () => {});
      request.end(new Uint8Array(5));
      await new Promise((resolve) => request.on("close", resolve));
      assert.equal(request.rstCode, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    } finally {
      session.close();
    }
    assert.equal((await client.defend(one)).verdicts.length, 1);
  });
});

Deno.test("health Check and Watch with undecodable bytes answer INVALID_ARGUMENT; health goes on", async () => {
  await withSidecar(baseConfig(), async (client) => {
    const check = await rawUnary(client, "/grpc.health.v1.Health/Check", GARBAGE);
    assert.equal(grpc.status[check!.code], "INVALID_ARGUMENT");
    assert.match(check!.details, /^request: not a valid protobuf message/);
    const watch = client.raw.makeServerStreamRequest(
      "/grpc.health.v1.Health/Watch",
      identity,
      identity,
      GARBAGE,
      new grpc.Metadata(),
      {},
    );
    watch.on("data", () => {});
    const watched = await new Promise<grpc.ServiceError>((resolve) => watch.on("error", resolve));
    assert.equal(grpc.status[watched.code], "INVALID_ARGUMENT");
    assert.equal(await rawUnary(client, "/grpc.health.v1.Health/Check", Buffer.alloc(0)), null);
  });
});

Deno.test("a Certify with a large n and a 256-example Defend do not hold health checks until they finish", async () => {
  await withSidecar(baseConfig(), async (client) => {
    const image = pipeline.test.images.slice(0, PIXELS);
    const many = Float32Array.from(
      { length: 256 * PIXELS },
      (_, i) => pipeline.test.images[i % (100 * PIXELS)],
    );
    const heavy: [string, () => Promise<unknown>][] = [
      ["Certify n 20,000", () => client.certify({ input: float32Input(image, [1, 28, 28, 1]), n: 20_000 })],
      ["Defend of 256", () => client.defend({ input: float32Input(many, [256, 28, 28, 1]) })],
    ];
    for (const [what, start] of heavy) {
      let settled = false;
      const call = start().finally(() => settled = true);
      // Health answers (three checks in a row) while the heavy call is still computing.
      for (let i = 0; i < 3; i++) {
        assert.equal(await rawUnary(client, "/grpc.health.v1.Health/Check", Buffer.alloc(0)), null);
      }
      assert.equal(settled, false, `${what} finished before health was answered`);
      await call;
    }
  });
});

Deno.test("50 streams cancelled right after writing are released: in-flight back to 0, shutdown ends them at once", async () => {
  const config = baseConfig();
  config.shutdownGraceMs = 60_000;
  let sidecar: Sidecar | undefined;
  const messages = await withSidecar(config, async (client, s) => {
    sidecar = s;
    await client.describe(); // a connected channel: the messages go out before the cancels
    for (let i = 0; i < 50; i++) {
      const call = (client.raw as Message).DefendStream() as grpc.ClientDuplexStream<Message, Message>;
      call.on("error", () => {});
      call.write({ id: String(i), request: one });
      call.cancel();
    }
    await waitFor(() => s.metrics.requests.get({ method: "DefendStream", code: "OK" }) === 50, "50 answers");
    await waitFor(() => s.inFlight === 0, "in-flight 0");
    assert.match(s.metrics.render(), /^nip_in_flight_calls 0$/m);
  });
  // The shutdown did not wait out the 60 s grace period for the streams the transport never closed.
  assert.equal(sidecar!.openStreams, 0);
  assert.ok(
    !messages.includes("grace period over; answering the calls in flight UNAVAILABLE"),
    messages.join(),
  );
  assert.ok(messages.includes("stopped"));
});

Deno.test("batched Classify calls keep their own deadlines: the short one fails, its neighbour is answered", async () => {
  const slow = await startOipServer({ model: pipeline.split.model, modelName: engine.name, delayMs: 800 });
  const config = oipConfig(slow.address);
  config.batching = { ...config.batching, enabled: true, maxBatchSize: 8, maxQueueDelayMicros: 200_000 };
  try {
    await withSidecar(config, async (client, sidecar) => {
      const short = client.classify(one, { timeoutMs: 500 });
      const long = client.classify(one, { timeoutMs: 20_000 });
      await assert.rejects(short, (e: grpc.ServiceError) => grpc.status[e.code] === "DEADLINE_EXCEEDED");
      assert.equal((await long).answers.length, 1);
      assert.equal(slow.receivedCalls, 1, "the two calls were not batched together");
      assert.equal(sidecar.metrics.batchSize.count({ op: "classify" }), 1);
    });
  } finally {
    await slow.close();
  }
});

Deno.test("shutdown with an upstream that never answers: the call gets UNAVAILABLE at the grace end, shutdown resolves", async () => {
  const hanging = await fakeOip(() => undefined);
  const config = oipConfig(hanging.address, 120_000);
  config.shutdownGraceMs = 1000;
  const before = tf.memory().numTensors;
  try {
    let stopped: Promise<void> | undefined;
    const messages = await withSidecar(config, async (client, sidecar) => {
      const call = client.classify(one, { timeoutMs: 120_000 });
      await waitFor(() => hanging.calls === 1, "the upstream call");
      const stream = (client.raw as Message).ClassifyStream() as grpc.ClientDuplexStream<Message, Message>;
      const streamed: Message[] = [];
      stream.on("data", (m: Message) => streamed.push(m));
      const streamStatus = new Promise<grpc.ServiceError>((resolve) => stream.on("error", resolve));
      stream.write({ id: "s", request: one });
      await waitFor(() => hanging.calls === 2, "the stream's upstream call");
      stopped = sidecar.shutdown();
      await assert.rejects(call, (e: grpc.ServiceError) => {
        assert.equal(grpc.status[e.code], "UNAVAILABLE");
        assert.match(e.details, /server is shutting down/);
        return true;
      });
      assert.equal(sidecar.metrics.requests.get({ method: "Classify", code: "UNAVAILABLE" }), 1);
      // The stream's message is answered UNAVAILABLE, then the stream ends with UNAVAILABLE.
      assert.equal(grpc.status[(await streamStatus).code], "UNAVAILABLE");
      assert.equal(streamed.length, 1);
      assert.equal(streamed[0].id, "s");
      assert.equal(grpc.status[streamed[0].error.code], "UNAVAILABLE");
      assert.equal(sidecar.metrics.requests.get({ method: "ClassifyStream", code: "UNAVAILABLE" }), 1);
    });
    await stopped;
    assert.ok(messages.includes("grace period over; answering the calls in flight UNAVAILABLE"));
    assert.ok(messages.includes("stopped"));
  } finally {
    hanging.close();
  }
  assert.equal(tf.memory().numTensors, before);
});

for (
  const [what, answer, pattern] of [
    [
      "NaN",
      (r: OipInferRequest) => scoresAnswer(Number(r.inputs[0].shape[0]), CLASSES, (v) => v[3] = NaN),
      /answered NaN at scores\[3\] of example 0; scores must be finite/,
    ],
    [
      "Infinity",
      (r: OipInferRequest) =>
        scoresAnswer(Number(r.inputs[0].shape[0]), CLASSES, (v) => v[CLASSES] = Infinity),
      /answered Infinity at scores\[0\] of example 1/,
    ],
    [
      "the wrong class count",
      (r: OipInferRequest) => scoresAnswer(Number(r.inputs[0].shape[0]), CLASSES - 3),
      new RegExp(`answered ${CLASSES - 3} scores for example 0; the model has ${CLASSES} classes`),
    ],
  ] as const
) {
  Deno.test(`an upstream answering ${what} is an INTERNAL upstream error`, async () => {
    const bad = await fakeOip(answer);
    try {
      await withSidecar(oipConfig(bad.address), async (client, sidecar) => {
        const two = { input: float32Input(pipeline.test.images.slice(0, 2 * PIXELS), [2, 28, 28, 1]) };
        await assert.rejects(client.classify(two), (e: grpc.ServiceError) => {
          assert.equal(grpc.status[e.code], "INTERNAL");
          assert.match(e.details, new RegExp(`^upstream oip://${bad.address}/\\S+ ${pattern.source}`));
          return true;
        });
        assert.equal(sidecar.metrics.upstreamErrors.get({ code: "INTERNAL" }), 1);
        assert.equal(sidecar.metrics.requests.get({ method: "Classify", code: "INTERNAL" }), 1);
      });
    } finally {
      bad.close();
    }
  });
}

/** The value of an unlabelled series in a scrape. */
function gauge(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  assert.ok(m, `${name} missing from the scrape`);
  return Number(m[1]);
}

Deno.test("a scrape while calls wait reads the live in-flight and queue gauges; tensor and loop-lag gauges", async () => {
  const slow = await startOipServer({ model: pipeline.split.model, modelName: engine.name, delayMs: 300 });
  const config = oipConfig(slow.address);
  config.metricsBind = "127.0.0.1:0";
  config.batching = { ...config.batching, enabled: true, maxBatchSize: 64, maxQueueDelayMicros: 4_000_000 };
  try {
    await withSidecar(config, async (client, sidecar) => {
      const scrape = async () =>
        await (await fetch(`http://127.0.0.1:${sidecar.metricsPort}/metrics`)).text();
      const unary = [0, 1, 2].map(() => client.classify(one, { timeoutMs: 20_000 }));
      const messages = ["s1", "s2"].map((id) => ({ id, request: one }));
      const streamed = client.stream("ClassifyStream", messages);
      // Awaited below; a failed assertion meanwhile must not leave them unhandled.
      for (const call of [...unary, streamed]) call.catch(() => {});
      let text = await scrape();
      const until = Date.now() + 10_000;
      while (gauge(text, "nip_queue_depth") < 5 && Date.now() < until) text = await scrape();
      assert.equal(gauge(text, "nip_queue_depth"), 5);
      assert.equal(gauge(text, "nip_in_flight_calls"), 5);
      assert.equal(gauge(text, "nip_open_streams"), 1);
      await Promise.all(unary);
      assert.equal((await streamed).length, 2);
      const after = await scrape();
      assert.equal(gauge(after, "nip_in_flight_calls"), 0);
      assert.equal(gauge(after, "nip_tensors"), tf.memory().numTensors);
      assert.equal(gauge(after, "nip_tensor_bytes"), tf.memory().numBytes);
      // The loop-lag sampler ran all along (a timer every 20 ms over the 300 ms upstream delay).
      assert.ok(gauge(after, "nip_event_loop_lag_seconds_count") >= 5);
      assert.ok(gauge(after, "nip_event_loop_lag_max_seconds") >= 0);
    });
  } finally {
    await slow.close();
  }
});
