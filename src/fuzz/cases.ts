/**
 * The fuzz case generator: case `index` of a run seeded `seed` is always the same bytes, so a failing case
 * is replayed from its id alone. A case picks an RPC, a family (valid, a mutated tensor, a hostile image or
 * WAV, a wrong field, garbage on the wire, oversized metadata) and a mutation within it, and records what
 * the server should answer.
 *
 * @module
 */
import {
  type Expectation,
  type GeneratedInput,
  hostileImage,
  hostileWav,
  imagesInput,
  type ModelShape,
  mutatedTensor,
  validInput,
} from "./inputs.ts";
import { Rand } from "./rand.ts";
import { MessageWriter } from "./wire.ts";

/** The RPCs the fuzzer covers. */
export const RPCS = [
  "Defend",
  "Classify",
  "DefendStream",
  "ClassifyStream",
  "Predict",
  "Describe",
  "Certify",
  "Health",
] as const;

/** One covered RPC. */
export type Rpc = typeof RPCS[number];

/** gRPC method path of each RPC. */
export const RPC_PATHS: Record<Rpc, string> = {
  Defend: "/nip.v1.DefenseService/Defend",
  Classify: "/nip.v1.DefenseService/Classify",
  DefendStream: "/nip.v1.DefenseService/DefendStream",
  ClassifyStream: "/nip.v1.DefenseService/ClassifyStream",
  Predict: "/nip.v1.DefenseService/Predict",
  Describe: "/nip.v1.DefenseService/Describe",
  Certify: "/nip.v1.DefenseService/Certify",
  Health: "/grpc.health.v1.Health/Check",
};

/** Whether an RPC is a bidirectional stream. */
export function isStream(rpc: Rpc): boolean {
  return rpc === "DefendStream" || rpc === "ClassifyStream";
}

/** The case families. */
export type Family =
  | "valid"
  | "tensor-mutation"
  | "hostile-image"
  | "hostile-wav"
  | "field-mutation"
  | "wire-garbage"
  | "oversized-metadata";

/** One generated case. */
export interface FuzzCase {
  /** `<seed>-<index>`: what `--replay` takes. */
  id: string;
  rpc: Rpc;
  /** Which served model it is aimed at. */
  target: "image" | "audio";
  family: Family;
  /** What was done to the request (streams: to each message, comma-separated). */
  mutation: string;
  /** The serialized request (unary) or the stream's messages, in order. */
  messages: Uint8Array[];
  /** What each message should get. */
  expect: Expectation[];
  /** Extra call metadata (oversized-metadata cases). */
  metadata: Record<string, string>;
}

/** The served models the generator aims at (from each target's `Describe`). */
export type Models = { image?: ModelShape; audio?: ModelShape };

/** Parses a case id back into its seed and index. */
export function parseCaseId(id: string): { seed: number; index: number } {
  const match = /^(\d+)-(\d+)$/.exec(id);
  if (!match) throw new Error(`case id "${id}": expected <seed>-<index>, e.g. 7-1234`);
  return { seed: Number(match[1]), index: Number(match[2]) };
}

const RPC_WEIGHTS: Record<Rpc, number> = {
  Defend: 3,
  Classify: 2,
  DefendStream: 1.5,
  ClassifyStream: 1,
  Predict: 2,
  Describe: 0.7,
  Certify: 1,
  Health: 0.7,
};

const INPUT_FAMILIES: Record<Family, number> = {
  "valid": 2,
  "tensor-mutation": 2.5,
  "hostile-image": 1.5,
  "hostile-wav": 1,
  "field-mutation": 1.5,
  "wire-garbage": 1.5,
  "oversized-metadata": 0.4,
};

/** Families of the RPCs that take no input (Describe, Health). */
const PLAIN_FAMILIES = {
  "valid": 1,
  "field-mutation": 1,
  "wire-garbage": 1,
  "oversized-metadata": 0.3,
} as const;

/** The non-input fields of a request; absent ones are not sent. */
interface RequestFields {
  model?: string;
  input?: MessageWriter;
  outputFormat?: number;
  skipVerdictAfter?: boolean;
  policy?: number;
  certify?: { sigma?: number; n0?: number; n?: number; alpha?: number; seed?: number };
  /** An unknown field (number 99), which proto3 must ignore. */
  unknownField?: boolean;
}

function encodeRequest(rpc: Rpc, f: RequestFields): MessageWriter {
  const w = new MessageWriter();
  if (rpc === "Health") return f.model === undefined ? w : w.bytes(1, f.model);
  if (f.model !== undefined) w.bytes(1, f.model);
  if (f.input) w.bytes(2, f.input);
  if (rpc === "Certify") {
    const c = f.certify ?? {};
    if (c.sigma !== undefined) w.double(3, c.sigma);
    if (c.n0 !== undefined) w.varint(4, c.n0);
    if (c.n !== undefined) w.varint(5, c.n);
    if (c.alpha !== undefined) w.double(6, c.alpha);
    if (c.seed !== undefined) w.varint(7, c.seed);
  } else if (rpc !== "Predict" && rpc !== "Describe") {
    if (f.outputFormat !== undefined) w.varint(3, f.outputFormat);
    if (f.skipVerdictAfter) w.varint(4, 1);
    if (f.policy !== undefined) w.varint(5, f.policy);
  }
  if (f.unknownField) w.bytes(99, "ignored");
  return w;
}

/** A small, valid Certify request's sampling (keeps a case to tens of forwards). */
function smallCertify(rand: Rand): RequestFields["certify"] {
  return { n0: rand.int(2, 8), n: rand.int(8, 24), alpha: 0.01, seed: rand.int(1, 1_000_000) };
}

/** Field-level mutations: each returns the fields and what the server should answer. */
function fieldMutation(rpc: Rpc, rand: Rand, model: ModelShape): [string, RequestFields, Expectation] {
  if (rpc === "Describe") {
    return rand.chance(0.5) ? ["unknown-model", { model: "no-such-model" }, "reject"] : ["empty", {}, "ok"];
  }
  if (rpc === "Health") {
    return rand.chance(0.5)
      ? ["unknown-service", { model: "no.such.Service" }, "reject"]
      : ["service-name", { model: "nip.v1.DefenseService" }, "ok"];
  }
  const valid = validInput(rand, model);
  const base: RequestFields = {
    input: valid.input,
    certify: rpc === "Certify" ? smallCertify(rand) : undefined,
  };
  const audio = model.modality === "audio";
  const common: [string, RequestFields, Expectation][] = [
    ["no-input", { ...base, input: undefined }, "reject"],
    ["unknown-model", { ...base, model: "no-such-model" }, "reject"],
    ["empty-images-list", { ...base, input: new MessageWriter().bytes(2, new MessageWriter()) }, "reject"],
    ["empty-image", { ...base, input: imagesInput([new Uint8Array()]) }, "reject"],
    ["empty-tensor", { ...base, input: new MessageWriter().bytes(1, new MessageWriter()) }, "reject"],
    ["unknown-field", { ...base, unknownField: true }, "ok"],
  ];
  const specific: [string, RequestFields, Expectation][] = rpc === "Certify"
    ? [
      ["sigma-mismatch", { ...base, certify: { ...base.certify, sigma: 0.777 } }, "reject"],
      ["sigma-nan", { ...base, certify: { ...base.certify, sigma: NaN } }, "reject"],
      ["sigma-negative", { ...base, certify: { ...base.certify, sigma: -1 } }, "reject"],
      ["n-over-max", { ...base, certify: { ...base.certify, n: 100_001 } }, "reject"],
      ["n0-over-max", { ...base, certify: { ...base.certify, n0: 10_001 } }, "reject"],
      ["n-uint32-max", { ...base, certify: { ...base.certify, n: 0xffffffff } }, "reject"],
      ["alpha-over-half", { ...base, certify: { ...base.certify, alpha: 0.7 } }, "reject"],
      ["alpha-negative", { ...base, certify: { ...base.certify, alpha: -0.1 } }, "reject"],
      ["alpha-nan", { ...base, certify: { ...base.certify, alpha: NaN } }, "reject"],
    ]
    : rpc === "Predict"
    ? []
    : [
      ["output-format-unknown", { ...base, outputFormat: rand.pick([6, 99, 2 ** 31 - 1, -1]) }, "any"],
      ["policy-unknown", { ...base, policy: rand.pick([8, 99, -1]) }, "any"],
      ["policy-detect", { ...base, policy: 2 }, "any"],
      ["policy-smoothed", { ...base, policy: 6 }, "any"],
      ["output-format-other-modality", { ...base, outputFormat: audio ? 2 : 5 }, "reject"],
      ["skip-verdict-after", { ...base, skipVerdictAfter: true }, "ok"],
      ["output-format-none", { ...base, outputFormat: 4 }, "ok"],
    ];
  return rand.pick([...common, ...specific]);
}

/** Wire-level garbage built from a valid request's bytes (or none). */
function wireGarbage(
  valid: Uint8Array,
  rand: Rand,
  emptyIsValid: boolean,
): [string, Uint8Array, Expectation] {
  switch (rand.pick(["random-bytes", "bit-flipped", "truncated", "doubled", "empty", "wrong-wire-type"])) {
    case "random-bytes":
      return ["random-bytes", rand.bytes(rand.int(1, 256)), "any"];
    case "bit-flipped": {
      const bytes = valid.slice();
      for (let k = rand.int(1, 8); k > 0 && bytes.length > 0; k--) {
        bytes[rand.int(0, bytes.length - 1)] ^= 1 << rand.int(0, 7);
      }
      return ["bit-flipped", bytes, "any"];
    }
    case "truncated":
      return ["truncated", valid.subarray(0, rand.int(0, Math.max(0, valid.length - 1))), "any"];
    case "doubled": {
      const bytes = new Uint8Array(valid.length * 2);
      bytes.set(valid);
      bytes.set(valid, valid.length);
      return ["doubled", bytes, "any"];
    }
    case "empty":
      return ["empty", new Uint8Array(), emptyIsValid ? "ok" : "reject"];
    default:
      // Field 2 (the input, length-delimited) sent as a varint.
      return ["wrong-wire-type", new MessageWriter().varint(2, rand.int(0, 1e6)).finish(), "any"];
  }
}

/** One request (not stream-wrapped) of family `family`: its bytes, mutation and expectation. */
function request(rpc: Rpc, family: Family, rand: Rand, model: ModelShape): [string, Uint8Array, Expectation] {
  const plain = rpc === "Describe" || rpc === "Health";
  const certify = rpc === "Certify" ? smallCertify(rand) : undefined;
  const validFields = (): [string, RequestFields] =>
    plain ? ["default", {}] : (() => {
      const v = validInput(rand, model);
      return [v.mutation, { input: v.input, certify }];
    })();
  const withInput = (g: GeneratedInput): [string, Uint8Array, Expectation] => [
    g.mutation,
    encodeRequest(rpc, { input: g.input, certify }).finish(),
    g.expect,
  ];
  switch (family) {
    case "valid":
    case "oversized-metadata": {
      const [mutation, fields] = validFields();
      return [mutation, encodeRequest(rpc, fields).finish(), "ok"];
    }
    case "tensor-mutation":
      return withInput(mutatedTensor(rand, model));
    case "hostile-image":
      return withInput(hostileImage(rand, model));
    case "hostile-wav":
      return withInput(hostileWav(rand, model));
    case "field-mutation": {
      const [mutation, fields, expect] = fieldMutation(rpc, rand, model);
      return [mutation, encodeRequest(rpc, fields).finish(), expect];
    }
    case "wire-garbage": {
      const [, fields] = validFields();
      return wireGarbage(encodeRequest(rpc, fields).finish(), rand, plain);
    }
  }
}

/** Oversized metadata: one huge value, or very many keys. */
function oversizedMetadata(rand: Rand): [string, Record<string, string>] {
  if (rand.chance(0.5)) return ["metadata-64k-value", { "x-fuzz-big": "v".repeat(64 * 1024) }];
  return [
    "metadata-500-keys",
    Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`x-fuzz-${i}`, "v".repeat(64)])),
  ];
}

/** Generates case `index` of the run seeded `seed` against `models`. */
export function generateCase(seed: number, index: number, models: Models): FuzzCase {
  const rand = Rand.forCase(seed, index);
  const rpc = rand.weighted(RPC_WEIGHTS);
  const target = models.audio && (!models.image || rand.chance(0.2)) ? "audio" : "image";
  const model = models[target]!;
  const family: Family = rpc === "Describe" || rpc === "Health"
    ? rand.weighted(PLAIN_FAMILIES)
    : rand.weighted(INPUT_FAMILIES);
  const base = { id: `${seed}-${index}`, rpc, target, family } as const;
  let metadata: Record<string, string> = {};
  let metadataMutation = "";
  if (family === "oversized-metadata") [metadataMutation, metadata] = oversizedMetadata(rand);
  if (!isStream(rpc)) {
    const [mutation, bytes, expect] = request(rpc, family, rand, model);
    return { ...base, mutation: metadataMutation || mutation, messages: [bytes], expect: [expect], metadata };
  }
  // A stream: 1-5 messages, the first of the case's family, the others valid or mutated (a bad message must
  // not end the stream, so the good ones around it are part of the check).
  const count = rand.int(1, 5);
  const messages: Uint8Array[] = [];
  const expect: Expectation[] = [];
  const mutations: string[] = [];
  const inner = rpc === "DefendStream" ? "Defend" : "Classify";
  for (let i = 0; i < count; i++) {
    const f: Family = i === 0
      ? family
      : rand.weighted({ "valid": 2, "tensor-mutation": 1, "hostile-image": 1 });
    const [m, bytes, e] = request(inner, f, rand, model);
    mutations.push(i === 0 ? metadataMutation || m : m);
    // Garbage goes into the stream message itself, not into its inner request (which is merely undecodable
    // when the stream message is whole).
    messages.push(
      f === "wire-garbage" ? bytes : new MessageWriter().bytes(1, `m${i}`).bytes(2, bytes).finish(),
    );
    expect.push(e);
  }
  return { ...base, mutation: mutations.join(","), messages, expect, metadata };
}
