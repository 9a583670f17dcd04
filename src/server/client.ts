/**
 * A small promise-based client of `nip.v1.DefenseService` (grpc-js + proto-loader) with helpers to
 * build tensor, image and WAV inputs and read tensor outputs. Used by the examples, tests and the
 * benchmark.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { loadNipPackageDefinition } from "./server.ts";

/** `nip.v1.Tensor` as sent and received. */
export interface TensorMessageOut {
  shape: number[];
  dtype: string;
  data: Uint8Array;
}

/** Per-call options. */
export interface CallOptions {
  /** Milliseconds until the call's deadline. */
  timeoutMs?: number;
}

// deno-lint-ignore no-explicit-any
type Message = any;

/**
 * Whether a call ended because its connection went away under it, as calls on a grpc-js client under Deno
 * do when the sidecar closes a connection after its cap of calls (`connection_cap.ts`): what
 * {@link DefenseClient.stream} and the fuzzer send again. Two forms: a call open when the GOAWAY came
 * (`UNAVAILABLE` "Connection dropped"), and one the client wrote before it read the GOAWAY, after the server
 * had ended every call it knew of and HTTP/2 had closed the idle connection (`INTERNAL` "... internal client
 * error: write EPIPE"; the server never saw the call).
 */
export function droppedConnection(code: grpc.status | "hang", details: string): boolean {
  return (code === grpc.status.UNAVAILABLE && details === "Connection dropped") ||
    (code === grpc.status.INTERNAL && /internal client error: write EPIPE$/.test(details));
}

/** How often {@link DefenseClient.stream} sends again the requests a dropped connection left unanswered. */
export const STREAM_RETRIES = 2;

/** A client of one sidecar. */
export class DefenseClient {
  /** The underlying grpc-js client (for streams and raw calls). */
  readonly raw: grpc.Client;

  constructor(
    address: string,
    credentials = grpc.credentials.createInsecure(),
    options: grpc.ChannelOptions = {},
  ) {
    // deno-lint-ignore no-explicit-any
    const pkg = grpc.loadPackageDefinition(loadNipPackageDefinition()) as any;
    this.raw = new pkg.nip.v1.DefenseService(address, credentials, {
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
      "grpc.max_send_message_length": 64 * 1024 * 1024,
      ...options,
    });
  }

  #unary(method: string, request: Message, options: CallOptions): Promise<Message> {
    return new Promise((resolve, reject) => {
      const metadata = new grpc.Metadata();
      const callOptions: grpc.CallOptions = options.timeoutMs
        ? { deadline: Date.now() + options.timeoutMs }
        : {};
      // deno-lint-ignore no-explicit-any
      (this.raw as any)[method](
        request,
        metadata,
        callOptions,
        (error: grpc.ServiceError | null, response: Message) => error ? reject(error) : resolve(response),
      );
    });
  }

  /** `Defend`. */
  defend(request: Message, options: CallOptions = {}): Promise<Message> {
    return this.#unary("Defend", request, options);
  }

  /** `Classify`. */
  classify(request: Message, options: CallOptions = {}): Promise<Message> {
    return this.#unary("Classify", request, options);
  }

  /** `Predict` (bare prediction). */
  predict(request: Message, options: CallOptions = {}): Promise<Message> {
    return this.#unary("Predict", request, options);
  }

  /** `Certify` (randomized smoothing's certificates). */
  certify(request: Message, options: CallOptions = {}): Promise<Message> {
    return this.#unary("Certify", request, options);
  }

  /** `Describe`. */
  describe(request: Message = {}, options: CallOptions = {}): Promise<Message> {
    return this.#unary("Describe", request, options);
  }

  /**
   * Sends every request on a `DefendStream` (or `ClassifyStream`) and collects the answers, one per request
   * in request order. When the connection drops under the stream (`UNAVAILABLE` "Connection dropped": the
   * sidecar closes each connection after its cap of calls, and grpc-js under Deno ends the streams open at
   * that moment), the requests without an answer are sent again on a new stream, at most
   * {@link STREAM_RETRIES} times, each retry reported to `onRetry`. Requests need distinct ids.
   */
  async stream(
    method: "DefendStream" | "ClassifyStream",
    requests: { id: string; request: Message }[],
    onRetry?: () => void,
  ): Promise<Message[]> {
    const answered = new Map<string, Message>();
    let pending = requests;
    for (let attempt = 0;; attempt++) {
      try {
        await this.#streamOnce(method, pending, (answer) => answered.set(answer.id, answer));
        break;
      } catch (error) {
        const e = error as grpc.ServiceError;
        if (!droppedConnection(e.code, e.details) || attempt === STREAM_RETRIES) throw error;
        onRetry?.();
        pending = pending.filter((r) => !answered.has(r.id));
        if (pending.length === 0) break;
      }
    }
    return requests.filter((r) => answered.has(r.id)).map((r) => answered.get(r.id));
  }

  #streamOnce(
    method: "DefendStream" | "ClassifyStream",
    requests: { id: string; request: Message }[],
    onAnswer: (answer: Message) => void,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      // deno-lint-ignore no-explicit-any
      const call = (this.raw as any)[method]() as grpc.ClientDuplexStream<Message, Message>;
      call.on("data", onAnswer);
      call.on("error", reject);
      call.on("end", resolve);
      for (const r of requests) call.write(r);
      call.end();
    });
  }

  close(): void {
    this.raw.close();
  }
}

/** A float32 tensor input of examples shaped `shape` ([h, w, c] or [n, h, w, c]). */
export function float32Input(values: Float32Array, shape: number[]): { tensor: TensorMessageOut } {
  const data = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) data.writeFloatLE(values[i], i * 4);
  return { tensor: { shape, dtype: "DATA_TYPE_FLOAT32", data } };
}

/** A uint8 tensor input ([0, 255] mapped onto the model's range). */
export function uint8Input(values: Uint8Array, shape: number[]): { tensor: TensorMessageOut } {
  return { tensor: { shape, dtype: "DATA_TYPE_UINT8", data: Buffer.from(values) } };
}

/** An encoded-images input (format detected from the bytes). */
export function imagesInput(images: Uint8Array[]): { images: { images: { data: Uint8Array }[] } } {
  return { images: { images: images.map((data) => ({ data: Buffer.from(data) })) } };
}

/** A WAV input (audio models): the bytes of one WAV file. */
export function wavInput(wav: Uint8Array): { wav: Buffer } {
  return { wav: Buffer.from(wav) };
}

/** The float32 values of a returned tensor. */
export function readFloat32(tensor: TensorMessageOut): Float32Array {
  const bytes = tensor.data;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}
