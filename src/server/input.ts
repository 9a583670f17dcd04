/**
 * Decodes and validates a request's `Input` (raw tensor or encoded images for image models, WAV through
 * the audio front end for audio models) into model input rows. Every rejection names the field and the
 * reason: INVALID_ARGUMENT for bad input, RESOURCE_EXHAUSTED for input over a size limit.
 *
 * @module
 */
import { status } from "@grpc/grpc-js";
import type { ImageFormatName } from "../image/codec.ts";
import { ImageDecodeError, ImageTooLargeError } from "../image/errors.ts";
import { AudioInputError } from "../../audio/errors.ts";
import type { AudioFrontEnd } from "./audio.ts";
import {
  DecodeBudgetError,
  type DecodePool,
  DecodePoolClosedError,
  DecodeQueueFullError,
} from "./decode_pool.ts";
import { invalidArgument, StatusError, tooLarge } from "./errors.ts";

/** `nip.v1.Tensor` as loaded by proto-loader. */
export interface TensorMessage {
  shape: number[];
  dtype: string;
  data: Uint8Array;
}

/** `nip.v1.EncodedImage` as loaded. */
export interface EncodedImageMessage {
  data: Uint8Array;
  format: string;
}

/** `nip.v1.Input` as loaded (oneof `kind`). */
export interface InputMessage {
  kind?: "tensor" | "images" | "wav";
  tensor?: TensorMessage | null;
  images?: { images: EncodedImageMessage[] } | null;
  wav?: Uint8Array;
}

/** What the model accepts and the limits in force. */
export interface InputSpec {
  /** [height, width, channels] (audio models: [frames, mel bands, 1]). */
  shape: [number, number, number];
  range: [number, number];
  maxExamples: number;
  maxImagePixels: number;
  /** The model's name, for messages. */
  model?: string;
  /** Set for an audio model: it takes WAV input only, through this front end. */
  audio?: AudioFrontEnd;
  /** Decodes images (and resizes them) and WAVs off the event loop. */
  decoder: DecodePool;
}

/** Decoded input: `n` examples, row-major. */
export interface DecodedInput {
  rows: Float32Array;
  n: number;
  /** WAV input: the decoded mono samples at the model's rate (one example), kept for resynthesis. */
  samples?: Float32Array;
}

/** Tolerance on the input range for float32 tensors (rounding in client-side scaling). */
const RANGE_TOLERANCE = 1e-6;

/** Decodes and validates one `Input`. Rejects with a {@link StatusError}. */
export async function decodeInput(
  input: InputMessage | null | undefined,
  spec: InputSpec,
): Promise<DecodedInput> {
  if (!input || !input.kind) {
    throw invalidArgument("input: missing; set one of input.tensor, input.images, input.wav");
  }
  if (spec.audio && input.kind !== "wav") {
    const model = spec.model ? `model "${spec.model}"` : "this model";
    throw invalidArgument(
      `input.${input.kind}: ${model} reads audio (a speaker model); send a WAV file in input.wav`,
    );
  }
  switch (input.kind) {
    case "tensor":
      return decodeTensor(input.tensor!, spec);
    case "images":
      return await decodeImages(input.images?.images ?? [], spec);
    case "wav":
      return await decodeWav(input.wav ?? new Uint8Array(), spec);
  }
  throw invalidArgument(`input: unknown kind ${JSON.stringify(input.kind)}`);
}

/**
 * Decodes a WAV request in the decode pool with the speaker front end's limits (`audio/request.ts`, as
 * `AudioFrontEnd.decode` runs it): a 4 MiB WAV at 384 kHz takes about a second to resample and featurize.
 */
async function decodeWav(bytes: Uint8Array, spec: InputSpec): Promise<DecodedInput> {
  const audio = spec.audio;
  if (!audio) {
    throw invalidArgument(
      "input.wav: this model takes images; WAV input needs a model with an audio front end",
    );
  }
  let decoded;
  try {
    decoded = await spec.decoder.decodeWav({ bytes, maxSeconds: audio.maxSeconds, maxBytes: audio.maxBytes });
  } catch (error) {
    // Every AudioInputError comes from the caller's bytes: the front end validates before it computes.
    if (!(error instanceof AudioInputError)) throw decodeStatus(error as Error, "input.wav");
    const message = `input.wav: ${error.message} (${error.reason})`;
    throw error.reason === "too-large" ? tooLarge(message) : invalidArgument(message);
  }
  const size = spec.shape[0] * spec.shape[1] * spec.shape[2];
  if (decoded.features.length !== size) {
    throw new Error(`audio front end gave ${decoded.features.length} features, the model reads ${size}`);
  }
  return { rows: decoded.features, n: 1, samples: decoded.samples };
}

function decodeTensor(tensor: TensorMessage, spec: InputSpec): DecodedInput {
  const shape = (tensor.shape ?? []).map(Number);
  const [h, w, c] = spec.shape;
  const want = `[${h}, ${w}, ${c}] or [n, ${h}, ${w}, ${c}]`;
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw invalidArgument(
      `input.tensor.shape: [${shape}] has a negative or non-integer dimension; expected ${want}`,
    );
  }
  const exampleShape = shape.length === 4 ? shape.slice(1) : shape;
  if ((shape.length !== 3 && shape.length !== 4) || exampleShape.some((d, i) => d !== spec.shape[i])) {
    throw invalidArgument(`input.tensor.shape: got [${shape}], expected ${want}`);
  }
  const n = shape.length === 4 ? shape[0] : 1;
  if (n < 1) throw invalidArgument("input.tensor.shape: batch dimension is 0; send at least one example");
  if (n > spec.maxExamples) {
    throw tooLarge(`input.tensor.shape: ${n} examples in one request, limit ${spec.maxExamples}`);
  }
  const elements = n * h * w * c;
  const data = tensor.data ?? new Uint8Array();
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const rows = new Float32Array(elements);
  const [lo, hi] = spec.range;
  if (tensor.dtype === "DATA_TYPE_FLOAT32") {
    if (data.byteLength !== elements * 4) {
      throw invalidArgument(
        `input.tensor.data: ${data.byteLength} bytes, shape [${shape}] as float32 needs ${elements * 4}`,
      );
    }
    for (let i = 0; i < elements; i++) {
      const v = view.getFloat32(i * 4, true);
      if (!Number.isFinite(v)) {
        throw invalidArgument(`input.tensor.data: element ${i} is ${v}; values must be finite`);
      }
      if (v < lo - RANGE_TOLERANCE || v > hi + RANGE_TOLERANCE) {
        throw invalidArgument(
          `input.tensor.data: element ${i} is ${v}, outside the model's input range [${lo}, ${hi}]`,
        );
      }
      rows[i] = Math.min(Math.max(v, lo), hi);
    }
    return { rows, n };
  }
  if (tensor.dtype === "DATA_TYPE_UINT8") {
    if (data.byteLength !== elements) {
      throw invalidArgument(
        `input.tensor.data: ${data.byteLength} bytes, shape [${shape}] as uint8 needs ${elements}`,
      );
    }
    const scale = (hi - lo) / 255;
    for (let i = 0; i < elements; i++) rows[i] = lo + data[i] * scale;
    return { rows, n };
  }
  throw invalidArgument(
    `input.tensor.dtype: ${tensor.dtype || "unset"}; expected DATA_TYPE_FLOAT32 or DATA_TYPE_UINT8`,
  );
}

/**
 * Decodes a request's images in the decode pool, each to one row. The first failure fails the request and
 * drops its images that have not started.
 */
async function decodeImages(images: EncodedImageMessage[], spec: InputSpec): Promise<DecodedInput> {
  if (images.length === 0) throw invalidArgument("input.images: empty; send at least one image");
  if (images.length > spec.maxExamples) {
    throw tooLarge(`input.images: ${images.length} images in one request, limit ${spec.maxExamples}`);
  }
  const size = spec.shape[0] * spec.shape[1] * spec.shape[2];
  const rows = new Float32Array(images.length * size);
  const failed = new AbortController();
  await Promise.all(images.map(async (image, i) => {
    const format: ImageFormatName | undefined = image.format === "IMAGE_FORMAT_PNG"
      ? "png"
      : image.format === "IMAGE_FORMAT_JPEG"
      ? "jpeg"
      : undefined;
    try {
      const job = { bytes: image.data ?? new Uint8Array(), format, maxPixels: spec.maxImagePixels };
      rows.set(
        await spec.decoder.decode({ ...job, shape: spec.shape, range: spec.range }, failed.signal),
        i * size,
      );
    } catch (error) {
      failed.abort();
      throw decodeStatus(error as Error, `input.images[${i}]`);
    }
  }));
  return { rows, n: images.length };
}

/** A decoding error as a status: bad bytes INVALID_ARGUMENT, over a limit RESOURCE_EXHAUSTED. */
function decodeStatus(error: Error, field: string): Error {
  const message = `${field}: ${error.message}`;
  if (error instanceof ImageDecodeError) return invalidArgument(message);
  if (
    error instanceof ImageTooLargeError || error instanceof DecodeBudgetError ||
    error instanceof DecodeQueueFullError
  ) return tooLarge(message);
  if (error instanceof DecodePoolClosedError) return new StatusError(status.UNAVAILABLE, message);
  return error;
}
