import assert from "node:assert/strict";
import { resample } from "../audio/resample.ts";

function tone(length: number, rate: number, hz: number, amplitude = 0.5): Float32Array {
  return Float32Array.from({ length }, (_, i) => amplitude * Math.sin(2 * Math.PI * hz * i / rate));
}

function rms(x: Float32Array): number {
  let sum = 0;
  for (const v of x) sum += v * v;
  return Math.sqrt(sum / x.length);
}

function snrDb(reference: Float32Array, test: Float32Array): number {
  const error = reference.map((v, i) => v - test[i]);
  return 20 * Math.log10(rms(reference) / rms(error));
}

const inner = (x: Float32Array) => x.subarray(400, x.length - 400);

for (const rate of [48000, 44100, 16000, 22050, 11025]) {
  Deno.test(`a 1 kHz tone at ${rate} Hz resamples to 8 kHz with SNR > 60 dB`, () => {
    const out = resample(tone(rate, rate, 1000), rate, 8000);
    assert.equal(out.length, 8000);
    const snr = snrDb(inner(tone(8000, 8000, 1000)), inner(out));
    assert.ok(snr > 60, `SNR ${snr.toFixed(1)} dB`);
  });
}

Deno.test("a tone above the new Nyquist frequency is removed, not aliased", () => {
  const out = resample(tone(48000, 48000, 6000), 48000, 8000); // would alias to 2 kHz
  const level = 20 * Math.log10(rms(inner(out)) / rms(tone(48000, 48000, 6000)));
  assert.ok(level < -60, `alias level ${level.toFixed(1)} dB`);
});

Deno.test("up-sampling then down-sampling returns the band-limited signal", () => {
  const original = tone(8000, 8000, 700).map((v, i) => v + 0.2 * Math.sin(2 * Math.PI * 2300 * i / 8000));
  const back = resample(resample(original, 8000, 16000), 16000, 8000);
  assert.equal(back.length, 8000);
  assert.ok(snrDb(inner(original), inner(back)) > 60);
  assert.deepEqual(resample(original, 8000, 8000), original);
});
