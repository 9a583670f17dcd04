import assert from "node:assert/strict";
import { decodeWav, encodeWav, MAX_CHANNELS, parseWavHeader } from "../audio/wav.ts";
import { AudioInputError } from "../audio/errors.ts";
import { fsddTrainDir } from "../src/data/shared_data.ts";

const FSDD = fsddTrainDir();

function tone(length: number, rate: number, hz: number, amplitude = 0.5): Float32Array {
  return Float32Array.from({ length }, (_, i) => amplitude * Math.sin(2 * Math.PI * hz * i / rate));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

function rejects(bytes: Uint8Array, reason: string, pattern: RegExp, options = {}): void {
  assert.throws(() => decodeWav(bytes, options), (error: unknown) => {
    assert.ok(error instanceof AudioInputError, `expected AudioInputError, got ${error}`);
    assert.equal(error.reason, reason);
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("decodeWav reads a real FSDD file as 8 kHz mono matching its 16-bit codes", async () => {
  const bytes = await Deno.readFile(`${FSDD}/3_theo_20.wav`);
  const { samples, sampleRate, source } = decodeWav(bytes);
  assert.equal(sampleRate, 8000);
  assert.deepEqual([source.sampleRate, source.channels, source.bitDepth], [8000, 1, 16]);
  const header = parseWavHeader(bytes);
  assert.equal(samples.length, header.frames);
  const view = new DataView(bytes.buffer, bytes.byteOffset + header.dataOffset);
  for (const i of [0, 100, samples.length - 1]) assert.equal(samples[i], view.getInt16(i * 2, true) / 32768);
});

Deno.test("every bit depth round-trips through encodeWav/decodeWav within its quantisation step", () => {
  const original = tone(800, 8000, 440, 0.9);
  original[3] = -1; // full-scale negative code (24-bit reads it wrongly without the fix)
  for (const [depth, tolerance] of [[8, 1 / 64], [16, 1 / 30000], [24, 1e-6], [32, 1e-7]] as const) {
    const { samples } = decodeWav(encodeWav(original, 8000, { bitDepth: depth }));
    assert.ok(
      maxAbsDiff(samples, original) <= tolerance,
      `${depth}-bit error ${maxAbsDiff(samples, original)}`,
    );
  }
  const { samples, source } = decodeWav(encodeWav(original, 8000, { float: true }));
  assert.equal(source.format, 3);
  assert.ok(maxAbsDiff(samples, original) < 1e-7);
});

Deno.test("stereo is mixed to mono and 44.1 kHz is resampled to 8 kHz", () => {
  const left = tone(44100, 44100, 300, 0.4);
  const right = tone(44100, 44100, 300, 0.2);
  const { samples, sampleRate, source } = decodeWav(encodeWav([left, right], 44100, { bitDepth: 24 }));
  assert.equal(sampleRate, 8000);
  assert.equal(source.channels, 2);
  assert.equal(samples.length, 8000);
  const expected = tone(8000, 8000, 300, 0.3);
  assert.ok(maxAbsDiff(samples.subarray(200, 7800), expected.subarray(200, 7800)) < 2e-3);
  const native = decodeWav(encodeWav([left, right], 44100), { targetSampleRate: null });
  assert.equal(native.sampleRate, 44100);
});

Deno.test("WAVE_FORMAT_EXTENSIBLE with a PCM sub-format decodes like plain PCM", () => {
  const plain = encodeWav(tone(400, 16000, 1000), 16000);
  const ext = new Uint8Array(plain.length + 24);
  const view = new DataView(ext.buffer);
  ext.set(plain.subarray(0, 20), 0);
  view.setUint32(16, 40, true);
  ext.set(plain.subarray(20, 36), 20); // tag, channels, rate, byte rate, align, bits
  view.setUint16(20, 0xfffe, true);
  view.setUint16(36, 22, true); // cbSize
  view.setUint16(38, 16, true); // valid bits
  view.setUint32(40, 4, true); // channel mask
  view.setUint16(44, 1, true); // sub-format GUID starts with 0x0001 (PCM)
  ext.set(plain.subarray(36), 60);
  view.setUint32(4, ext.length - 8, true);
  const a = decodeWav(plain, { targetSampleRate: null }).samples;
  const b = decodeWav(ext, { targetSampleRate: null }).samples;
  assert.deepEqual(b, a);
});

Deno.test("bad input is rejected with AudioInputError and a reason", () => {
  const good = encodeWav(tone(1600, 8000, 500), 8000);
  rejects(new TextEncoder().encode("hello, this is not audio at all"), "not-wav", /expected "RIFF"/);
  rejects(good.subarray(0, 8), "truncated-header", /at least 12/);
  rejects(good.subarray(0, 30), "truncated-header", /"fmt " chunk at byte 12/);
  rejects(good.subarray(0, 36), "missing-data", /without a "data" chunk/);
  rejects(good.subarray(0, 100), "truncated-data", /declares 3200 bytes but only 56 follow/);
  const empty = encodeWav(new Float32Array(0), 8000);
  rejects(empty, "empty-data", /zero length/);
  const patch = (set: (view: DataView) => void) => {
    const copy = good.slice();
    set(new DataView(copy.buffer));
    return copy;
  };
  rejects(patch((v) => v.setUint32(24, 5, true)), "bad-sample-rate", /5 Hz at byte 24/);
  rejects(patch((v) => v.setUint32(24, 4_000_000_000, true)), "bad-sample-rate", /outside/);
  rejects(
    patch((v) => v.setUint16(22, 0, true)),
    "bad-channels",
    new RegExp(`outside 1..${MAX_CHANNELS}`),
  );
  rejects(patch((v) => v.setUint16(22, 300, true)), "bad-channels", /300/);
  rejects(patch((v) => v.setUint16(34, 12, true)), "bad-bit-depth", /12 at byte 34/);
  rejects(patch((v) => v.setUint16(20, 0x55, true)), "unsupported-format", /0x55/);
  rejects(patch((v) => v.setUint32(0, 0x58464952, true)), "not-wav", /RIFX/);
  const long = encodeWav(new Float32Array(8000 * 3), 8000);
  rejects(long, "too-long", /3\.00 s long; the limit is 2 s/, { maxSeconds: 2 });
  const nan = encodeWav(Float32Array.from([0, NaN, 0]), 8000, { float: true });
  rejects(nan, "non-finite", /frame 1/);
});

Deno.test("an hour-long header is refused before any sample is decoded", () => {
  const header = encodeWav(new Float32Array(4), 48000).slice(0, 44);
  const view = new DataView(header.buffer);
  view.setUint32(40, 48000 * 2 * 3600, true); // declares one hour, file holds none of it
  const bytes = new Uint8Array(44 + 48000 * 2 * 3600);
  bytes.set(header);
  rejects(bytes, "too-long", /3600\.00 s long; the limit is 30 s/);
});
