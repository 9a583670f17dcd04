import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { status } from "@grpc/grpc-js";
import { initBackend } from "../src/engine/backend.ts";
import { createLeNet } from "../src/models/lenet.ts";
import { loadFashionMnist } from "../src/data/fashion_mnist.ts";
import { decodeImage } from "../src/image/codec.ts";
import { imageToInput } from "../src/image/resize.ts";
import { fillTemplate, HttpJsonUpstream, pickJsonPath } from "../src/upstream/http_json.ts";
import { UpstreamError } from "../src/upstream/types.ts";
import { decodeWav } from "../audio/wav.ts";
import { pcm16Wav } from "./audio_fixture.ts";

await initBackend("wasm");
const fashion = await loadFashionMnist();
const model = createLeNet({ seed: 5 });
const PIXELS = 28 * 28;
const rows = fashion.images.slice(100 * PIXELS, 104 * PIXELS);
const request = {
  rows,
  n: 4,
  shape: [28, 28, 1] as [number, number, number],
  range: [0, 1] as [number, number],
};

/** A loopback "vision API": decodes the base64 image (or reads the tensor) and runs a real model. */
function startVisionApi(behaviour: { status?: number; delayMs?: number } = {}) {
  let hits = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    hits++;
    if (behaviour.delayMs) await new Promise((r) => setTimeout(r, behaviour.delayMs));
    if (behaviour.status) return new Response("overloaded", { status: behaviour.status });
    if (req.headers.get("authorization") !== "Bearer t0k3n") return new Response("no", { status: 401 });
    const body = await req.json();
    if (!body.image && !body.tensor) return new Response("need image or tensor", { status: 400 });
    const row = body.image
      ? imageToInput(decodeImage(Uint8Array.from(atob(body.image), (c) => c.charCodeAt(0))), [28, 28, 1], [
        0,
        1,
      ])
      : Float32Array.from(body.tensor as number[]);
    const scores = tf.tidy(() =>
      Array.from((model.predict(tf.tensor4d(row, [1, 28, 28, 1])) as tf.Tensor).dataSync())
    );
    return Response.json({
      predictions: [{ label: scores.indexOf(Math.max(...scores)), scores }],
      index: body.index,
    });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/v1/classify`,
    hits: () => hits,
    close: () => server.shutdown(),
  };
}

function expectedLabels(quantized: boolean): number[] {
  return tf.tidy(() => {
    let x = tf.tensor4d(rows, [4, 28, 28, 1]);
    if (quantized) x = x.mul(255).round().div(255);
    return Array.from((model.predict(x) as tf.Tensor).argMax(-1).dataSync());
  });
}

const headers = { authorization: "Bearer t0k3n" };

Deno.test("an image body (base64 PNG) and a label picked by path, over loopback HTTP", async () => {
  const api = startVisionApi();
  try {
    const upstream = new HttpJsonUpstream({
      url: api.url,
      headers,
      bodyTemplate: '{"image": "{{image_base64}}", "mime": "{{image_mime}}", "index": {{index}}}',
      answerPath: "$.predictions[0].label",
      timeoutMs: 2000,
      retries: 0,
    });
    const answers = await upstream.classify(request);
    assert.deepEqual(answers.map((a) => a.label), expectedLabels(true));
    assert.equal(api.hits(), 4);
  } finally {
    await api.close();
  }
});

Deno.test("a tensor body and a scores array picked by path give scores and their argmax", async () => {
  const api = startVisionApi();
  try {
    const upstream = new HttpJsonUpstream({
      url: api.url,
      headers,
      bodyTemplate: '{"tensor": {{tensor}}, "shape": {{shape}}}',
      answerPath: "predictions.0.scores",
      timeoutMs: 2000,
      retries: 0,
    });
    const answers = await upstream.classify(request);
    assert.deepEqual(answers.map((a) => a.label), expectedLabels(false));
    assert.equal(answers[0].scores.length, 10);
    assert.equal(JSON.parse(answers[0].json).length, 10);
  } finally {
    await api.close();
  }
});

Deno.test("HTTP errors map to gRPC statuses; only idempotent methods are retried", async () => {
  const busy = startVisionApi({ status: 503 });
  try {
    const post = new HttpJsonUpstream({
      url: busy.url,
      bodyTemplate: "{}",
      answerPath: "$.x",
      timeoutMs: 1000,
      retries: 2,
    });
    await assert.rejects(
      post.classify({ ...request, n: 1 }),
      (e: unknown) =>
        e instanceof UpstreamError && e.code === status.UNAVAILABLE && /HTTP 503/.test(e.message),
    );
    assert.equal(busy.hits(), 1);
    const put = new HttpJsonUpstream({
      url: busy.url,
      method: "PUT",
      bodyTemplate: "{}",
      answerPath: "$.x",
      timeoutMs: 1000,
      retries: 2,
    });
    await assert.rejects(
      put.classify({ ...request, n: 1 }),
      (e: unknown) => (e as UpstreamError).code === status.UNAVAILABLE,
    );
    assert.equal(busy.hits(), 4);
  } finally {
    await busy.close();
  }
  const api = startVisionApi();
  try {
    const noAuth = new HttpJsonUpstream({
      url: api.url,
      bodyTemplate: "{}",
      answerPath: "$.x",
      timeoutMs: 1000,
      retries: 0,
    });
    await assert.rejects(
      noAuth.classify({ ...request, n: 1 }),
      (e: unknown) => (e as UpstreamError).code === status.UNAUTHENTICATED,
    );
    const badPath = new HttpJsonUpstream({
      url: api.url,
      headers,
      bodyTemplate: '{"tensor": {{tensor}}}',
      answerPath: "$.predictions[3].label",
      timeoutMs: 1000,
      retries: 0,
    });
    await assert.rejects(
      badPath.classify({ ...request, n: 1 }),
      /cannot pick \$\.predictions\[3\]\.label.*no value at predictions.3/,
    );
  } finally {
    await api.close();
  }
});

Deno.test("slow upstream -> DEADLINE_EXCEEDED; down upstream -> UNAVAILABLE", async () => {
  const slow = startVisionApi({ delayMs: 500 });
  try {
    const upstream = new HttpJsonUpstream({
      url: slow.url,
      headers,
      bodyTemplate: "{}",
      answerPath: "$.x",
      timeoutMs: 100,
      retries: 0,
    });
    await assert.rejects(
      upstream.classify({ ...request, n: 1 }),
      (e: unknown) => (e as UpstreamError).code === status.DEADLINE_EXCEEDED,
    );
  } finally {
    await new Promise((r) => setTimeout(r, 500));
    await slow.close();
  }
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const down = new HttpJsonUpstream({
    url: `http://127.0.0.1:${port}/`,
    method: "GET",
    bodyTemplate: "",
    answerPath: "$",
    timeoutMs: 500,
    retries: 1,
  });
  await assert.rejects(
    down.classify({ ...request, n: 1 }),
    (e: unknown) => (e as UpstreamError).code === status.UNAVAILABLE,
  );
});

Deno.test("JSON paths and templates", () => {
  const doc = { a: { "b c": [1, { d: 2 }] } };
  assert.equal(pickJsonPath(doc, "$.a['b c'][1].d"), 2);
  assert.equal(pickJsonPath(doc, "a.b c.0"), 1);
  assert.deepEqual(pickJsonPath(doc, "$"), doc);
  assert.throws(() => pickJsonPath(doc, "$.a.x"), /no value at a.x/);
  assert.equal(fillTemplate('{"i": {{ index }}}', { index: "3" }), '{"i": 3}');
  assert.throws(() => fillTemplate("{{nope}}", {}), /unknown template placeholder \{\{nope\}\}/);
  assert.throws(() =>
    new HttpJsonUpstream({
      url: "http://x/",
      bodyTemplate: "{{img}}",
      answerPath: "$",
      timeoutMs: 1,
      retries: 0,
    })
  );
});

Deno.test("the wav payload places each example's WAV as {{wav_base64}} with {{wav_mime}}", async () => {
  const bodies: { audio: string; mime: string; index: number; tensor: number[] }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const body = await req.json();
    bodies.push(body);
    const wav = decodeWav(Uint8Array.from(atob(body.audio), (c) => c.charCodeAt(0)));
    return Response.json({ result: { samples: wav.samples.length, rate: wav.sampleRate, mime: body.mime } });
  });
  const wavs = [800, 1600, 2400].map((n) =>
    pcm16Wav(Float32Array.from({ length: n }, (_, i) => 0.2 * Math.sin(i / 5)), 8000)
  );
  const options = {
    url: `http://127.0.0.1:${server.addr.port}/speaker`,
    bodyTemplate:
      '{"audio": "{{wav_base64}}", "mime": "{{wav_mime}}", "index": {{index}}, "tensor": {{tensor}}}',
    answerPath: "$.result",
    timeoutMs: 2000,
    retries: 0,
  };
  try {
    assert.throws(() => new HttpJsonUpstream(options), /\{\{wav_base64\}\} needs the "wav" payload/);
    const upstream = new HttpJsonUpstream({ ...options, payload: "wav" });
    assert.equal(upstream.payload, "wav");
    assert.match(upstream.description, /^POST http:\/\/127\.0\.0\.1:\d+\/speaker \(wav\)$/);
    const features = Float32Array.from({ length: 3 * 4 }, (_, i) => i);
    const request = {
      rows: features,
      n: 3,
      shape: [2, 2, 1] as [number, number, number],
      range: [0, 16] as [number, number],
    };
    const answers = await upstream.classify({ ...request, wavs });
    assert.deepEqual(
      answers.map((a) => JSON.parse(a.json)),
      [800, 1600, 2400].map((samples) => ({ samples, rate: 8000, mime: "audio/wav" })),
    );
    assert.deepEqual(answers.map((a) => a.label), [-1, -1, -1]);
    bodies.sort((a, b) => a.index - b.index);
    assert.deepEqual(bodies.map((b) => b.index), [0, 1, 2]);
    assert.deepEqual(bodies[1].tensor, [4, 5, 6, 7]);
    assert.deepEqual(Uint8Array.from(atob(bodies[2].audio), (c) => c.charCodeAt(0)), wavs[2]);
    await assert.rejects(upstream.classify(request), /takes one WAV per example; the request has 0 for 3/);
    assert.equal(bodies.length, 3);
  } finally {
    await server.shutdown();
  }
});
