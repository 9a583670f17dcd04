import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import * as tf from "@tensorflow/tfjs";
import { Buffer } from "node:buffer";
import { loadPipeline, type PipelineOptions } from "../src/pipeline.ts";
import { DefenseClient, float32Input } from "../src/server/client.ts";
import { defaultConfig } from "../src/server/config.ts";
import { ServingEngine } from "../src/server/engine.ts";
import { toStatus } from "../src/server/errors.ts";
import { createLogger } from "../src/server/log.ts";
import { type Sidecar, startSidecar } from "../src/server/server.ts";
import { ComputeWorkerError, WorkerEngine } from "../src/server/worker_engine.ts";

const OPTIONS: PipelineOptions = { modelDir: "models/fashion-lenet", defenses: "auto" };

/** Inputs the model sees in its range, seeded so both engines get the same. */
function rows(n: number, size: number): Float32Array {
  let state = 7;
  return new Float32Array(n * size).map(() => (state = (state * 16807) % 2147483647) / 2147483647);
}

Deno.test("WorkerEngine answers as the in-process engine: verdicts, defended inputs, detection, Describe", async () => {
  const worker = await WorkerEngine.start(OPTIONS);
  const local = new ServingEngine(await loadPipeline(OPTIONS));
  try {
    assert.equal(worker.name, "fashion-lenet");
    assert.deepEqual(worker.inputShape, local.inputShape);
    assert.deepEqual(worker.describe(), local.describe());
    assert.deepEqual(worker.detectors, local.detectors);
    assert.deepEqual(worker.policy, local.policy);
    assert.deepEqual(worker.certifierSettings, local.certifierSettings);
    const n = 40; // more than one compute slice
    const x = rows(n, local.exampleSize);
    const [remote, here] = [await worker.defend(x, n), await local.defend(x, n)];
    assert.deepEqual(remote.labelsBefore, here.labelsBefore);
    assert.deepEqual(remote.labelsAfter, here.labelsAfter);
    assert.deepEqual(remote.candidateIndex, here.candidateIndex);
    assert.equal(remote.defended.length, n * local.exampleSize);
    assert.ok(remote.defended.every((v, i) => Math.abs(v - here.defended[i]) < 1e-6));
    assert.ok(remote.detection && here.detection);
    // A detector draws fresh noise per slice (seeded at random), so the p-values agree in kind, not bit for bit.
    assert.deepEqual(Object.keys(remote.detection.pValues), Object.keys(here.detection.pValues));
    assert.equal(remote.detection.pValue.length, n);
    assert.ok(remote.detection.pValue.every((v) => v > 0 && v <= 1));
    const [p, q] = [await worker.predict(x, n), await local.predict(x, n)];
    assert.deepEqual(p.labels, q.labels);
    assert.deepEqual(p.scores, q.scores);
    // The rows sent are a copy: the caller's array is still usable after the call.
    assert.equal(x.length, n * local.exampleSize);
  } finally {
    worker.dispose();
    local.dispose();
  }
});

Deno.test("WorkerEngine: a failing call rejects with its error and the next call is answered; tensors back to the baseline", async () => {
  const worker = await WorkerEngine.start(OPTIONS);
  try {
    const baseline = worker.ownTensors().numTensors;
    assert.ok(baseline > 0, "the worker holds the model's weights");
    await assert.rejects(worker.defend(new Float32Array(10), 3), /should have 2352 values but has 10/);
    const answer = await worker.predict(rows(5, worker.exampleSize), 5);
    assert.equal(answer.labels.length, 5);
    await worker.defend(rows(20, worker.exampleSize), 20);
    assert.equal(worker.ownTensors().numTensors, baseline);
  } finally {
    worker.dispose();
  }
});

Deno.test("WorkerEngine.start fails with the loader's error; a disposed engine's calls are UNAVAILABLE", async () => {
  await assert.rejects(
    WorkerEngine.start({ modelDir: "models/no-such-model" }),
    (error: Error) =>
      error.name === "ModelFileError" && /models\/no-such-model\/model.json/.test(error.message),
  );
  const worker = await WorkerEngine.start(OPTIONS);
  const running = worker.defend(rows(64, worker.exampleSize), 64);
  worker.dispose();
  await assert.rejects(running, ComputeWorkerError);
  const error = await worker.predict(rows(1, worker.exampleSize), 1).catch((e) => e);
  assert.ok(error instanceof ComputeWorkerError);
  assert.equal(toStatus(error).code, grpc.status.UNAVAILABLE);
});

/** A sidecar on free loopback ports over `engine`, with a client; `body` runs, then all is closed. */
async function withSidecar(
  engine: WorkerEngine,
  body: (client: DefenseClient, sidecar: Sidecar) => Promise<void>,
): Promise<void> {
  const config = defaultConfig();
  config.bind = "127.0.0.1:0";
  config.metricsBind = "127.0.0.1:0";
  const sidecar = await startSidecar({ config, engines: [engine], logger: createLogger("error", () => {}) });
  const client = new DefenseClient(`127.0.0.1:${sidecar.port}`);
  try {
    await body(client, sidecar);
  } finally {
    client.close();
    await sidecar.shutdown();
    engine.dispose();
  }
}

Deno.test("a sidecar over a WorkerEngine answers Defend over gRPC and exports the worker's tensors", async () => {
  const engine = await WorkerEngine.start(OPTIONS);
  await withSidecar(engine, async (client, sidecar) => {
    const answer = await client.defend({ input: float32Input(rows(3, 784), [3, 28, 28, 1]) });
    assert.equal(answer.verdicts.length, 3);
    const metrics = await (await fetch(`http://127.0.0.1:${sidecar.metricsPort}/metrics`)).text();
    const exported = Number(/^nip_tensors (\d+)$/m.exec(metrics)?.[1]);
    assert.equal(exported, tf.engine().state.numTensors + engine.ownTensors().numTensors);
  });
});

/** The health status byte of `grpc.health.v1.HealthCheckResponse` (1 SERVING, 2 NOT_SERVING). */
function healthStatus(client: DefenseClient): Promise<number> {
  return new Promise((resolve, reject) =>
    client.raw.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      (x: Uint8Array) => Buffer.from(x),
      (x: Buffer) => x,
      new Uint8Array(0),
      (error, answer) => error ? reject(error) : resolve(answer![1]),
    )
  );
}

Deno.test("a compute worker that dies fails its call and later ones UNAVAILABLE, and health turns NOT_SERVING", async () => {
  const failing = new URL("./fixtures/failing_compute_worker.ts", import.meta.url).href;
  const engine = await WorkerEngine.start(OPTIONS, failing);
  await withSidecar(engine, async (client) => {
    assert.equal(await healthStatus(client), 1);
    const input = (n: number) => float32Input(rows(n, 784), [n, 28, 28, 1]);
    assert.equal((await client.predict({ input: input(2) })).predictions.length, 2);
    for (const n of [13, 2]) {
      await assert.rejects(client.predict({ input: input(n) }), (e: grpc.ServiceError) => {
        assert.equal(e.code, grpc.status.UNAVAILABLE);
        assert.match(e.details, /compute worker of model fashion-lenet failed: .*fault outside any call/);
        return true;
      });
    }
    await engine.failure;
    assert.equal(await healthStatus(client), 2);
  });
});
