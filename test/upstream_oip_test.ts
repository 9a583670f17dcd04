import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { status } from "@grpc/grpc-js";
import { initBackend } from "../src/engine/backend.ts";
import { createLeNet } from "../src/models/lenet.ts";
import { loadFashionMnist } from "../src/data/fashion_mnist.ts";
import { OipUpstream } from "../src/upstream/oip_client.ts";
import { startOipServer } from "../src/upstream/oip_server.ts";
import { float32ToLeBytes, leBytesToFloat32 } from "../src/upstream/oip_proto.ts";
import { UpstreamError } from "../src/upstream/types.ts";

await initBackend("wasm");
const fashion = await loadFashionMnist();
const model = createLeNet({ seed: 3 });
const PIXELS = 28 * 28;
const rows = fashion.images.slice(0, 5 * PIXELS);

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test("OIP ModelInfer over loopback returns the served model's own scores", async () => {
  const server = await startOipServer({ model, modelName: "lenet" });
  const upstream = new OipUpstream({
    address: server.address,
    model: "lenet",
    inputName: "input",
    timeoutMs: 2000,
    retries: 0,
  });
  try {
    const before = tf.memory().numTensors;
    assert.equal(await upstream.modelReady(), true);
    const answers = await upstream.classify({ rows, n: 5, shape: [28, 28, 1], range: [0, 1] });
    const expected = tf.tidy(() =>
      (model.predict(tf.tensor4d(rows, [5, 28, 28, 1])) as tf.Tensor).arraySync() as number[][]
    );
    assert.equal(answers.length, 5);
    answers.forEach((a, i) => {
      assert.equal(a.scores.length, 10);
      a.scores.forEach((s, j) => assert.ok(Math.abs(s - expected[i][j]) < 1e-6));
      assert.equal(a.label, expected[i].indexOf(Math.max(...expected[i])));
    });
    assert.equal(server.inferCalls, 1);
    assert.equal(tf.memory().numTensors, before);
  } finally {
    upstream.close();
    await server.close();
  }
});

Deno.test("the upstream's own error is passed on with its status (unknown model -> NOT_FOUND)", async () => {
  const server = await startOipServer({ model, modelName: "lenet" });
  const upstream = new OipUpstream({
    address: server.address,
    model: "other",
    inputName: "input",
    timeoutMs: 2000,
    retries: 2,
  });
  try {
    assert.equal(await upstream.modelReady(), false);
    await assert.rejects(
      upstream.classify({ rows, n: 1, shape: [28, 28, 1], range: [0, 1] }),
      (e: unknown) =>
        e instanceof UpstreamError && e.code === status.NOT_FOUND && /unknown model "other"/.test(e.message),
    );
  } finally {
    upstream.close();
    await server.close();
  }
});

Deno.test("a down upstream answers UNAVAILABLE after the bounded retries", async () => {
  let retries = 0;
  const upstream = new OipUpstream({
    address: `127.0.0.1:${freePort()}`,
    model: "lenet",
    inputName: "input",
    timeoutMs: 1000,
    retries: 2,
    onRetry: () => retries++,
  });
  try {
    await assert.rejects(
      upstream.classify({ rows, n: 1, shape: [28, 28, 1], range: [0, 1] }),
      (e: unknown) =>
        e instanceof UpstreamError && e.code === status.UNAVAILABLE && /unavailable/.test(e.message),
    );
    assert.equal(retries, 2);
  } finally {
    upstream.close();
  }
});

Deno.test("a slow upstream answers DEADLINE_EXCEEDED within the timeout or the call's deadline", async () => {
  const server = await startOipServer({ model, modelName: "lenet", delayMs: 400 });
  const upstream = new OipUpstream({
    address: server.address,
    model: "lenet",
    inputName: "input",
    timeoutMs: 100,
    retries: 2,
  });
  const long = new OipUpstream({
    address: server.address,
    model: "lenet",
    inputName: "input",
    timeoutMs: 5000,
    retries: 0,
  });
  try {
    const t0 = performance.now();
    await assert.rejects(
      upstream.classify({ rows, n: 1, shape: [28, 28, 1], range: [0, 1] }),
      (e: unknown) => e instanceof UpstreamError && e.code === status.DEADLINE_EXCEEDED,
    );
    assert.ok(performance.now() - t0 < 350, "deadline errors are not retried");
    await assert.rejects(
      long.classify({ rows, n: 1, shape: [28, 28, 1], range: [0, 1], deadline: Date.now() + 150 }),
      (e: unknown) => e instanceof UpstreamError && e.code === status.DEADLINE_EXCEEDED,
    );
    await assert.rejects(
      long.classify({ rows, n: 1, shape: [28, 28, 1], range: [0, 1], deadline: Date.now() - 1 }),
      /deadline passed/,
    );
  } finally {
    upstream.close();
    long.close();
    await new Promise((r) => setTimeout(r, 450));
    await server.close();
  }
});

Deno.test("raw contents are little-endian float32", () => {
  const values = Float32Array.from([1.5, -2, 3.25e-7, 0]);
  const bytes = float32ToLeBytes(values);
  assert.deepEqual(Array.from(bytes.subarray(0, 4)), [0, 0, 0xc0, 0x3f]);
  assert.deepEqual(leBytesToFloat32(bytes), values);
  assert.throws(() => leBytesToFloat32(new Uint8Array(3)), /multiple of 4/);
});
