/**
 * The image decode pool with real workers: rows as the codec makes them, the codec's errors passed back
 * by class, a worker over its time budget terminated and replaced, a full queue refused, and close().
 */
import assert from "node:assert/strict";
import { decodeImage, encodePng, ImageDecodeError, ImageTooLargeError } from "../src/image/codec.ts";
import { imageToInput } from "../src/image/resize.ts";
import { AudioInputError } from "../audio/errors.ts";
import { wavRequestToInput } from "../audio/request.ts";
import { encodeWav } from "../audio/wav.ts";
import {
  DecodeBudgetError,
  DecodePool,
  DecodePoolClosedError,
  DecodeQueueFullError,
  type ImageJob,
} from "../src/server/decode_pool.ts";

const fixture = (name: string) => Deno.readFileSync(new URL(`fixtures/hostile/${name}`, import.meta.url));
const gradient = encodePng({
  width: 40,
  height: 30,
  channels: 1,
  data: Uint8Array.from({ length: 1200 }, (_, i) => i % 251),
});
const job = (bytes: Uint8Array, maxPixels = 1 << 24): ImageJob => ({
  bytes,
  maxPixels,
  shape: [28, 28, 1],
  range: [0, 1],
});

Deno.test("decodes and resizes in a worker, as the codec does on the main thread", async () => {
  const pool = new DecodePool({ workers: 2, budgetMs: 5000, maxQueue: 8 });
  try {
    const rows = await Promise.all([pool.decode(job(gradient)), pool.decode(job(gradient))]);
    const expected = imageToInput(decodeImage(gradient), [28, 28, 1], [0, 1]);
    for (const row of rows) assert.deepEqual(row, expected);
  } finally {
    pool.close();
  }
});

Deno.test("the codec's errors come back as its classes", async () => {
  const pool = new DecodePool({ workers: 1, budgetMs: 5000, maxQueue: 8 });
  try {
    await assert.rejects(pool.decode(job(fixture("png_zero_width.png"))), ImageDecodeError);
    await assert.rejects(pool.decode(job(gradient, 100)), ImageTooLargeError);
    // The worker is still there for the next image.
    assert.equal((await pool.decode(job(gradient))).length, 784);
  } finally {
    pool.close();
  }
});

Deno.test("an image over the time budget is refused, its worker replaced; later images decode", async () => {
  const pool = new DecodePool({ workers: 1, budgetMs: 200, maxQueue: 8 });
  try {
    const bomb = pool.decode(job(fixture("png_4096x4096.png")));
    const after = pool.decode(job(gradient));
    await assert.rejects(
      bomb,
      (e: Error) => e instanceof DecodeBudgetError && /exceeded 200 ms/.test(e.message),
    );
    assert.equal((await after).length, 784);
  } finally {
    pool.close();
  }
});

Deno.test("a WAV decodes in a worker as the front end does; hostile WAVs come back with their reason", async () => {
  const pool = new DecodePool({ workers: 1, budgetMs: 5000, maxQueue: 8 });
  const limits = { maxSeconds: 30, maxBytes: 4 << 20 };
  try {
    const tone = encodeWav(Float32Array.from({ length: 12000 }, (_, i) => 0.3 * Math.sin(i / 7)), 16000);
    const decoded = await pool.decodeWav({ bytes: tone, ...limits });
    const expected = wavRequestToInput(tone, limits);
    assert.deepEqual(decoded.features, expected.features);
    assert.deepEqual(decoded.samples, expected.samples);
    const cases: [string, string][] = [
      ["wav_data_size_overstated.wav", "truncated-data"],
      ["wav_9_channels.wav", "bad-channels"],
      ["wav_500_hz.wav", "bad-sample-rate"],
      ["wav_40_seconds.wav", "too-long"],
    ];
    for (const [name, reason] of cases) {
      await assert.rejects(
        pool.decodeWav({ bytes: fixture(name), ...limits }),
        (e: Error) => e instanceof AudioInputError && e.reason === reason,
        name,
      );
    }
    await assert.rejects(
      pool.decodeWav({ bytes: tone, maxSeconds: 30, maxBytes: 100 }),
      (e: Error) => e instanceof AudioInputError && e.reason === "too-large",
    );
  } finally {
    pool.close();
  }
});

Deno.test("a full queue is refused at once; an aborted request's waiting images are dropped; close rejects", async () => {
  const pool = new DecodePool({ workers: 1, budgetMs: 5000, maxQueue: 2 });
  const failed = new AbortController();
  const first = pool.decode(job(gradient));
  const dropped = pool.decode(job(gradient), failed.signal);
  await assert.rejects(pool.decode(job(gradient)), DecodeQueueFullError);
  failed.abort();
  const droppedRejects = assert.rejects(dropped, /cancelled/);
  assert.equal((await first).length, 784);
  await droppedRejects;
  const pending = pool.decode(job(gradient));
  pool.close();
  await assert.rejects(pending, DecodePoolClosedError);
  await assert.rejects(pool.decode(job(gradient)), DecodePoolClosedError);
});
