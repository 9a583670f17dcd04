/**
 * The sidecar serves any defense pipeline over real loopback gRPC: `Describe` lists its stages, a
 * baseline chained before NIP answers like the pipeline run directly, the verdict after defense is
 * skipped when asked (and only for that request of a shared batch), and an audio pipeline with a
 * waveform stage defends WAV requests.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { audioFrontEnd } from "../audio/baselines/index.ts";
import { MODEL_SAMPLE_RATE } from "../audio/config.ts";
import { encodeWav } from "../audio/wav.ts";
import { loadSpeakerPipeline } from "../src/speaker_pipeline.ts";
import { initBackend } from "../src/engine/backend.ts";
import { createSpeakerFrontEnd } from "../src/server/audio.ts";
import { defaultConfig } from "../src/server/config.ts";
import { DefenseClient, float32Input, readFloat32, wavInput } from "../src/server/client.ts";
import { trainDemoPipeline } from "../src/server/demo_pipeline.ts";
import { ServingEngine } from "../src/server/engine.ts";
import { createLogger } from "../src/server/log.ts";
import { startSidecar } from "../src/server/server.ts";
import { DefensePipeline } from "../src/stages/pipeline.ts";
import { buildStages } from "../src/stages/registry.ts";

await initBackend("wasm");
const demo = await trainDemoPipeline({ seed: 3 });
const chained = new DefensePipeline(
  demo.split,
  buildStages(["jc", "nip"], { split: demo.split, profile: demo.profile, modality: "image" }),
);
const engines = [
  new ServingEngine(demo),
  new ServingEngine({ ...demo, defense: chained, modelName: "fashion-lenet-jc" }),
];
const config = defaultConfig();
config.bind = "127.0.0.1:0";
config.metricsBind = "";
config.batching = { enabled: true, maxBatchSize: 16, maxQueueDelayMicros: 20000, maxQueueSize: 64 };
const sidecar = await startSidecar({ config, engines, logger: createLogger("error", () => {}) });
const client = new DefenseClient(`127.0.0.1:${sidecar.port}`);
const rows = demo.test.images.slice(0, 3 * 784);

Deno.test("Describe lists each model's stages, in order, with their settings, and the policy", async () => {
  const plain = (await client.describe({})).modelInfo;
  assert.deepEqual(plain.stages.map((s: { name: string }) => s.name), ["nip"]);
  assert.equal(plain.policy, "defend");
  const info = (await client.describe({ model: "fashion-lenet-jc" })).modelInfo;
  assert.deepEqual(info.stages.map((s: { name: string }) => s.name), ["jc", "nip"]);
  const [jc, nip] = info.stages;
  assert.equal(jc.role, "transform");
  assert.equal(jc.domain, "input");
  assert.equal(jc.settings.quality, "80");
  assert.match(jc.description, /quality 80/);
  assert.equal(nip.settings.candidates, String(demo.profile.candidateCount));
});

Deno.test("a chained pipeline answers with what it gives when run directly", async () => {
  const response = await client.defend({
    model: "fashion-lenet-jc",
    input: float32Input(rows, [3, 28, 28, 1]),
  });
  const direct = tf.tidy(() => {
    const outcome = chained.run(tf.tensor4d(rows, [3, 28, 28, 1]));
    return { ...outcome, values: outcome.defended.dataSync() as Float32Array };
  });
  const served = readFloat32(response.defended.tensor);
  for (let i = 0; i < served.length; i++) assert.ok(Math.abs(served[i] - direct.values[i]) < 1e-6);
  response.verdicts.forEach((v: Record<string, number>, i: number) => {
    assert.equal(v.labelAfter, direct.labelsAfter![i]);
    assert.equal(v.candidateIndex, direct.details.nip.candidateIndex[i]);
  });
  direct.defended.dispose();
});

Deno.test("skip_verdict_after: label_after -1 and no scores after, same defended input; batch neighbours keep theirs", async () => {
  const before = tf.memory().numTensors;
  const [skipped, full] = await Promise.all([
    client.defend({ input: float32Input(rows, [3, 28, 28, 1]), skipVerdictAfter: true }),
    client.defend({ input: float32Input(rows, [3, 28, 28, 1]) }),
  ]);
  assert.deepEqual(readFloat32(skipped.defended.tensor), readFloat32(full.defended.tensor));
  for (const [i, v] of skipped.verdicts.entries()) {
    assert.equal(v.labelAfter, -1);
    assert.deepEqual(v.scoresAfter, []);
    assert.equal(v.labelFlipped, false);
    assert.equal(v.labelBefore, full.verdicts[i].labelBefore);
    assert.equal(v.scoresBefore.length, 10);
  }
  assert.ok(full.verdicts.every((v: { labelAfter: number }) => v.labelAfter >= 0));
  assert.ok(full.verdicts.every((v: { scoresAfter: number[] }) => v.scoresAfter.length === 10));
  const alone = await client.defend({ input: float32Input(rows, [3, 28, 28, 1]), skipVerdictAfter: true });
  assert.equal(alone.verdicts[0].labelAfter, -1);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("an audio pipeline with a waveform stage defends WAV requests through the front end", async () => {
  const speaker = await loadSpeakerPipeline({ defenses: ["qtz", "nip"] });
  const engine = new ServingEngine(speaker, audioFrontEnd);
  const audioConfig = { ...config, metricsBind: "" };
  const wav = createSpeakerFrontEnd({ maxSeconds: 10, maxBytes: config.maxMessageBytes });
  const server = await startSidecar({
    config: audioConfig,
    engines: [engine],
    logger: createLogger("error", () => {}),
    wav,
  });
  const audioClient = new DefenseClient(`127.0.0.1:${server.port}`);
  try {
    const tone = Float32Array.from(
      { length: 6000 },
      (_, i) => 0.3 * Math.sin(i / 5) + 0.05 * Math.sin(i / 1.7),
    );
    const request = encodeWav(tone, MODEL_SAMPLE_RATE);
    const described = (await audioClient.describe({})).modelInfo;
    assert.deepEqual(described.stages.map((s: { domain: string }) => s.domain), ["signal", "input"]);
    const response = await audioClient.defend({
      input: wavInput(request),
      outputFormat: "OUTPUT_FORMAT_TENSOR",
    });
    const decoded = wav.decode(request);
    const x = tf.tensor4d(decoded.features, [1, 63, 40, 1]);
    const direct = await speaker.defense.runWithSignals(x, [decoded.samples], audioFrontEnd);
    x.dispose();
    const served = readFloat32(response.defended.tensor);
    const expected = direct.defended.dataSync();
    for (let i = 0; i < served.length; i++) assert.ok(Math.abs(served[i] - expected[i]) < 1e-5);
    assert.equal(response.verdicts[0].labelAfter, direct.labelsAfter![0]);
    direct.defended.dispose();
  } finally {
    audioClient.close();
    await server.shutdown();
  }
  // Served without the WAV front end, tensors reach the engine; the waveform stage refuses them by name.
  const bare = await startSidecar({
    config: audioConfig,
    engines: [engine],
    logger: createLogger("error", () => {}),
  });
  const bareClient = new DefenseClient(`127.0.0.1:${bare.port}`);
  try {
    await assert.rejects(
      bareClient.defend({ input: float32Input(new Float32Array(63 * 40), [1, 63, 40, 1]) }),
      (e: { code: number; details: string }) => {
        assert.equal(e.code, 3, e.details);
        assert.match(e.details, /acts on the raw waveform; send a WAV/);
        return true;
      },
    );
    const predicted = await bareClient.predict({
      input: float32Input(new Float32Array(63 * 40), [1, 63, 40, 1]),
    });
    assert.equal(predicted.predictions.length, 1);
  } finally {
    bareClient.close();
    await bare.shutdown();
    speaker.defense.dispose();
  }
});

Deno.test("teardown", async () => {
  client.close();
  await sidecar.shutdown();
});
