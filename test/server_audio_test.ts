/**
 * The sidecar serving the speaker model over real loopback gRPC: WAV in; the defended WAV or features out;
 * Classify forwarding the defended features (OIP FP32) or the defended WAV (OIP BYTES, HTTP base64) to
 * upstreams that run the real speaker model; bad audio answered INVALID_ARGUMENT (RESOURCE_EXHAUSTED for
 * size) and followed by a good request; a flat tensor count after a burst.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import * as tf from "@tensorflow/tfjs";
import { FEATURE_SHAPE, MODEL_SAMPLE_RATE } from "../audio/config.ts";
import { featurize } from "../audio/features.ts";
import { loadSpeakerPipeline } from "../src/speaker_pipeline.ts";
import { wavRequestToInput } from "../audio/request.ts";
import { decodeWav } from "../audio/wav.ts";
import { initBackend } from "../src/engine/backend.ts";
import { loadPipeline } from "../src/pipeline.ts";
import { restoreLength } from "../audio/clip.ts";
import { createSpeakerFrontEnd, resolveModality } from "../src/server/audio.ts";
import { readsAudioFeatures } from "../audio/config.ts";
import { defaultConfig, loadConfig, type SidecarConfig } from "../src/server/config.ts";
import { DefenseClient, float32Input, imagesInput, readFloat32, wavInput } from "../src/server/client.ts";
import { ServingEngine } from "../src/server/engine.ts";
import { createLogger } from "../src/server/log.ts";
import { startSidecar } from "../src/server/server.ts";
import { createUpstream } from "../src/server/upstream_factory.ts";
import { startOipServer } from "../src/upstream/oip_server.ts";
import { encodePng } from "../src/image/codec.ts";
import { patched, pcm16Wav } from "./audio_fixture.ts";
import { fsddTrainDir } from "../src/data/shared_data.ts";

const FSDD_DIR = fsddTrainDir();
const FSDD_FILE = `${FSDD_DIR}/3_theo_12.wav`;
const THEO = 4; // label order of models/fsdd-speaker/training.json
const haveFsdd = (() => {
  try {
    return Deno.statSync(FSDD_FILE).isFile;
  } catch {
    return false;
  }
})();
if (!haveFsdd) {
  console.warn(`server_audio_test: ${FSDD_FILE} is absent; the FSDD round-trip tests are skipped`);
}

await initBackend("wasm");
const speaker = await loadSpeakerPipeline();
const engine = new ServingEngine(speaker);
const MAX_MESSAGE = 8 * 1024 * 1024;
const MAX_SECONDS = 10;

/** 0.6 s of a voiced-like tone at 8 kHz: a valid request that needs no data set. */
const tone = Float32Array.from({ length: 4800 }, (_, i) => {
  const t = i / MODEL_SAMPLE_RATE;
  return 0.3 * Math.sin(2 * Math.PI * 180 * t) + 0.1 * Math.sin(2 * Math.PI * 900 * t);
});
const toneWav = pcm16Wav(tone, MODEL_SAMPLE_RATE);
const realWav = haveFsdd ? await Deno.readFile(FSDD_FILE) : toneWav;

function predictLabel(features: Float32Array): number {
  return tf.tidy(() =>
    (speaker.split.model.predict(tf.tensor4d(features, [1, ...FEATURE_SHAPE])) as tf.Tensor)
      .argMax(-1).dataSync()[0]
  );
}

/** An HTTP JSON speaker API: `{"audio": base64 WAV, "mime": ...}` -> `{"result": {"speaker": label}}`. */
const httpBodies: { audio: string; mime: string; index: number }[] = [];
const httpServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
  const body = await request.json();
  httpBodies.push(body);
  const wav = Uint8Array.from(atob(body.audio), (c) => c.charCodeAt(0));
  return Response.json({ result: { speaker: predictLabel(wavRequestToInput(wav).features) } });
});

function audioConfig(): SidecarConfig {
  const config = defaultConfig();
  config.bind = "127.0.0.1:0";
  config.metricsBind = "";
  config.maxMessageBytes = MAX_MESSAGE;
  config.audio.maxSeconds = MAX_SECONDS;
  config.batching = { enabled: true, maxBatchSize: 8, maxQueueDelayMicros: 1000, maxQueueSize: 256 };
  return config;
}

const frontEnd = createSpeakerFrontEnd({ maxSeconds: MAX_SECONDS, maxBytes: MAX_MESSAGE });
const logger = createLogger("error", () => {});

// Sidecar 1: features forwarded over OIP to the speaker model served by src/upstream/oip_server.ts.
const featuresOip = await startOipServer({ model: speaker.split.model, modelName: "fsdd-speaker" });
const featuresConfig = audioConfig();
Object.assign(featuresConfig.upstream, { kind: "oip", address: featuresOip.address, retries: 0 });
const sidecar = await startSidecar({
  config: featuresConfig,
  engines: [engine],
  upstream: createUpstream(featuresConfig, engine.name, logger, "audio"),
  logger,
  wav: frontEnd,
});
const client = new DefenseClient(`127.0.0.1:${sidecar.port}`);

// Sidecar 2: the defended WAV forwarded over OIP as BYTES.
const receivedWavs: Uint8Array[] = [];
const wavOip = await startOipServer({
  model: speaker.split.model,
  modelName: "fsdd-speaker",
  bytesInput: (wav) => {
    receivedWavs.push(wav.slice());
    return wavRequestToInput(wav).features;
  },
});
const wavConfig = audioConfig();
Object.assign(wavConfig.upstream, { kind: "oip", address: wavOip.address, audioPayload: "wav", retries: 0 });
const wavSidecar = await startSidecar({
  config: wavConfig,
  engines: [engine],
  upstream: createUpstream(wavConfig, engine.name, logger, "audio"),
  logger,
  wav: frontEnd,
});
const wavClient = new DefenseClient(`127.0.0.1:${wavSidecar.port}`);

// Sidecar 3: the defended WAV forwarded to an HTTP JSON API in the body template.
const httpConfig = audioConfig();
Object.assign(httpConfig.upstream, {
  kind: "http",
  url: `http://127.0.0.1:${httpServer.addr.port}/speaker`,
  method: "PUT",
  bodyTemplate: '{"audio": "{{wav_base64}}", "mime": "{{wav_mime}}", "index": {{index}}}',
  answerPath: "$.result.speaker",
  audioPayload: "wav",
  retries: 0,
});
const httpSidecar = await startSidecar({
  config: httpConfig,
  engines: [engine],
  upstream: createUpstream(httpConfig, engine.name, logger, "audio"),
  logger,
  wav: frontEnd,
});
const httpClient = new DefenseClient(`127.0.0.1:${httpSidecar.port}`);

// Sidecar 4: an image model (the committed Fashion-MNIST LeNet), for the modality checks.
const lenet = await loadPipeline({ modelDir: "models/fashion-lenet" });
const imageEngine = new ServingEngine(lenet);
const imageConfig = audioConfig();
const imageSidecar = await startSidecar({ config: imageConfig, engines: [imageEngine], logger });
const imageClient = new DefenseClient(`127.0.0.1:${imageSidecar.port}`);

async function expectStatus(call: Promise<unknown>, code: grpc.status, pattern: RegExp) {
  await assert.rejects(call, (e: grpc.ServiceError) => {
    assert.equal(e.code, code, `status ${grpc.status[e.code]} (${e.details}), expected ${grpc.status[code]}`);
    assert.match(e.details, pattern);
    return true;
  });
  // The server still answers a good WAV request after the bad one.
  const after = await client.defend({ input: wavInput(toneWav), outputFormat: "OUTPUT_FORMAT_WAV" });
  assert.equal(after.verdicts.length, 1);
  assert.ok(after.defended.wav.length > 44);
}

Deno.test("modality: the speaker model is audio, an image model is not, audio forced on it fails", () => {
  assert.equal(readsAudioFeatures(engine.inputShape, engine.inputRange), true);
  assert.equal(resolveModality("auto", engine), "audio");
  assert.equal(resolveModality("auto", imageEngine), "image");
  assert.equal(resolveModality("image", engine), "image");
  assert.throws(
    () => resolveModality("audio", imageEngine),
    /reads \[28,28,1\] in \[0,1\].*\[63,40,1\] in \[0,32\]/,
  );
  const config = loadConfig({
    args: ["--modality", "audio", "--audio-max-seconds", "5", "--upstream-audio-payload", "wav"],
    env: {},
  });
  assert.equal(config.modality, "audio");
  assert.equal(config.audio.maxSeconds, 5);
  assert.equal(config.upstream.audioPayload, "wav");
  assert.throws(() => loadConfig({ args: ["--upstream-audio-payload", "mp3"], env: {} }), /features, wav/);
});

Deno.test("Describe reports an audio model taking WAV", async () => {
  const { modelInfo } = await client.describe({});
  assert.equal(modelInfo.name, "fsdd-speaker");
  assert.equal(modelInfo.modality, "audio");
  assert.deepEqual(modelInfo.inputKinds, ["wav"]);
  assert.deepEqual(modelInfo.inputShape, [...FEATURE_SHAPE]);
  assert.equal(modelInfo.sampleRate, MODEL_SAMPLE_RATE);
  assert.equal(modelInfo.maxAudioSeconds, MAX_SECONDS);
  assert.equal(modelInfo.numClasses, 6);
  const image = await imageClient.describe({});
  assert.equal(image.modelInfo.modality, "image");
  assert.equal(image.modelInfo.sampleRate, 0);
});

Deno.test({
  name: "Defend with a real FSDD WAV: the defended WAV decodes, keeps the length, gives the defended verdict",
  ignore: !haveFsdd,
  async fn() {
    const inputSamples = decodeWav(realWav).samples;
    const asWav = await client.defend({ input: wavInput(realWav), outputFormat: "OUTPUT_FORMAT_WAV" });
    const verdict = asWav.verdicts[0];
    const out = decodeWav(asWav.defended.wav);
    assert.equal(out.source.sampleRate, MODEL_SAMPLE_RATE);
    assert.equal(out.source.channels, 1);
    assert.equal(out.samples.length, inputSamples.length);
    assert.equal(predictLabel(featurize(out.samples)), verdict.labelAfter);
    assert.equal(verdict.labelBefore, THEO);
    assert.equal(verdict.labelBefore, predictLabel(wavRequestToInput(realWav).features));
    assert.equal(verdict.scoresBefore.length, 6);
    assert.ok(asWav.timings.audioMs > 0 && asWav.timings.totalMs >= asWav.timings.audioMs);
    assert.equal(asWav.defended.tensor, null);

    // The features output is the NIP core's defense of the front end's features.
    const asTensor = await client.defend({ input: wavInput(realWav), outputFormat: "OUTPUT_FORMAT_TENSOR" });
    assert.deepEqual(asTensor.defended.tensor.shape, [1, ...FEATURE_SHAPE]);
    const served = readFloat32(asTensor.defended.tensor);
    const direct = tf.tidy(() => {
      const x = tf.tensor4d(wavRequestToInput(realWav).features, [1, ...FEATURE_SHAPE]);
      const outcome = speaker.defense.run(x);
      return {
        ...outcome,
        labelsAfter: outcome.labelsAfter!,
        candidateIndex: outcome.details.nip.candidateIndex,
        similarity: outcome.details.nip.similarity,
        values: outcome.defended.dataSync() as Float32Array,
      };
    });
    assert.equal(served.length, direct.values.length);
    for (let i = 0; i < served.length; i++) assert.ok(Math.abs(served[i] - direct.values[i]) < 1e-5);
    assert.equal(asTensor.verdicts[0].labelAfter, direct.labelsAfter[0]);
    assert.equal(asTensor.verdicts[0].candidateIndex, direct.candidateIndex[0]);
    assert.ok(Math.abs(asTensor.verdicts[0].similarity - verdict.similarity) < 1e-6);

    // Bare prediction through the same server agrees with the undefended verdict.
    const bare = await client.predict({ input: wavInput(realWav) });
    assert.equal(bare.predictions[0].label, verdict.labelBefore);
  },
});

Deno.test("a WAV longer than the model's second comes back as long, the unread part as sent", async () => {
  // 2.5 s at 8 kHz: quiet tone, a louder burst in the middle second (the part the model reads).
  const long = Float32Array.from({ length: 20_000 }, (_, i) => {
    const loud = i >= 9000 && i < 15000 ? 0.5 : 0.05;
    return loud * Math.sin(2 * Math.PI * 220 * i / MODEL_SAMPLE_RATE);
  });
  const wav = pcm16Wav(long, MODEL_SAMPLE_RATE);
  const response = await client.defend({ input: wavInput(wav), outputFormat: "OUTPUT_FORMAT_WAV" });
  const sent = decodeWav(wav).samples;
  const got = decodeWav(response.defended.wav).samples;
  assert.equal(got.length, sent.length);
  // restoreLength puts the defended second back where fitToClip read it; the rest is the input as sent.
  const marker = restoreLength(new Float32Array(8000).fill(2), sent);
  let passed = 0;
  for (let i = 0; i < sent.length; i++) {
    if (marker[i] !== 2) {
      assert.equal(got[i], sent[i], `sample ${i} outside the model's window changed`);
      passed++;
    }
  }
  assert.equal(passed, sent.length - 8000);
  // Stereo at 16 kHz is accepted too and comes back at the model's rate, the same duration.
  const stereo = pcm16Wav(Float32Array.from({ length: 9600 }, (_, i) => tone[i >> 1]), 16000, 2);
  const fromStereo = await client.defend({ input: wavInput(stereo), outputFormat: "OUTPUT_FORMAT_WAV" });
  assert.equal(decodeWav(fromStereo.defended.wav).samples.length, 4800);
});

Deno.test({
  name: "Classify forwards the defended features to the OIP upstream serving the speaker model",
  ignore: !haveFsdd,
  async fn() {
    const response = await client.classify({ input: wavInput(realWav), outputFormat: "OUTPUT_FORMAT_WAV" });
    assert.match(response.upstream, /^oip:\/\/127\.0\.0\.1:\d+\/fsdd-speaker$/);
    const defended = await client.defend({ input: wavInput(realWav) });
    const features = readFloat32(defended.defended.tensor);
    const expected = tf.tidy(() =>
      (speaker.split.model.predict(tf.tensor4d(features, [1, ...FEATURE_SHAPE])) as tf.Tensor)
        .dataSync() as Float32Array
    );
    const answer = response.answers[0];
    assert.equal(answer.scores.length, 6);
    answer.scores.forEach((s: number, i: number) => assert.ok(Math.abs(s - expected[i]) < 1e-5));
    assert.equal(answer.label, response.verdicts[0].labelAfter);
    assert.ok(response.timings.upstreamMs > 0);
    assert.equal(decodeWav(response.defended.wav).samples.length, decodeWav(realWav).samples.length);
  },
});

Deno.test({
  name: "Classify with audioPayload wav forwards the defended WAV: OIP BYTES and HTTP base64",
  ignore: !haveFsdd,
  async fn() {
    receivedWavs.length = 0;
    const response = await wavClient.classify({
      input: wavInput(realWav),
      outputFormat: "OUTPUT_FORMAT_WAV",
    });
    assert.match(response.upstream, /^oip\+wav:\/\/127\.0\.0\.1:\d+\/fsdd-speaker$/);
    assert.equal(receivedWavs.length, 1);
    // What went upstream is the defended WAV returned to the caller, byte for byte.
    assert.deepEqual(receivedWavs[0], new Uint8Array(response.defended.wav));
    assert.equal(response.answers[0].label, predictLabel(featurize(decodeWav(receivedWavs[0]).samples)));
    assert.equal(response.answers[0].label, response.verdicts[0].labelAfter);
    assert.ok(response.timings.audioMs > 0);

    httpBodies.length = 0;
    const viaHttp = await httpClient.classify({ input: wavInput(realWav) });
    assert.equal(httpBodies.length, 1);
    assert.equal(httpBodies[0].mime, "audio/wav");
    assert.equal(httpBodies[0].index, 0);
    assert.equal(viaHttp.answers[0].label, response.answers[0].label);
    assert.equal(viaHttp.answers[0].json, String(response.answers[0].label));
    assert.equal(viaHttp.defended, null);
  },
});

Deno.test("bad audio over gRPC: INVALID_ARGUMENT (size: RESOURCE_EXHAUSTED) with the reason", async () => {
  const defend = (wav: Uint8Array) =>
    client.defend({ input: wavInput(wav), outputFormat: "OUTPUT_FORMAT_WAV" });
  const bad = grpc.status.INVALID_ARGUMENT;
  await expectStatus(
    defend(new TextEncoder().encode("this is not audio")),
    bad,
    /input\.wav: not a WAV.*RIFF.*\(not-wav\)/,
  );
  await expectStatus(defend(toneWav.subarray(0, 30)), bad, /input\.wav: .*"fmt ".*\(truncated-header\)/);
  await expectStatus(defend(toneWav.subarray(0, 8)), bad, /at least 12.*\(truncated-header\)/);
  await expectStatus(defend(patched(toneWav, 40, 0, 4).subarray(0, 44)), bad, /zero length.*\(empty-data\)/);
  await expectStatus(defend(new Uint8Array(0)), bad, /input\.wav: audio is empty \(0 bytes\) \(empty\)/);
  await expectStatus(defend(toneWav.subarray(0, 200)), bad, /only 156 follow.*\(truncated-data\)/);
  await expectStatus(
    defend(patched(toneWav, 24, 50_000_000, 4)),
    bad,
    /sample rate 50000000 Hz.*\(bad-sample-rate\)/,
  );
  await expectStatus(defend(patched(toneWav, 24, 10, 4)), bad, /sample rate 10 Hz at byte 24/);
  await expectStatus(defend(patched(toneWav, 22, 300, 2)), bad, /channel count 300.*\(bad-channels\)/);
  await expectStatus(defend(patched(toneWav, 22, 0, 2)), bad, /channel count 0/);
  // One hour of real 8-bit audio at 1 kHz (3.6 MB, under the message limit) against a 10-s limit.
  const hour = new Uint8Array(44 + 3600 * 1000).fill(128);
  hour.set(pcm16Wav(new Float32Array(0), 1000).subarray(0, 44));
  const hv = new DataView(hour.buffer);
  hv.setUint32(4, 36 + 3600 * 1000, true);
  hv.setUint32(28, 1000, true);
  hv.setUint16(32, 1, true);
  hv.setUint16(34, 8, true);
  hv.setUint32(40, 3600 * 1000, true);
  await expectStatus(defend(hour), bad, /3600\.00 s long; the limit is 10 s \(too-long\)/);
  // Over the gRPC message limit: refused before it is read.
  await expectStatus(
    defend(new Uint8Array(MAX_MESSAGE + 1024)),
    grpc.status.RESOURCE_EXHAUSTED,
    /larger than max/,
  );
  // Non-audio inputs and image outputs on the audio model.
  await expectStatus(
    client.defend({ input: float32Input(new Float32Array(63 * 40), [63, 40, 1]) }),
    bad,
    /input\.tensor: model "fsdd-speaker" reads audio.*input\.wav/,
  );
  const png = encodePng({ width: 4, height: 4, channels: 1, data: new Uint8Array(16) });
  await expectStatus(client.predict({ input: imagesInput([png]) }), bad, /input\.images: .* reads audio/);
  await expectStatus(
    client.defend({ input: wavInput(toneWav), outputFormat: "OUTPUT_FORMAT_PNG" }),
    bad,
    /output_format: OUTPUT_FORMAT_PNG is for image models/,
  );
  await expectStatus(
    client.classify({ input: wavInput(new TextEncoder().encode("RIFF")) }),
    bad,
    /not-wav|truncated/,
  );
  // The image model: WAV in and WAV out are refused.
  await assert.rejects(
    imageClient.defend({ input: wavInput(toneWav) }),
    (e: grpc.ServiceError) => e.code === bad && /input\.wav: this model takes images/.test(e.details),
  );
  await assert.rejects(
    imageClient.defend({
      input: float32Input(new Float32Array(784), [28, 28, 1]),
      outputFormat: "OUTPUT_FORMAT_WAV",
    }),
    (e: grpc.ServiceError) => e.code === bad && /OUTPUT_FORMAT_WAV needs an audio model/.test(e.details),
  );
});

Deno.test("Certify on a WAV smooths the log-mel features and says the radius is in that space", async () => {
  const { certifications } = await client.certify({ input: wavInput(realWav), n: 300, seed: 4 });
  assert.equal(certifications.length, 1);
  const [c] = certifications;
  assert.equal(c.radiusSpace, "log-mel features (dB)");
  assert.equal(c.sigma, 2, "the audio default noise is 2 dB");
  assert.ok(c.label >= -1 && c.label < 6);
  if (haveFsdd) {
    assert.equal(c.label, THEO);
    assert.ok(c.radius > 1, `radius ${c.radius} dB`);
  }
  const { modelInfo } = await client.describe({});
  assert.equal(modelInfo.certifier.settings.sigma, "2");
});

Deno.test("tf.memory().numTensors is flat after a burst of WAV requests", async () => {
  const one = () => client.defend({ input: wavInput(realWav), outputFormat: "OUTPUT_FORMAT_WAV" });
  await one();
  const before = tf.memory().numTensors;
  const calls = [];
  for (let i = 0; i < 12; i++) {
    calls.push(one());
    calls.push(client.classify({ input: wavInput(realWav) }));
    calls.push(wavClient.classify({ input: wavInput(toneWav) }));
    calls.push(client.predict({ input: wavInput(realWav) }));
    if (i % 4 === 0) calls.push(client.certify({ input: wavInput(realWav), n: 100 }));
    calls.push(client.defend({ input: wavInput(new Uint8Array([1, 2, 3])) }).catch((e) => e));
  }
  const answers = await Promise.all(calls);
  assert.equal(answers.filter((a) => a instanceof Error).length, 12);
  // Certify's certificates for the 3 certify calls came back too.
  assert.equal(answers.filter((a) => a?.certifications?.length === 1).length, 3);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("teardown", async () => {
  for (const c of [client, wavClient, httpClient, imageClient]) c.close();
  await Promise.all([sidecar, wavSidecar, httpSidecar, imageSidecar].map((s) => s.shutdown()));
  await Promise.all([featuresOip.close(), wavOip.close(), httpServer.shutdown()]);
  assert.equal(sidecar.inFlight, 0);
});
