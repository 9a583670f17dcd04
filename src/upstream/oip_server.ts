/**
 * A small Open Inference Protocol server serving one tfjs LayersModel: the test suite and the serving
 * benchmark run it on loopback as the sidecar's upstream. Answers FP32 inputs given as
 * `raw_input_contents` or `contents.fp32_contents` (or, with `bytesInput`, a BYTES input of shape `[n]`
 * whose elements it turns into examples, e.g. WAV files into features), always answering with
 * `raw_output_contents`.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import * as tf from "@tensorflow/tfjs";
import type { ModelPart } from "../nip/types.ts";
import { Buffer } from "node:buffer";
import {
  decodeBytesElements,
  float32ToLeBytes,
  leBytesToFloat32,
  type OipInferRequest,
  oipService,
  type OipTensor,
} from "./oip_proto.ts";

/** Settings of {@link startOipServer}. */
export interface OipServerOptions {
  model: ModelPart;
  /** Model name served. */
  modelName: string;
  inputName?: string;
  outputName?: string;
  /** "host:port"; port 0 picks a free one. */
  bind?: string;
  /** Milliseconds to wait before answering ModelInfer (to test deadlines). */
  delayMs?: number;
  /**
   * Makes the input BYTES `[n]`: each element is turned into one example's values (row-major, the model's
   * input shape) by this; a throw answers INVALID_ARGUMENT with its message.
   */
  bytesInput?: (element: Uint8Array) => Float32Array;
}

/** A running OIP server. */
export interface OipServer {
  port: number;
  address: string;
  /** ModelInfer calls answered. */
  readonly inferCalls: number;
  /** ModelInfer calls received (answered or still waiting out `delayMs`). */
  readonly receivedCalls: number;
  close(): Promise<void>;
}

type Callback = grpc.sendUnaryData<unknown>;

function fail(callback: Callback, code: status, details: string): void {
  callback({ code, details, name: "Error", message: details } as grpc.ServiceError, null);
}

/** An input's values and batch shape, or what is wrong with it. */
type ReadInput = { values: Float32Array; shape: number[] } | string;

function readFp32Input(input: OipTensor, raw: Uint8Array | undefined, inputShape: number[]): ReadInput {
  if (input.datatype !== "FP32") return `input datatype ${input.datatype}, expected FP32`;
  const shape = input.shape.map(Number);
  if (
    shape.length !== inputShape.length + 1 || shape.slice(1).some((d, i) => d !== inputShape[i]) ||
    shape[0] < 1
  ) {
    return `input shape [${shape}], expected [-1,${inputShape}]`;
  }
  const values = raw && raw.length > 0
    ? leBytesToFloat32(raw)
    : Float32Array.from(input.contents?.fp32Contents ?? []);
  const expected = shape.reduce((a, b) => a * b, 1);
  if (values.length !== expected) {
    return `input has ${values.length} values, shape [${shape}] needs ${expected}`;
  }
  return { values, shape };
}

function readBytesInput(
  input: OipTensor,
  raw: Uint8Array | undefined,
  inputShape: number[],
  toExample: (element: Uint8Array) => Float32Array,
): ReadInput {
  if (input.datatype !== "BYTES") return `input datatype ${input.datatype}, expected BYTES`;
  const shape = input.shape.map(Number);
  if (shape.length !== 1 || shape[0] < 1) return `input shape [${shape}], expected [-1]`;
  const size = inputShape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(shape[0] * size);
  try {
    const elements = decodeBytesElements(raw ?? new Uint8Array(0));
    if (elements.length !== shape[0]) return `input has ${elements.length} elements, shape [${shape}]`;
    elements.forEach((element, i) => {
      const example = toExample(element);
      if (example.length !== size) {
        throw new Error(`element ${i} gives ${example.length} values, not ${size}`);
      }
      values.set(example, i * size);
    });
  } catch (error) {
    return `input: ${(error as Error).message}`;
  }
  return { values, shape: [shape[0], ...inputShape] };
}

/** Starts an OIP server on loopback (or `bind`). */
export function startOipServer(options: OipServerOptions): Promise<OipServer> {
  const inputName = options.inputName ?? "input";
  const outputName = options.outputName ?? "output";
  const model = options.model;
  const inputShape = (model.inputs[0].shape as (number | null)[]).slice(1) as number[];
  const outputShape = model.outputs[0].shape as (number | null)[];
  let inferCalls = 0;
  let receivedCalls = 0;
  const server = new grpc.Server({ "grpc.max_receive_message_length": 64 * 1024 * 1024 });
  const { definition } = oipService();
  const modelMatches = (name: string) => name === options.modelName;

  server.addService(definition, {
    ServerLive: (_call: unknown, cb: Callback) => cb(null, { live: true }),
    ServerReady: (_call: unknown, cb: Callback) => cb(null, { ready: true }),
    ModelReady: (call: grpc.ServerUnaryCall<{ name: string }, unknown>, cb: Callback) =>
      cb(null, { ready: modelMatches(call.request.name) }),
    ServerMetadata: (_call: unknown, cb: Callback) =>
      cb(null, { name: "nip-sidecar-oip-test-server", version: "1", extensions: [] }),
    ModelMetadata: (call: grpc.ServerUnaryCall<{ name: string }, unknown>, cb: Callback) => {
      if (!modelMatches(call.request.name)) {
        return fail(cb, status.NOT_FOUND, `unknown model "${call.request.name}"`);
      }
      cb(null, {
        name: options.modelName,
        versions: ["1"],
        platform: "tfjs_layers",
        inputs: [
          options.bytesInput
            ? { name: inputName, datatype: "BYTES", shape: [-1] }
            : { name: inputName, datatype: "FP32", shape: [-1, ...inputShape] },
        ],
        outputs: [{ name: outputName, datatype: "FP32", shape: outputShape.map((d) => d ?? -1) }],
      });
    },
    ModelInfer: (call: grpc.ServerUnaryCall<OipInferRequest, unknown>, cb: Callback) => {
      receivedCalls++;
      const answer = () => infer(call.request, cb);
      if (options.delayMs) setTimeout(answer, options.delayMs);
      else answer();
    },
  });

  function infer(request: OipInferRequest, cb: Callback): void {
    if (!modelMatches(request.modelName)) {
      return fail(cb, status.NOT_FOUND, `unknown model "${request.modelName}"`);
    }
    const input = request.inputs?.[0];
    if (!input || request.inputs.length !== 1 || input.name !== inputName) {
      return fail(cb, status.INVALID_ARGUMENT, `expected exactly one input named "${inputName}"`);
    }
    const read = options.bytesInput
      ? readBytesInput(input, request.rawInputContents?.[0], inputShape, options.bytesInput)
      : readFp32Input(input, request.rawInputContents?.[0], inputShape);
    if (typeof read === "string") return fail(cb, status.INVALID_ARGUMENT, read);
    const { values, shape } = read;
    inferCalls++;
    const [scores, scoreShape] = tf.tidy(() => {
      const y = model.predict(tf.tensor(values, shape)) as tf.Tensor;
      return [y.dataSync() as Float32Array, y.shape];
    });
    cb(null, {
      modelName: options.modelName,
      modelVersion: "1",
      id: request.id ?? "",
      outputs: [{ name: outputName, datatype: "FP32", shape: scoreShape }],
      rawOutputContents: [Buffer.from(float32ToLeBytes(scores))],
    });
  }

  return new Promise((resolve, reject) => {
    server.bindAsync(
      options.bind ?? "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (error, port) => {
        if (error) return reject(error);
        resolve({
          port,
          address: `127.0.0.1:${port}`,
          get receivedCalls() {
            return receivedCalls;
          },
          get inferCalls() {
            return inferCalls;
          },
          close: () => new Promise<void>((r) => server.tryShutdown(() => r())),
        });
      },
    );
  });
}

/**
 * `deno run -A src/upstream/oip_server.ts --model models/fashion-lenet [--bind 127.0.0.1:8001]
 * [--model-name NAME] [--backend wasm]`: serves a saved LayersModel over OIP (a stand-in model server for
 * local runs and the serving benchmark). Prints one JSON line `{"listening": "host:port"}`.
 */
if (import.meta.main) {
  const { loadLayersModel } = await import("../engine/model_io.ts");
  const { initBackend, parseBackendName } = await import("../engine/backend.ts");
  const flag = (name: string, fallback: string) => {
    const i = Deno.args.indexOf(`--${name}`);
    return i >= 0 && Deno.args[i + 1] !== undefined ? Deno.args[i + 1] : fallback;
  };
  await initBackend(parseBackendName(flag("backend", "wasm")));
  const modelDir = flag("model", "models/fashion-lenet");
  const model = await loadLayersModel(modelDir);
  const modelName = flag("model-name", modelDir.replace(/\/$/, "").split("/").pop()!);
  const server = await startOipServer({ model, modelName, bind: flag("bind", "127.0.0.1:8001") });
  console.log(JSON.stringify({ listening: `127.0.0.1:${server.port}`, model: modelName }));
  const stop = async () => {
    await server.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", () => void stop());
  Deno.addSignalListener("SIGINT", () => void stop());
}
