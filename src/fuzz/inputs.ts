/**
 * `nip.v1.Input` messages for the fuzzer, valid and mutated, at the wire level: raw tensors (with every way
 * a shape, a dtype or the data can be wrong), encoded images (valid or hostile) and WAV files.
 *
 * @module
 */
import { HOSTILE_IMAGES, type HostileImage, validJpeg, validPng } from "./images.ts";
import type { Rand } from "./rand.ts";
import { HOSTILE_WAVS, type HostileWav, validWav } from "./wavs.ts";
import { MessageWriter } from "./wire.ts";

/** What the generators know about a target model (from its `Describe`). */
export interface ModelShape {
  modality: "image" | "audio";
  /** One example's input shape, [h, w, c]. */
  shape: [number, number, number];
  range: [number, number];
  /** Audio models: the rate WAVs are read at. */
  sampleRate: number;
}

/** What a generated input should get: OK, a rejection (INVALID_ARGUMENT / RESOURCE_EXHAUSTED), or either. */
export type Expectation = "ok" | "reject" | "any";

/** An encoded `Input`, what it is, and what the server should answer. */
export interface GeneratedInput {
  input: MessageWriter;
  mutation: string;
  expect: Expectation;
}

const FLOAT32 = 1;
const UINT8 = 2;

function tensorInput(shape: (number | bigint)[], dtype: number, data: Uint8Array): MessageWriter {
  const tensor = new MessageWriter().packed(1, shape).varint(2, dtype).bytes(3, data);
  return new MessageWriter().bytes(1, tensor);
}

function float32Bytes(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
  return out;
}

function randomValues(rand: Rand, count: number, [lo, hi]: [number, number]): Float32Array {
  return Float32Array.from({ length: count }, () => lo + rand.float() * (hi - lo));
}

/** An `Input` holding encoded images. */
export function imagesInput(images: Uint8Array[]): MessageWriter {
  const list = new MessageWriter();
  for (const data of images) list.bytes(1, new MessageWriter().bytes(1, data));
  return new MessageWriter().bytes(2, list);
}

/** An `Input` holding one WAV file. */
export function wavInput(wav: Uint8Array): MessageWriter {
  return new MessageWriter().bytes(3, wav);
}

/** A valid input for the model: a float32 or uint8 tensor of 1-2 examples, a PNG/JPEG, or a WAV. */
export function validInput(rand: Rand, model: ModelShape): GeneratedInput {
  if (model.modality === "audio") {
    return {
      input: wavInput(validWav(rand, rand.pick([model.sampleRate, 16000, 22050]))),
      mutation: "wav",
      expect: "ok",
    };
  }
  const [h, w, c] = model.shape;
  const n = rand.int(1, 2);
  const shape = n === 1 && rand.chance(0.5) ? [h, w, c] : [n, h, w, c];
  switch (rand.pick(["float32", "uint8", "png", "jpeg"] as const)) {
    case "float32":
      return {
        input: tensorInput(shape, FLOAT32, float32Bytes(randomValues(rand, n * h * w * c, model.range))),
        mutation: "float32",
        expect: "ok",
      };
    case "uint8":
      return { input: tensorInput(shape, UINT8, rand.bytes(n * h * w * c)), mutation: "uint8", expect: "ok" };
    case "png":
      return {
        input: imagesInput([validPng(rand.int(8, 64), rand.int(8, 64), rand)]),
        mutation: "png",
        expect: "ok",
      };
    case "jpeg":
      return {
        input: imagesInput([validJpeg(rand.int(8, 64), rand.int(8, 64), rand)]),
        mutation: "jpeg",
        expect: "ok",
      };
  }
}

/** Tensor mutations: each builds a tensor input that is wrong in one way (or, for bit flips, maybe not). */
const TENSOR_MUTATIONS: Record<string, (rand: Rand, m: ModelShape) => [MessageWriter, Expectation]> = {
  "nan": (r, m) => poisoned(r, m, NaN),
  "inf": (r, m) => poisoned(r, m, Infinity),
  "neg-inf": (r, m) => poisoned(r, m, -Infinity),
  "out-of-range": (r, m) => poisoned(r, m, m.range[1] + 1 + r.float() * 1e6),
  "short-data": (r, m) => {
    const [h, w, c] = m.shape;
    return [tensorInput(m.shape, UINT8, r.bytes(r.int(0, h * w * c - 1))), "reject"];
  },
  "long-data": (r, m) => {
    const [h, w, c] = m.shape;
    return [tensorInput(m.shape, UINT8, r.bytes(h * w * c + r.int(1, 64))), "reject"];
  },
  "float32-odd-length": (r, m) => {
    const [h, w, c] = m.shape;
    return [tensorInput(m.shape, FLOAT32, r.bytes(h * w * c * 4 - r.int(1, 3))), "reject"];
  },
  "rank-2": (r, m) => [tensorInput(m.shape.slice(0, 2), UINT8, r.bytes(m.shape[0] * m.shape[1])), "reject"],
  "rank-7": (
    r,
    m,
  ) => [tensorInput([1, 1, 1, ...m.shape, 1], UINT8, r.bytes(m.shape.reduce((a, b) => a * b))), "reject"],
  "empty-shape": (r) => [tensorInput([], UINT8, r.bytes(1)), "reject"],
  "wrong-height": (r, m) => {
    const [h, w, c] = m.shape;
    return [tensorInput([h - 1, w, c], UINT8, r.bytes((h - 1) * w * c)), "reject"];
  },
  "wrong-channels": (r, m) => {
    const [h, w, c] = m.shape;
    return [tensorInput([h, w, c + 2], UINT8, r.bytes(h * w * (c + 2))), "reject"];
  },
  "zero-batch": (_r, m) => [tensorInput([0, ...m.shape], UINT8, new Uint8Array()), "reject"],
  "zero-dim": (_r, m) => [tensorInput([m.shape[0], 0, m.shape[2]], UINT8, new Uint8Array()), "reject"],
  "negative-dim": (
    r,
    m,
  ) => [tensorInput([-1, ...m.shape], UINT8, r.bytes(m.shape.reduce((a, b) => a * b))), "reject"],
  "negative-dims-product-positive": (r, m) => {
    const [h, w, c] = m.shape;
    return [tensorInput([-h, -w, c], UINT8, r.bytes(h * w * c)), "reject"];
  },
  "huge-batch": (r, m) => [tensorInput([2 ** 31, ...m.shape], UINT8, r.bytes(64)), "reject"],
  "int64-max-dim": (r, m) => [tensorInput([9223372036854775807n, ...m.shape], UINT8, r.bytes(64)), "reject"],
  "dims-overflow-to-match": (_r, m) => {
    // 2^32 * 784 wraps to 0 in 32-bit arithmetic; the data matches a product computed that way.
    return [tensorInput([2 ** 32, ...m.shape], UINT8, new Uint8Array()), "reject"];
  },
  "batch-over-limit": (r, m) => {
    const n = 300;
    return [tensorInput([n, ...m.shape], UINT8, r.bytes(n * m.shape.reduce((a, b) => a * b))), "reject"];
  },
  "dtype-unspecified": (
    r,
    m,
  ) => [tensorInput(m.shape, 0, r.bytes(m.shape.reduce((a, b) => a * b))), "reject"],
  "dtype-unknown": (
    r,
    m,
  ) => [
    tensorInput(m.shape, r.pick([3, 99, 2 ** 31 - 1, -1]), r.bytes(m.shape.reduce((a, b) => a * b) * 4)),
    "reject",
  ],
  "empty-data": (_r, m) => [tensorInput(m.shape, FLOAT32, new Uint8Array()), "reject"],
  "bit-flips": (r, m) => {
    const data = float32Bytes(randomValues(r, m.shape.reduce((a, b) => a * b), m.range));
    for (let k = r.int(1, 16); k > 0; k--) data[r.int(0, data.length - 1)] ^= 1 << r.int(0, 7);
    return [tensorInput(m.shape, FLOAT32, data), "any"];
  },
};

function poisoned(rand: Rand, m: ModelShape, value: number): [MessageWriter, Expectation] {
  const values = randomValues(rand, m.shape.reduce((a, b) => a * b), m.range);
  values[rand.int(0, values.length - 1)] = value;
  return [tensorInput(m.shape, FLOAT32, float32Bytes(values)), "reject"];
}

/** A tensor input wrong in one randomly chosen way (an audio model rejects every tensor). */
export function mutatedTensor(rand: Rand, model: ModelShape): GeneratedInput {
  const mutation = rand.pick(Object.keys(TENSOR_MUTATIONS));
  const [input, expect] = TENSOR_MUTATIONS[mutation](rand, model);
  return { input, mutation, expect: model.modality === "audio" ? "reject" : expect };
}

/** Hostile images whose decoding may legitimately succeed (then OK is a correct answer). */
const MAYBE_DECODABLE: ReadonlySet<HostileImage> = new Set([
  "png-header-smaller-than-data",
  "png-zlib-bomb",
  "png-decompression-heavy",
]);

/** A hostile PNG/JPEG input (sometimes beside a valid image in the same request). */
export function hostileImage(rand: Rand, model: ModelShape): GeneratedInput {
  const kind = rand.pick(Object.keys(HOSTILE_IMAGES) as HostileImage[]);
  const images = [HOSTILE_IMAGES[kind](rand)];
  if (rand.chance(0.3)) images.unshift(validPng(model.shape[1], model.shape[0], rand));
  const expect = model.modality === "audio" ? "reject" : MAYBE_DECODABLE.has(kind) ? "any" : "reject";
  return { input: imagesInput(images), mutation: kind, expect };
}

/** Hostile WAVs that a tolerant decoder may read (a RIFF size or an odd data size that can be clamped). */
const MAYBE_READABLE: ReadonlySet<HostileWav> = new Set(["wav-riff-size-lies", "wav-data-size-odd"]);

/** A hostile WAV input. */
export function hostileWav(rand: Rand, model: ModelShape): GeneratedInput {
  const kind = rand.pick(Object.keys(HOSTILE_WAVS) as HostileWav[]);
  const expect = model.modality === "audio" && MAYBE_READABLE.has(kind) ? "any" : "reject";
  return { input: wavInput(HOSTILE_WAVS[kind](rand)), mutation: kind, expect };
}
