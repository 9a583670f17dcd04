import assert from "node:assert/strict";
import {
  decodeAudioFile,
  decodeFlac,
  listSpeakerFolder,
  loadSpeakerFolderFeatures,
  splitSpeakerItems,
} from "../audio/folder_dataset.ts";
import { AudioInputError } from "../audio/errors.ts";
import { encodeWav } from "../audio/wav.ts";
import { MEL_BANDS, NUM_FRAMES } from "../audio/config.ts";

function tone(length: number, rate: number, hz: number): Float32Array {
  return Float32Array.from({ length }, (_, i) => 0.4 * Math.sin(2 * Math.PI * hz * i / rate));
}

function crc8(bytes: number[]): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let i = 0; i < 8; i++) crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
  }
  return crc;
}

function crc16(bytes: number[]): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x8005) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** A minimal valid FLAC file: mono 16-bit, one frame per 4,096 samples, VERBATIM subframes. */
function encodeFlac16(
  samples: Float32Array,
  rate: 8000 | 16000 | 22050 | 24000 | 32000 | 44100 | 48000,
): Uint8Array {
  const block = 4096;
  // Frames must name their rate: the decoder reads frames one by one, without the STREAMINFO block.
  const rateCode = { 8000: 4, 16000: 5, 22050: 6, 24000: 7, 32000: 8, 44100: 9, 48000: 10 }[rate]!;
  const ints = Array.from(samples, (v) => Math.max(-32768, Math.min(32767, Math.round(v * 32768))));
  const out: number[] = [0x66, 0x4c, 0x61, 0x43, 0x80, 0, 0, 34]; // "fLaC", last block, STREAMINFO, 34 bytes
  const info = new Uint8Array(34);
  const view = new DataView(info.buffer);
  view.setUint16(0, block);
  view.setUint16(2, block);
  // sample rate (20 bits) | channels-1 (3) | bits-1 (5) | total samples (36)
  const packed = (BigInt(rate) << 44n) | (0n << 41n) | (15n << 36n) | BigInt(ints.length);
  view.setBigUint64(10, packed);
  out.push(...info);
  for (let frame = 0; frame * block < ints.length; frame++) {
    const chunk = ints.slice(frame * block, (frame + 1) * block);
    const header = [
      0xff,
      0xf8,
      0x70 | rateCode,
      0x08,
      frame,
      (chunk.length - 1) >> 8,
      (chunk.length - 1) & 0xff,
    ];
    // block size code 7 (16-bit size follows), rate code, mono, 16-bit; frame number < 128
    const body = [...header, crc8(header), 0x02]; // subframe: VERBATIM, no wasted bits
    for (const v of chunk) body.push((v >> 8) & 0xff, v & 0xff);
    const crc = crc16(body);
    out.push(...body, crc >> 8, crc & 0xff);
  }
  return Uint8Array.from(out);
}

Deno.test("decodeFlac decodes a generated 16 kHz FLAC to 8 kHz mono", async () => {
  const original = tone(16000, 16000, 440);
  const decoded = await decodeFlac(encodeFlac16(original, 16000));
  assert.equal(decoded.source.sampleRate, 16000);
  assert.equal(decoded.sampleRate, 8000);
  assert.equal(decoded.samples.length, 8000);
  const expected = tone(8000, 8000, 440);
  let worst = 0;
  for (let i = 200; i < 7800; i++) worst = Math.max(worst, Math.abs(decoded.samples[i] - expected[i]));
  assert.ok(worst < 2e-3, `worst ${worst}`);
  await assert.rejects(() => decodeFlac(new Uint8Array([1, 2, 3, 4, 5])), AudioInputError);
});

Deno.test("VCTK 0.80, VCTK 0.92 and generic layouts list, split and featurize", async () => {
  const root = await Deno.makeTempDir({ prefix: "audio_folder_" });
  try {
    // VCTK 0.80: wav48/pNNN/pNNN_XXX.wav at 48 kHz
    for (const [speaker, hz] of [["p225", 200], ["p226", 400], ["p227", 800]] as const) {
      await Deno.mkdir(`${root}/v080/wav48/${speaker}`, { recursive: true });
      for (let i = 1; i <= 4; i++) {
        await Deno.writeFile(
          `${root}/v080/wav48/${speaker}/${speaker}_00${i}.wav`,
          encodeWav(tone(4800, 48000, hz * i), 48000),
        );
      }
    }
    const v080 = listSpeakerFolder(`${root}/v080`);
    assert.equal(v080.layout, "vctk-0.80");
    assert.deepEqual(v080.speakers, ["p225", "p226", "p227"]);
    assert.equal(v080.items.length, 12);
    const split = splitSpeakerItems(v080.items, { validationFraction: 0.25 });
    assert.deepEqual(split.validation.map((i) => i.path.split("/").pop()), [
      "p225_004.wav",
      "p226_004.wav",
      "p227_004.wav",
    ]);
    const data = await loadSpeakerFolderFeatures(split.train);
    assert.equal(data.features.length, 9);
    assert.equal(data.features[0].length, NUM_FRAMES * MEL_BANDS);
    assert.deepEqual(Array.from(data.labels), [0, 0, 0, 1, 1, 1, 2, 2, 2]);

    // VCTK 0.92: wav48_silence_trimmed/pNNN/pNNN_XXX_mic1.flac (+ mic2, ignored)
    for (const speaker of ["p225", "p226"]) {
      await Deno.mkdir(`${root}/v092/wav48_silence_trimmed/${speaker}`, { recursive: true });
      for (const mic of ["mic1", "mic2"]) {
        await Deno.writeFile(
          `${root}/v092/wav48_silence_trimmed/${speaker}/${speaker}_001_${mic}.flac`,
          encodeFlac16(tone(4800, 48000, 300), 48000),
        );
      }
    }
    const v092 = listSpeakerFolder(`${root}/v092`);
    assert.equal(v092.layout, "vctk-0.92");
    assert.deepEqual(v092.items.map((i) => i.path.split("/").pop()), [
      "p225_001_mic1.flac",
      "p226_001_mic1.flac",
    ]);
    const flac = await decodeAudioFile(v092.items[0].path);
    assert.equal(flac.samples.length, 800);

    // generic: SPEAKER/*.wav, and a folder with one speaker is refused
    await Deno.mkdir(`${root}/generic/alice`, { recursive: true });
    await Deno.writeFile(`${root}/generic/alice/a.wav`, encodeWav(tone(800, 8000, 500), 8000));
    assert.throws(() => listSpeakerFolder(`${root}/generic`), /found 1 speaker folder/);
    await Deno.mkdir(`${root}/generic/bob`);
    await Deno.writeFile(`${root}/generic/bob/b.wav`, encodeWav(tone(800, 8000, 900), 8000));
    assert.deepEqual(listSpeakerFolder(`${root}/generic`).speakers, ["alice", "bob"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
