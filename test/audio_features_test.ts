import assert from "node:assert/strict";
import { analysisWindow, featuresToTensor, featurize, frameAt, melFilterBank } from "../audio/features.ts";
import { fitToClip, loudestWindowStart, restoreLength } from "../audio/clip.ts";
import { decodeWav } from "../audio/wav.ts";
import { CLIP_SAMPLES, FEATURE_RANGE, MEL_BANDS, NUM_FRAMES } from "../audio/config.ts";
import FFT from "fft.js";
import { fsddTrainDir } from "../src/data/shared_data.ts";

const FSDD = fsddTrainDir();

Deno.test("featurize gives [frames, bands] log-mel values within FEATURE_RANGE for real FSDD clips", async () => {
  for (const name of ["0_george_10.wav", "7_yweweler_33.wav"]) {
    const { samples } = decodeWav(await Deno.readFile(`${FSDD}/${name}`));
    const features = featurize(samples);
    assert.equal(features.length, NUM_FRAMES * MEL_BANDS);
    let max = 0;
    for (const v of features) {
      assert.ok(v >= FEATURE_RANGE[0] && v <= FEATURE_RANGE[1]);
      max = Math.max(max, v);
    }
    assert.ok(max > 10, "speech frames are well above the 16-bit noise floor");
  }
});

Deno.test("featurize equals an independent fft.js log-mel computation with meyda's bank", () => {
  const clip = Float32Array.from({ length: 6000 }, (_, i) => 0.3 * Math.sin(i * 0.37) * Math.sin(i * 0.001));
  const features = featurize(clip);
  const fitted = fitToClip(clip);
  const bank = melFilterBank();
  const window = analysisWindow();
  const fft = new FFT(256);
  const out = fft.createComplexArray();
  for (const t of [0, 20, 31, NUM_FRAMES - 1]) {
    const frame = frameAt(fitted, t).map((v, i) => v * window[i]);
    fft.realTransform(out, Array.from(frame));
    fft.completeSpectrum(out);
    for (let b = 0; b < MEL_BANDS; b++) {
      let mel = 0;
      for (let k = 0; k < 128; k++) mel += bank[b][k] * (out[2 * k] ** 2 + out[2 * k + 1] ** 2);
      const expected = Math.log1p(mel);
      assert.ok(Math.abs(features[t * MEL_BANDS + b] - expected) < 1e-3 * Math.max(1, expected));
    }
  }
});

Deno.test("silence gives zeros; short clips are centred, long clips cut to their loudest second", () => {
  assert.ok(featurize(new Float32Array(100)).every((v) => v === 0));
  const short = fitToClip(Float32Array.from([1, 2, 3, 4]));
  assert.equal(short.length, CLIP_SAMPLES);
  assert.deepEqual(Array.from(short.subarray(3998, 4002)), [1, 2, 3, 4]);
  const long = new Float32Array(20000);
  long.fill(0.5, 12000, 13000);
  const cut = fitToClip(long);
  assert.equal(cut.reduce((a, v) => a + v, 0), 500);
  assert.equal(loudestWindowStart(long), 5000);
  assert.equal(loudestWindowStart(Float32Array.from([1, 2, 3, 4])), 0);
});

Deno.test("restoreLength undoes fitToClip: a short input's span, a long input with its window replaced", () => {
  const short = Float32Array.from({ length: 4801 }, (_, i) => Math.sin(i / 9));
  assert.deepEqual(restoreLength(fitToClip(short), short), short);
  const long = Float32Array.from(
    { length: 20000 },
    (_, i) => (i >= 9000 && i < 15000 ? 0.5 : 0.05) * Math.sin(i),
  );
  assert.deepEqual(restoreLength(fitToClip(long), long), long);
  const marked = restoreLength(new Float32Array(CLIP_SAMPLES).fill(2), long);
  const start = loudestWindowStart(long);
  assert.ok(start >= 7000 && start <= 9000);
  assert.ok(marked.subarray(start, start + CLIP_SAMPLES).every((v) => v === 2));
  assert.deepEqual(marked.subarray(0, start), long.subarray(0, start));
  assert.deepEqual(marked.subarray(start + CLIP_SAMPLES), long.subarray(start + CLIP_SAMPLES));
});

Deno.test("featuresToTensor stacks maps into [batch, frames, bands, 1] and checks sizes", () => {
  const a = featurize(new Float32Array(8000).map((_, i) => Math.sin(i)));
  const tensor = featuresToTensor([a, a]);
  assert.deepEqual(tensor.shape, [2, NUM_FRAMES, MEL_BANDS, 1]);
  assert.equal(tensor.dataSync()[5], a[5]);
  tensor.dispose();
  assert.throws(() => featuresToTensor(new Float32Array(3)), /feature map 0 has 3 values/);
});
