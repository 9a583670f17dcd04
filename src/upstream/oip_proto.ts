/**
 * Loads the Open Inference Protocol definitions (`proto/inference/open_inference_grpc.proto`) for
 * grpc-js, and the shapes of the messages used here (camelCase, int64 as numbers).
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/** Absolute path of the `proto/` folder. */
export const PROTO_ROOT = decodeURIComponent(new URL("../../proto/", import.meta.url).pathname);

/** proto-loader options shared by the sidecar: camelCase fields, int64 as numbers, enums as names. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

/** The OIP package definition. */
export function loadOipPackageDefinition(): protoLoader.PackageDefinition {
  return protoLoader.loadSync("inference/open_inference_grpc.proto", LOADER_OPTIONS);
}

// deno-lint-ignore no-explicit-any
type GrpcObject = any;

/** The `GRPCInferenceService` client constructor and service definition. */
export function oipService(): { Client: grpc.ServiceClientConstructor; definition: grpc.ServiceDefinition } {
  const pkg = grpc.loadPackageDefinition(loadOipPackageDefinition()) as GrpcObject;
  const Client = pkg.inference.GRPCInferenceService as grpc.ServiceClientConstructor;
  return { Client, definition: Client.service };
}

/** `ModelInferRequest.InferInputTensor` / `ModelInferResponse.InferOutputTensor` as loaded. */
export interface OipTensor {
  name: string;
  datatype: string;
  shape: number[];
  contents?: { fp32Contents?: number[] } | null;
}

/** `ModelInferRequest` as loaded. */
export interface OipInferRequest {
  modelName: string;
  modelVersion?: string;
  id?: string;
  inputs: OipTensor[];
  outputs?: { name: string }[];
  rawInputContents: Uint8Array[];
}

/** `ModelInferResponse` as loaded. */
export interface OipInferResponse {
  modelName: string;
  modelVersion?: string;
  id?: string;
  outputs: OipTensor[];
  rawOutputContents: Uint8Array[];
}

/** Little-endian float32 bytes of `values`. */
export function float32ToLeBytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
  return out;
}

/** Float32 values of little-endian bytes; the length must be a multiple of 4. */
export function leBytesToFloat32(bytes: Uint8Array): Float32Array {
  if (bytes.length % 4 !== 0) throw new RangeError(`FP32 byte length ${bytes.length} is not a multiple of 4`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** OIP raw BYTES layout: each element as a 4-byte little-endian length followed by its bytes. */
export function encodeBytesElements(elements: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(elements.reduce((s, e) => s + 4 + e.length, 0));
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const e of elements) {
    view.setUint32(offset, e.length, true);
    out.set(e, offset + 4);
    offset += 4 + e.length;
  }
  return out;
}

/**
 * The elements of OIP raw BYTES contents, as plain Uint8Array views (also of a Node Buffer); throws
 * RangeError when a length runs past the end.
 */
export function decodeBytesElements(raw: Uint8Array): Uint8Array[] {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out: Uint8Array[] = [];
  let offset = 0;
  while (offset < raw.length) {
    if (offset + 4 > raw.length) throw new RangeError(`BYTES element at byte ${offset}: truncated length`);
    const length = view.getUint32(offset, true);
    if (offset + 4 + length > raw.length) {
      throw new RangeError(
        `BYTES element at byte ${offset}: ${length} bytes declared, ${raw.length - offset - 4} left`,
      );
    }
    out.push(new Uint8Array(raw.buffer, raw.byteOffset + offset + 4, length));
    offset += 4 + length;
  }
  return out;
}
