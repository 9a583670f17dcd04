import assert from "node:assert/strict";
import { decodeMp3, encodeMp3, mp3Compression } from "../audio/baselines/mp3.ts";
import { fitToClip } from "../audio/clip.ts";
import { decodeWav } from "../audio/wav.ts";
import { perturbationSnrDb as snrDb } from "../src/attacks/audio_targets.ts";
import { fsddTrainDir } from "../src/data/shared_data.ts";

Deno.test("MP3 encode/decode works under Deno at 8 kHz", async () => {
  const tone = Float32Array.from({ length: 8000 }, (_, i) => 0.5 * Math.sin(2 * Math.PI * 440 * i / 8000));
  const bytes = encodeMp3(tone, 8000, 24);
  assert.ok(bytes.length > 1000 && bytes.length < 8000, `${bytes.length} bytes`); // ~24 kbit/s
  const decoded = await decodeMp3(bytes);
  assert.equal(decoded.sampleRate, 8000);
  assert.ok(decoded.samples.length >= 8000);
});

Deno.test("MC returns a delay-aligned lossy copy of a real FSDD clip", async () => {
  const clip = fitToClip(
    decodeWav(await Deno.readFile(`${fsddTrainDir()}/5_jackson_31.wav`)).samples,
  );
  const out = await mp3Compression(clip);
  assert.equal(out.length, clip.length);
  const snr = snrDb(clip, out);
  console.log(`MP3 24 kbit/s round trip: SNR ${snr.toFixed(1)} dB`);
  assert.ok(snr > 8 && snr < 60, `SNR ${snr.toFixed(1)} dB: aligned (high) but lossy (not exact)`);
  const shifted = snrDb(clip.subarray(0, clip.length - 5), out.subarray(5));
  assert.ok(shifted < snr, "a 5-sample misalignment is worse than the found alignment");
});
