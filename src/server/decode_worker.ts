/**
 * The body of a decode worker (`decode_pool.ts`), off the server's event loop: decodes one encoded image and
 * resizes it to the model's input, or one WAV request into the speaker model's features, and posts back the
 * arrays (transferred) or the error's name, message and reason code.
 * Posts `{ ready: true }` once its modules are loaded and warmed up, so that the pool's time budget does
 * not count the worker's start.
 *
 * @module
 */
import { decodeImage, encodeJpeg, encodePng } from "../image/codec.ts";
import { imageToInput } from "../image/resize.ts";
import { wavRequestToInput } from "../../audio/request.ts";
import type { DecodeJob, DecodeReply, DecodeRequest, DecodeResult } from "./decode_pool.ts";

/** The worker global as used here (the project's compiler options type `self` as a window). */
const scope = self as unknown as {
  onmessage: (event: MessageEvent<DecodeRequest>) => void;
  postMessage(message: DecodeReply, transfer?: Transferable[]): void;
};

function run(job: DecodeJob): DecodeResult {
  if (job.kind === "image") {
    return { rows: imageToInput(decodeImage(job.bytes, job.format, job.maxPixels), job.shape, job.range) };
  }
  const { features, samples } = wavRequestToInput(job.bytes, {
    maxSeconds: job.maxSeconds,
    maxBytes: job.maxBytes,
  });
  return { features, samples };
}

scope.onmessage = (event) => {
  const { id, job } = event.data;
  try {
    const result = run(job);
    const arrays = "rows" in result ? [result.rows] : [result.features, result.samples];
    scope.postMessage({ id, ...result }, arrays.map((a) => a.buffer));
  } catch (error) {
    const e = error as Error & { reason?: string };
    scope.postMessage({ id, error: { name: e.name, message: e.message, reason: e.reason } });
  }
};

// Decode one small PNG and JPEG before saying ready: a cold worker's first decode (JIT, zlib set-up) takes
// tens of milliseconds, which a request's time budget must not pay.
const warmUp = { width: 16, height: 16, channels: 1 as const, data: new Uint8Array(256).fill(128) };
for (const bytes of [encodePng(warmUp), encodeJpeg(warmUp)]) {
  imageToInput(decodeImage(bytes), [8, 8, 1], [0, 1]);
}
scope.postMessage({ ready: true });
