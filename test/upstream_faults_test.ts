/**
 * Classify against loopback fake upstreams that fail in each way a real one can: down, slow beyond the
 * deadline, answering garbage (bad protobuf, bad JSON), resetting the connection mid-call, answering NaN,
 * infinite or too few scores. Each gives the status of docs/SERVER.md's table with a message naming the
 * upstream (a malformed answer: INTERNAL, like the upstream answers the OIP client already refuses), and the
 * sidecar keeps serving other calls, during the failing call and after it.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import * as tf from "@tensorflow/tfjs";
import { Buffer } from "node:buffer";
import { loadPipeline } from "../src/pipeline.ts";
import { DefenseClient, float32Input } from "../src/server/client.ts";
import { defaultConfig, type SidecarConfig } from "../src/server/config.ts";
import { ServingEngine } from "../src/server/engine.ts";
import { createLogger } from "../src/server/log.ts";
import { startSidecar } from "../src/server/server.ts";
import { createUpstream } from "../src/server/upstream_factory.ts";
import { float32ToLeBytes, type OipInferRequest, oipService } from "../src/upstream/oip_proto.ts";

const pipeline = await loadPipeline({ modelDir: "models/fashion-lenet", defenses: ["nip"] });
const engine = new ServingEngine(pipeline);
const quiet = createLogger("error", () => {});
const values = Float32Array.from({ length: 2 * 784 }, (_, i) => ((i * 7919) % 1000) / 1000);
const request = { input: float32Input(values, [2, 28, 28, 1]) };

/** Starts a sidecar whose upstream is `upstream`, runs `body`, checks it still serves, shuts down. */
async function withSidecar(
  upstream: Partial<SidecarConfig["upstream"]>,
  body: (client: DefenseClient) => Promise<void>,
) {
  const config = defaultConfig();
  config.bind = "127.0.0.1:0";
  config.metricsBind = "";
  config.upstream = { ...config.upstream, timeoutMs: 2000, retries: 1, model: "fashion-lenet", ...upstream };
  const before = tf.memory().numTensors;
  const up = createUpstream(config, engine.name, quiet);
  const sidecar = await startSidecar({ config, engines: [engine], upstream: up, logger: quiet });
  const client = new DefenseClient(`127.0.0.1:${sidecar.port}`);
  try {
    await body(client);
    // The failure stayed with its call: the sidecar still defends and describes.
    assert.equal((await client.defend(request)).verdicts.length, 2);
    assert.equal((await client.describe({})).modelInfo.name, "fashion-lenet");
  } finally {
    client.close();
    await sidecar.shutdown();
  }
  assert.equal(tf.memory().numTensors, before);
}

/** Classify fails with `code`, a message matching `pattern`, while a Defend sent alongside succeeds. */
async function classifyFails(client: DefenseClient, code: grpc.status, pattern: RegExp, timeoutMs = 10_000) {
  const [classify, defend] = await Promise.allSettled([
    client.classify(request, { timeoutMs }),
    client.defend(request),
  ]);
  assert.equal(defend.status, "fulfilled", "a Defend alongside the failing Classify succeeds");
  assert.equal(classify.status, "rejected", "Classify must not answer OK");
  const error = (classify as PromiseRejectedResult).reason as grpc.ServiceError;
  assert.equal(grpc.status[error.code], grpc.status[code], error.details);
  assert.match(error.details, pattern);
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

type InferHandler = (request: OipInferRequest, answer: grpc.sendUnaryData<unknown>) => void;

/** A fake OIP server whose ModelInfer is `handler`; `raw`: answers are sent as given bytes (no protobuf). */
async function fakeOip(handler: InferHandler, raw = false): Promise<{ address: string; close: () => void }> {
  const { definition } = oipService();
  const service = raw
    ? {
      ...definition,
      ModelInfer: { ...definition.ModelInfer, responseSerialize: (x: Uint8Array) => Buffer.from(x) },
    }
    : definition;
  const server = new grpc.Server();
  server.addService(service, {
    ModelInfer: (
      call: grpc.ServerUnaryCall<OipInferRequest, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) => handler(call.request, callback),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (e, p) => e ? reject(e) : resolve(p),
    )
  );
  return { address: `127.0.0.1:${port}`, close: () => server.forceShutdown() };
}

/** An OIP answer of `classes` scores per example, all equal to `value`. */
function scores(request: OipInferRequest, classes: number, value: number) {
  const n = Number(request.inputs[0].shape[0]);
  return {
    modelName: "fashion-lenet",
    outputs: [{ name: "output", datatype: "FP32", shape: [n, classes] }],
    rawOutputContents: [float32ToLeBytes(new Float32Array(n * classes).fill(value))],
  };
}

/** A TCP server that reads what a client sends, then closes the connection (a reset mid-call). */
function resettingServer(): { port: number; close: () => void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of listener) {
      conn.read(new Uint8Array(65536)).catch(() => null).finally(() => conn.close());
    }
  })().catch(() => {});
  return { port: (listener.addr as Deno.NetAddr).port, close: () => listener.close() };
}

const httpUpstream = (port: number) => ({
  kind: "http" as const,
  url: `http://127.0.0.1:${port}/predict`,
  bodyTemplate: '{"instances": [{"tensor": {{tensor}}}]}',
  answerPath: "$.predictions[0]",
});

Deno.test("OIP upstream down: UNAVAILABLE naming the upstream", async () => {
  await withSidecar({ kind: "oip", address: `127.0.0.1:${freePort()}` }, async (client) => {
    await classifyFails(client, grpc.status.UNAVAILABLE, /upstream oip:\/\/127\.0\.0\.1:\d+\/fashion-lenet/);
  });
});

Deno.test("HTTP upstream down: UNAVAILABLE", async () => {
  await withSidecar(httpUpstream(freePort()), async (client) => {
    await classifyFails(client, grpc.status.UNAVAILABLE, /127\.0\.0\.1/);
  });
});

Deno.test("OIP upstream slower than its timeout: DEADLINE_EXCEEDED", async () => {
  const timers: ReturnType<typeof setTimeout>[] = [];
  const slow = await fakeOip((r, answer) =>
    timers.push(setTimeout(() => answer(null, scores(r, 10, 0.1)), 1500))
  );
  try {
    await withSidecar({ kind: "oip", address: slow.address, timeoutMs: 300, retries: 0 }, async (client) => {
      await classifyFails(client, grpc.status.DEADLINE_EXCEEDED, /did not answer within/);
    });
  } finally {
    timers.forEach(clearTimeout);
    slow.close();
  }
});

Deno.test("HTTP upstream slower than its timeout: DEADLINE_EXCEEDED", async () => {
  const api = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.text();
    await new Promise((r) => setTimeout(r, 1500));
    return Response.json({ predictions: [[0.1]] });
  });
  try {
    await withSidecar({ ...httpUpstream(api.addr.port), timeoutMs: 300, retries: 0 }, async (client) => {
      await classifyFails(client, grpc.status.DEADLINE_EXCEEDED, /.+/);
    });
  } finally {
    await api.shutdown();
  }
});

Deno.test("OIP upstream answering bytes that are not a ModelInferResponse: INTERNAL naming the upstream", async () => {
  const garbage = await fakeOip(
    (_r, answer) => answer(null, Uint8Array.from([0xff, 0xff, 0xff, 0x0f, 0x0a, 0x99])),
    true,
  );
  try {
    await withSidecar({ kind: "oip", address: garbage.address }, async (client) => {
      await classifyFails(client, grpc.status.INTERNAL, /upstream oip:\/\/127\.0\.0\.1:\d+\/fashion-lenet/);
    });
  } finally {
    garbage.close();
  }
});

Deno.test("HTTP upstream answering text that is not JSON: INTERNAL", async () => {
  const api = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.text();
    return new Response('{"predictions": [0.1, ', { headers: { "content-type": "application/json" } });
  });
  try {
    await withSidecar(httpUpstream(api.addr.port), async (client) => {
      await classifyFails(client, grpc.status.INTERNAL, /JSON|json/);
    });
  } finally {
    await api.shutdown();
  }
});

Deno.test("upstream resetting the connection mid-call: UNAVAILABLE (OIP and HTTP)", async () => {
  const reset = resettingServer();
  try {
    await withSidecar({ kind: "oip", address: `127.0.0.1:${reset.port}` }, async (client) => {
      await classifyFails(client, grpc.status.UNAVAILABLE, /upstream oip:/);
    });
    await withSidecar(httpUpstream(reset.port), async (client) => {
      await classifyFails(client, grpc.status.UNAVAILABLE, /127\.0\.0\.1/);
    });
  } finally {
    reset.close();
  }
});

for (
  const [name, classes, value] of [["NaN scores", 10, NaN], ["infinite scores", 10, Infinity], [
    "3 scores for 10 classes",
    3,
    0.3,
  ]] as const
) {
  Deno.test(`OIP upstream answering ${name}: INTERNAL naming the upstream, not OK`, async () => {
    const bad = await fakeOip((r, answer) => answer(null, scores(r, classes, value)));
    try {
      await withSidecar({ kind: "oip", address: bad.address }, async (client) => {
        await classifyFails(client, grpc.status.INTERNAL, /upstream oip:\/\/127\.0\.0\.1:\d+\/fashion-lenet/);
      });
    } finally {
      bad.close();
    }
  });
}

Deno.test("HTTP upstream answering infinite scores (1e999 in JSON): INTERNAL, not OK", async () => {
  const api = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.text();
    return new Response('{"predictions": [[1e999, 0, 0, 0, 0, 0, 0, 0, 0, 0]]}', {
      headers: { "content-type": "application/json" },
    });
  });
  try {
    await withSidecar(httpUpstream(api.addr.port), async (client) => {
      await classifyFails(client, grpc.status.INTERNAL, /.+/);
    });
  } finally {
    await api.shutdown();
  }
});
