/**
 * Classify through each kind of upstream over loopback, and the statuses a client sees when the upstream
 * is missing, down or slow, or the batch queue is full; each failure is followed by a call that succeeds.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { decodeImage } from "../src/image/codec.ts";
import { imageToInput } from "../src/image/resize.ts";
import { defaultConfig, type SidecarConfig } from "../src/server/config.ts";
import { DefenseClient, float32Input } from "../src/server/client.ts";
import { trainDemoPipeline } from "../src/server/demo_pipeline.ts";
import { ServingEngine } from "../src/server/engine.ts";
import { createLogger } from "../src/server/log.ts";
import { type Sidecar, startSidecar } from "../src/server/server.ts";
import { createUpstream } from "../src/server/upstream_factory.ts";
import { startOipServer } from "../src/upstream/oip_server.ts";

await initBackend("wasm");
const pipeline = await trainDemoPipeline({ seed: 2 });
const engine = new ServingEngine(pipeline);
const PIXELS = 28 * 28;
const x = pipeline.test.images.slice(0, 2 * PIXELS);
const request = { input: float32Input(x, [2, 28, 28, 1]) };
const quiet = createLogger("error", () => {});

function baseConfig(): SidecarConfig {
  const c = defaultConfig();
  c.bind = "127.0.0.1:0";
  c.metricsBind = "";
  return c;
}

async function withSidecar(
  config: SidecarConfig,
  body: (client: DefenseClient, sidecar: Sidecar) => Promise<void>,
) {
  const upstream = createUpstream(config, engine.name, quiet);
  const sidecar = await startSidecar({ config, engines: [engine], upstream, logger: quiet });
  const client = new DefenseClient(`127.0.0.1:${sidecar.port}`);
  try {
    await body(client, sidecar);
  } finally {
    client.close();
    await sidecar.shutdown();
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

const rejectsWith = (call: Promise<unknown>, code: grpc.status, pattern: RegExp) =>
  assert.rejects(call, (e: grpc.ServiceError) => {
    assert.equal(grpc.status[e.code], grpc.status[code], e.details);
    assert.match(e.details, pattern);
    return true;
  });

Deno.test("no upstream: Classify is FAILED_PRECONDITION, Defend still works", async () => {
  await withSidecar(baseConfig(), async (client) => {
    await rejectsWith(client.classify(request), grpc.status.FAILED_PRECONDITION, /needs an upstream/);
    assert.equal((await client.defend(request)).verdicts.length, 2);
  });
});

Deno.test("OIP upstream down -> UNAVAILABLE; slow -> DEADLINE_EXCEEDED from the client's deadline", async () => {
  const config = baseConfig();
  config.upstream = {
    ...config.upstream,
    kind: "oip",
    address: `127.0.0.1:${freePort()}`,
    timeoutMs: 5000,
    retries: 1,
  };
  await withSidecar(config, async (client, sidecar) => {
    await rejectsWith(
      client.classify(request),
      grpc.status.UNAVAILABLE,
      /upstream oip:\/\/127\.0\.0\.1:\d+\/fashion-lenet is unavailable/,
    );
    assert.equal(sidecar.metrics.upstreamErrors.get({ code: "UNAVAILABLE" }), 1);
    assert.equal((await client.defend(request)).verdicts.length, 2);
  });
  const slow = await startOipServer({
    model: pipeline.split.model,
    modelName: "fashion-lenet",
    delayMs: 600,
  });
  config.upstream.address = slow.address;
  try {
    await withSidecar(config, async (client) => {
      const t0 = performance.now();
      await rejectsWith(client.classify(request, { timeoutMs: 250 }), grpc.status.DEADLINE_EXCEEDED, /.*/);
      assert.ok(performance.now() - t0 < 550);
      // With enough time the same upstream answers.
      const ok = await client.classify(request, { timeoutMs: 5000 });
      assert.equal(ok.answers.length, 2);
    });
  } finally {
    await slow.close();
  }
});

Deno.test("HTTP JSON upstream: Classify sends the defended image and returns the picked answer", async () => {
  let seen = 0;
  const api = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const body = await req.json();
    seen++;
    const row = imageToInput(
      decodeImage(Uint8Array.from(atob(body.instances[0].b64), (c) => c.charCodeAt(0))),
      [28, 28, 1],
      [0, 1],
    );
    const label = tf.tidy(() =>
      (pipeline.split.model.predict(tf.tensor4d(row, [1, 28, 28, 1])) as tf.Tensor).argMax(-1).dataSync()[0]
    );
    return Response.json({ predictions: [{ class_id: label, name: `class-${label}` }] });
  });
  const config = baseConfig();
  config.upstream = {
    ...config.upstream,
    kind: "http",
    url: `http://127.0.0.1:${api.addr.port}/v1/models/vision:predict`,
    bodyTemplate: '{"instances": [{"b64": "{{image_base64}}"}]}',
    answerPath: "$.predictions[0].class_id",
    timeoutMs: 2000,
    retries: 0,
  };
  try {
    await withSidecar(config, async (client) => {
      const r = await client.classify({ ...request, outputFormat: "OUTPUT_FORMAT_PNG" });
      assert.equal(seen, 2);
      assert.equal(r.answers.length, 2);
      r.answers.forEach((a: { label: number; json: string }, i: number) => {
        assert.equal(a.json, String(a.label));
        // The upstream classified the defended image that the sidecar also returned.
        const row = imageToInput(decodeImage(r.defended.images[i].data), [28, 28, 1], [0, 1]);
        const local = tf.tidy(() =>
          (pipeline.split.model.predict(tf.tensor4d(row, [1, 28, 28, 1])) as tf.Tensor).argMax(-1)
            .dataSync()[0]
        );
        assert.equal(a.label, local);
      });
      assert.match(r.upstream, /^POST http:\/\/127\.0\.0\.1:\d+\/v1\/models\/vision:predict$/);
    });
  } finally {
    await api.shutdown();
  }
});

Deno.test("a full batch queue answers RESOURCE_EXHAUSTED; accepted calls complete", async () => {
  const config = baseConfig();
  config.batching = { enabled: true, maxBatchSize: 4, maxQueueDelayMicros: 50_000, maxQueueSize: 3 };
  await withSidecar(config, async (client) => {
    const one = { input: float32Input(x.subarray(0, PIXELS), [28, 28, 1]) };
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => client.defend(one)));
    const rejected = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
    assert.ok(rejected.length > 0, "some calls are refused");
    for (const r of rejected) {
      assert.equal(r.reason.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.match(r.reason.details, /queue is full \(3 waiting\)/);
    }
    assert.ok(results.some((r) => r.status === "fulfilled"));
    assert.equal((await client.defend(one)).verdicts.length, 1);
  });
});
