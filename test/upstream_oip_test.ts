import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { status } from "@grpc/grpc-js";
import { initBackend } from "../src/engine/backend.ts";
import { createLeNet } from "../src/models/lenet.ts";
import { loadFashionMnist } from "../src/data/fashion_mnist.ts";
import { OipUpstream, type OipUpstreamOptions } from "../src/upstream/oip_client.ts";
import { startOipServer } from "../src/upstream/oip_server.ts";
import {
  decodeBytesElements,
  encodeBytesElements,
  float32ToLeBytes,
  leBytesToFloat32,
} from "../src/upstream/oip_proto.ts";
import { loadLayersModel } from "../src/engine/model_io.ts";
import { FEATURE_RANGE, FEATURE_SHAPE } from "../audio/config.ts";
import { SPEAKER_MODEL_DIR } from "../src/speaker_pipeline.ts";
import { wavRequestToInput } from "../audio/request.ts";
import { UpstreamError } from "../src/upstream/types.ts";
import { fsddTrainDir } from "../src/data/shared_data.ts";

await initBackend("wasm");
const fashion = await loadFashionMnist();
const model = createLeNet({ seed: 3 });
const PIXELS = 28 * 28;
const rows = fashion.images.slice(0, 5 * PIXELS);

/** An OIP client of the "lenet" model at `address`; `options` override the defaults. */
function lenetUpstream(address: string, options: Partial<OipUpstreamOptions> = {}): OipUpstream {
  return new OipUpstream({
    address,
    model: "lenet",
    inputName: "input",
    timeoutMs: 2000,
    retries: 0,
    ...options,
  });
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test("OIP ModelInfer over loopback returns the served model's own scores", async () => {
  const server = await startOipServer({ model, modelName: "lenet" });
  const upstream = lenetUpstream(server.address);
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
  const upstream = lenetUpstream(server.address, { model: "other", retries: 2 });
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
  const upstream = lenetUpstream(`127.0.0.1:${freePort()}`, {
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
  const upstream = lenetUpstream(server.address, { timeoutMs: 100, retries: 2 });
  const long = lenetUpstream(server.address, { timeoutMs: 5000 });
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

Deno.test("a connection idle for idleCloseMs is closed and the next call opens a new one", async () => {
  const server = await startOipServer({ model, modelName: "lenet" });
  const upstream = lenetUpstream(server.address, { idleCloseMs: 50 });
  const call = () =>
    upstream.classify({ rows: rows.subarray(0, PIXELS), n: 1, shape: [28, 28, 1], range: [0, 1] });
  try {
    assert.equal(upstream.connected, false);
    await Promise.all([call(), call()]);
    await call();
    assert.equal(upstream.connected, true);
    assert.equal(upstream.connectionsOpened, 1, "calls within the idle time share one connection");
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(upstream.connected, false);
    await call();
    assert.equal(upstream.connectionsOpened, 2);
    assert.equal(server.inferCalls, 4);
  } finally {
    upstream.close();
    await server.close();
  }
});

Deno.test("an OIP server shutting down after a client's call does not kill the idle client's process", async () => {
  // Eight clients, each in its own process with the default idle close, each of its own server that shuts
  // down 400 ms after the call. With the connection left open (idleCloseMs 1e9) this test failed 3 runs of 3,
  // a client dead of Deno's nghttp2 abort (SIGABRT or SIGSEGV, denoland/deno#36788).
  const tries = await Promise.all(Array.from({ length: 8 }, async () => {
    const server = await startOipServer({ model, modelName: "lenet" });
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("./fixtures/oip/idle_client.ts", import.meta.url).pathname, server.address],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("called")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    await new Promise((r) => setTimeout(r, 400));
    await server.close();
    await reader.cancel();
    const { code, signal } = await child.status;
    const stderr = await new Response(child.stderr).text();
    return { out, code, signal, stderr };
  }));
  for (const t of tries) {
    assert.match(t.out, /called/);
    assert.equal(t.code, 0, `client exited ${t.code} (${t.signal}): ${t.stderr.slice(-300)}`);
  }
});

Deno.test("raw contents are little-endian float32", () => {
  const values = Float32Array.from([1.5, -2, 3.25e-7, 0]);
  const bytes = float32ToLeBytes(values);
  assert.deepEqual(Array.from(bytes.subarray(0, 4)), [0, 0, 0xc0, 0x3f]);
  assert.deepEqual(leBytesToFloat32(bytes), values);
  assert.throws(() => leBytesToFloat32(new Uint8Array(3)), /multiple of 4/);
});

Deno.test("raw BYTES elements round-trip and a bad length is caught", () => {
  const elements = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array([9])];
  const raw = encodeBytesElements(elements);
  assert.equal(raw.length, 4 * 3 + 4);
  assert.deepEqual(decodeBytesElements(raw), elements);
  assert.throws(() => decodeBytesElements(raw.subarray(0, 6)), /3 bytes declared, 2 left/);
});

Deno.test("the wav payload sends one BYTES element per WAV and reads the WAV-reading model's scores", async () => {
  const speaker = await loadLayersModel(SPEAKER_MODEL_DIR);
  const FSDD = fsddTrainDir();
  const wavs = await Promise.all(
    ["3_theo_12.wav", "0_george_10.wav", "7_yweweler_33.wav"].map((f) => Deno.readFile(`${FSDD}/${f}`)),
  );
  const received: number[] = [];
  const server = await startOipServer({
    model: speaker,
    modelName: "speaker",
    bytesInput: (wav) => {
      received.push(wav.length);
      return wavRequestToInput(wav).features;
    },
  });
  const upstream = lenetUpstream(server.address, { model: "speaker", payload: "wav" });
  const fp32 = lenetUpstream(server.address, { model: "speaker" });
  const features = wavs.map((w) => wavRequestToInput(w).features);
  const rows = new Float32Array(features.reduce((s, f) => s + f.length, 0));
  features.forEach((f, i) => rows.set(f, i * f.length));
  const request = {
    rows,
    n: 3,
    shape: [...FEATURE_SHAPE] as [number, number, number],
    range: [...FEATURE_RANGE] as [number, number],
  };
  try {
    assert.equal(upstream.payload, "wav");
    assert.match(upstream.description, /^oip\+wav:\/\/127\.0\.0\.1:\d+\/speaker$/);
    const answers = await upstream.classify({ ...request, wavs });
    assert.deepEqual(received, wavs.map((w) => w.length));
    assert.equal(server.inferCalls, 1);
    const expected = tf.tidy(() =>
      (speaker.predict(tf.tensor4d(rows, [3, ...FEATURE_SHAPE])) as tf.Tensor).arraySync() as number[][]
    );
    answers.forEach((a, i) => {
      a.scores.forEach((s, j) => assert.ok(Math.abs(s - expected[i][j]) < 1e-5));
      assert.equal(a.label, expected[i].indexOf(Math.max(...expected[i])));
    });
    // No WAVs in the request: refused before the call. Bytes that are not a WAV: the server's INVALID_ARGUMENT.
    await assert.rejects(upstream.classify(request), /takes one WAV per example; the request has 0 for 3/);
    await assert.rejects(
      upstream.classify({ ...request, n: 1, rows: features[0], wavs: [new TextEncoder().encode("no wav")] }),
      (e: unknown) =>
        e instanceof UpstreamError && e.code === status.INVALID_ARGUMENT && /RIFF/.test(e.message) &&
        !e.retryable,
    );
    // The FP32 payload to a BYTES model is refused by the server, naming the datatype.
    await assert.rejects(
      fp32.classify(request),
      (e: unknown) => e instanceof UpstreamError && /input datatype FP32, expected BYTES/.test(e.message),
    );
  } finally {
    upstream.close();
    fp32.close();
    await server.close();
    speaker.dispose();
  }
});
