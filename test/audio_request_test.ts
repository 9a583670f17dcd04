import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { checkFeatures, defendedFeaturesToWav, wavRequestToInput } from "../audio/request.ts";
import { AudioInputError } from "../audio/errors.ts";
import { decodeWav } from "../audio/wav.ts";
import { featurize } from "../audio/features.ts";
import { fitToClip } from "../audio/clip.ts";
import { perturbationSnrDb } from "../src/attacks/audio_targets.ts";
import { CLIP_SAMPLES, FEATURE_SHAPE, MODEL_SAMPLE_RATE } from "../audio/config.ts";
import { defendSpeakerFeatures, disposeSplitModel, loadSpeakerPipeline } from "../src/speaker_pipeline.ts";
import { patched } from "./audio_fixture.ts";
import { fsddTrainDir } from "../src/data/shared_data.ts";

const FILE = `${fsddTrainDir()}/3_theo_12.wav`;

function rejects(work: () => unknown, reason: string, message: RegExp): void {
  assert.throws(work, (error: unknown) => {
    assert.ok(error instanceof AudioInputError, `expected AudioInputError, got ${error}`);
    assert.equal(error.reason, reason);
    assert.match(error.message, message);
    return true;
  });
}

Deno.test("a real FSDD WAV becomes the model's features, shape and the decoded samples", async () => {
  const bytes = await Deno.readFile(FILE);
  const input = wavRequestToInput(bytes);
  const decoded = decodeWav(bytes);
  assert.deepEqual(input.shape, [...FEATURE_SHAPE]);
  assert.deepEqual(input.samples, decoded.samples);
  assert.deepEqual(input.features, featurize(decoded.samples));
  assert.equal(input.features.length, FEATURE_SHAPE[0] * FEATURE_SHAPE[1]);
});

Deno.test("bad audio is rejected with a reason naming what is wrong", async () => {
  const bytes = await Deno.readFile(FILE);
  assert.equal(new TextDecoder().decode(bytes.subarray(12, 16)), "fmt ");
  assert.equal(new TextDecoder().decode(bytes.subarray(36, 40)), "data");
  rejects(() => wavRequestToInput(new Uint8Array(0)), "empty", /0 bytes/);
  rejects(() => wavRequestToInput(new TextEncoder().encode("hello, this is not audio")), "not-wav", /RIFF/);
  rejects(() => wavRequestToInput(bytes.subarray(0, 8)), "truncated-header", /at least 12/);
  rejects(() => wavRequestToInput(bytes.subarray(0, 30)), "truncated-header", /fmt /);
  rejects(() => wavRequestToInput(patched(bytes, 40, 0, 4).subarray(0, 44)), "empty-data", /zero length/);
  rejects(() => wavRequestToInput(bytes.subarray(0, 200)), "truncated-data", /only 156 follow/);
  rejects(() => wavRequestToInput(patched(bytes, 24, 10, 4)), "bad-sample-rate", /10 Hz at byte 24/);
  rejects(() => wavRequestToInput(patched(bytes, 24, 50_000_000, 4)), "bad-sample-rate", /outside/);
  rejects(() => wavRequestToInput(patched(bytes, 22, 0, 2)), "bad-channels", /channel count 0/);
  rejects(() => wavRequestToInput(patched(bytes, 22, 300, 2)), "bad-channels", /channel count 300/);
  rejects(() => wavRequestToInput(bytes, { maxSeconds: 0.1 }), "too-long", /limit is 0.1 s/);
  rejects(() => wavRequestToInput(bytes, { maxBytes: 1000 }), "too-large", /limit is 1000/);
  // One hour of 8 kHz audio against the default 30 s limit, without allocating it: the header says so.
  const hour = patched(patched(bytes, 40, 3600 * MODEL_SAMPLE_RATE * 2, 4), 4, 36 + 3600 * 16000, 4);
  const longFile = new Uint8Array(44 + 3600 * 16000);
  longFile.set(hour.subarray(0, 44));
  rejects(() => wavRequestToInput(longFile, { maxBytes: longFile.length }), "too-long", /3600.00 s long/);
});

Deno.test("undefended features come back as a near-transparent WAV (SNR >= 40 dB)", async () => {
  const input = wavRequestToInput(await Deno.readFile(FILE));
  const wav = defendedFeaturesToWav(input.samples, input.features);
  const back = decodeWav(wav);
  assert.equal(back.sampleRate, MODEL_SAMPLE_RATE);
  assert.equal(back.samples.length, CLIP_SAMPLES);
  const snr = perturbationSnrDb(fitToClip(input.samples), back.samples);
  assert.ok(snr >= 40, `SNR ${snr.toFixed(1)} dB`);
  // With inputLength the WAV is as long as the request: the clip cut back to the input's span.
  const whole = decodeWav(defendedFeaturesToWav(input.samples, input.features, { inputLength: true }));
  assert.equal(whole.samples.length, input.samples.length);
  assert.ok(input.samples.length < CLIP_SAMPLES);
  const start = Math.floor((CLIP_SAMPLES - input.samples.length) / 2);
  assert.deepEqual(whole.samples, back.samples.subarray(start, start + input.samples.length));
});

Deno.test("NIP-defended audio, featurized again, gets the verdict of the defended features", async () => {
  const pipeline = await loadSpeakerPipeline();
  const baseline = tf.memory().numTensors;
  const names = ["0_george_7.wav", "3_theo_12.wav", "5_lucas_9.wav", "8_yweweler_6.wav", "9_nicolas_13.wav"];
  const inputs = await Promise.all(
    names.map(async (n) => wavRequestToInput(await Deno.readFile(`${fsddTrainDir()}/${n}`))),
  );
  const defended = defendSpeakerFeatures(pipeline.defense, inputs.map((i) => i.features));
  const again = inputs.map((input, i) =>
    wavRequestToInput(defendedFeaturesToWav(input.samples, defended.defended[i])).features
  );
  const verdicts = tf.tidy(() => {
    const x = tf.tensor4d(again.flatMap((f) => Array.from(f)), [again.length, ...FEATURE_SHAPE]);
    return (pipeline.split.model.predict(x) as tf.Tensor).argMax(1).dataSync();
  });
  assert.deepEqual(Array.from(verdicts), Array.from(defended.labelsAfter));
  assert.equal(tf.memory().numTensors, baseline);
  pipeline.defense.dispose();
  disposeSplitModel(pipeline.split);
});

Deno.test("defended features of the wrong size or outside the range are refused", async () => {
  const input = wavRequestToInput(await Deno.readFile(FILE));
  rejects(() => defendedFeaturesToWav(input.samples, new Float32Array(10)), "bad-features", /10 values/);
  const bad = input.features.slice();
  bad[45] = NaN;
  rejects(
    () => defendedFeaturesToWav(input.samples, bad),
    "bad-features",
    /\[45\] \(frame 1, band 5\) is NaN/,
  );
  bad[45] = 99;
  rejects(() => checkFeatures(bad), "bad-features", /outside \[0, 32\]/);
  rejects(() => defendedFeaturesToWav(new Float32Array(0), input.features), "empty", /empty/);
});
