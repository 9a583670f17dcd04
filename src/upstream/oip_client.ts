/**
 * An Open Inference Protocol upstream: `inference.GRPCInferenceService/ModelInfer` with the batch in
 * `raw_input_contents` (FP32 `[n, ...shape]`, little-endian; or, with the "wav" payload, BYTES `[n]`, one
 * WAV file per element, in the protocol's raw BYTES layout), scores read from `raw_output_contents` (or
 * from `contents.fp32_contents` when a server answers that way). ModelInfer is idempotent, so UNAVAILABLE
 * is retried within the deadline.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import {
  encodeBytesElements,
  float32ToLeBytes,
  leBytesToFloat32,
  type OipInferRequest,
  type OipInferResponse,
  oipService,
} from "./oip_proto.ts";
import { attemptTimeoutMs, withRetries } from "./retry.ts";
import { argmax, requestWavs, UpstreamError } from "./types.ts";
import type { Upstream, UpstreamAnswer, UpstreamPayload, UpstreamRequest } from "./types.ts";

/** Settings of an OIP upstream. */
export interface OipUpstreamOptions {
  /** "host:port" of the model server. */
  address: string;
  /** Model name on the server. */
  model: string;
  /** Name of the model's input tensor. */
  inputName: string;
  /** "tensor" (default): an FP32 input; "wav": a BYTES input, one WAV file per example. */
  payload?: UpstreamPayload;
  /** Name of the output tensor to read; empty: the first output. */
  outputName?: string;
  /** Per-attempt timeout. */
  timeoutMs: number;
  /** Retries of UNAVAILABLE answers. */
  retries: number;
  /** Use TLS (system roots, or `rootCerts`). */
  tls?: boolean;
  rootCerts?: Uint8Array;
  /** Called once per retried error. */
  onRetry?: (error: UpstreamError) => void;
  /**
   * Milliseconds without a call in flight after which the connection is closed (default
   * {@linkcode OIP_IDLE_CLOSE_MS}); the next call opens a new one.
   */
  idleCloseMs?: number;
}

/**
 * Default of {@linkcode OipUpstreamOptions.idleCloseMs}. Why the sidecar closes idle upstream connections
 * itself: Deno 2.9.6's HTTP/2 aborts the whole process (nghttp2 assertion or SIGSEGV, denoland/deno#36788)
 * when a GOAWAY arrives on an idle client connection, which is what an OIP server sends when it shuts down
 * or restarts gracefully; a connection the sidecar has already closed cannot receive one.
 */
export const OIP_IDLE_CLOSE_MS = 100;

/** A gRPC client of one model on an OIP server. */
export class OipUpstream implements Upstream {
  readonly description: string;
  readonly payload: UpstreamPayload;
  readonly #options: OipUpstreamOptions;
  readonly #credentials: grpc.ChannelCredentials;
  #client?: grpc.Client;
  #inFlight = 0;
  #idleTimer?: ReturnType<typeof setTimeout>;
  #connections = 0;

  constructor(options: OipUpstreamOptions) {
    this.#options = options;
    this.payload = options.payload ?? "tensor";
    this.description = `${this.payload === "wav" ? "oip+wav" : "oip"}://${options.address}/${options.model}`;
    this.#credentials = options.tls
      ? grpc.credentials.createSsl(options.rootCerts ? toBuffer(options.rootCerts) : null)
      : grpc.credentials.createInsecure();
  }

  /** How many connections (grpc-js channels) this upstream has opened so far. */
  get connectionsOpened(): number {
    return this.#connections;
  }

  /** Whether a connection is open now (closed after {@linkcode OipUpstreamOptions.idleCloseMs} idle). */
  get connected(): boolean {
    return this.#client !== undefined;
  }

  /** `ModelReady` of the configured model. */
  modelReady(timeoutMs = this.#options.timeoutMs): Promise<boolean> {
    return this.#unary<{ ready: boolean }>(
      "ModelReady",
      { name: this.#options.model, version: "" },
      timeoutMs,
    )
      .then((r) => r.ready);
  }

  /** Sends the batch as one ModelInfer call and splits the scores per example. */
  async classify(request: UpstreamRequest): Promise<UpstreamAnswer[]> {
    const { n, shape, rows } = request;
    const wav = this.payload === "wav";
    const inferRequest: OipInferRequest = {
      modelName: this.#options.model,
      inputs: [{
        name: this.#options.inputName,
        datatype: wav ? "BYTES" : "FP32",
        shape: wav ? [n] : [n, ...shape],
      }],
      outputs: this.#options.outputName ? [{ name: this.#options.outputName }] : [],
      rawInputContents: [
        wav ? encodeBytesElements(requestWavs(request, this.description)) : float32ToLeBytes(rows),
      ],
    };
    return await withRetries(
      { retries: this.#options.retries, baseDelayMs: 25, idempotent: true },
      request.deadline,
      async () => {
        const timeout = attemptTimeoutMs(this.#options.timeoutMs, request.deadline, this.description);
        const response = await this.#unary<OipInferResponse>("ModelInfer", inferRequest, timeout);
        return this.#answers(response, n);
      },
      this.#options.onRetry,
    );
  }

  #answers(response: OipInferResponse, n: number): UpstreamAnswer[] {
    const outputs = response.outputs ?? [];
    let index = 0;
    if (this.#options.outputName) {
      index = outputs.findIndex((o) => o.name === this.#options.outputName);
      if (index < 0) {
        throw new UpstreamError(
          status.INTERNAL,
          `${this.description}: answer has no output "${this.#options.outputName}" (outputs: ${
            outputs.map((o) => o.name).join(", ") || "none"
          })`,
        );
      }
    }
    const output = outputs[index];
    if (!output) throw new UpstreamError(status.INTERNAL, `${this.description}: answer has no outputs`);
    if (output.datatype !== "FP32") {
      throw new UpstreamError(
        status.INTERNAL,
        `${this.description}: output "${output.name}" is ${output.datatype}, expected FP32`,
      );
    }
    const raw = response.rawOutputContents?.[index];
    const values = raw && raw.length > 0
      ? leBytesToFloat32(raw)
      : Float32Array.from(output.contents?.fp32Contents ?? []);
    const shape = output.shape.map(Number);
    const elements = shape.reduce((a, b) => a * b, 1);
    if (shape[0] !== n || values.length !== elements || elements % n !== 0) {
      throw new UpstreamError(
        status.INTERNAL,
        `${this.description}: output "${output.name}" has shape [${shape}] and ${values.length} values for a batch of ${n}`,
      );
    }
    const classes = elements / n;
    return Array.from({ length: n }, (_, i) => {
      const scores = Array.from(values.subarray(i * classes, (i + 1) * classes));
      return { label: argmax(scores), scores, json: "" };
    });
  }

  #unary<T>(method: string, request: unknown, timeoutMs: number): Promise<T> {
    const client = this.#acquire();
    return new Promise<T>((resolve, reject) => {
      // deno-lint-ignore no-explicit-any
      const fn = (client as any)[method].bind(client);
      fn(request, { deadline: Date.now() + timeoutMs }, (error: grpc.ServiceError | null, response: T) => {
        if (error) reject(mapGrpcError(error, this.description, timeoutMs));
        else resolve(response);
      });
    }).finally(() => this.#release());
  }

  #acquire(): grpc.Client {
    clearTimeout(this.#idleTimer);
    this.#inFlight++;
    if (!this.#client) {
      const { Client } = oipService();
      this.#client = new Client(this.#options.address, this.#credentials, {
        "grpc.max_receive_message_length": 64 * 1024 * 1024,
        "grpc.max_send_message_length": 64 * 1024 * 1024,
        // Its own subchannels, so that closing this client closes its connection at once.
        "grpc.use_local_subchannel_pool": 1,
      });
      this.#connections++;
    }
    return this.#client;
  }

  #release(): void {
    if (--this.#inFlight > 0) return;
    this.#idleTimer = setTimeout(() => this.#disconnect(), this.#options.idleCloseMs ?? OIP_IDLE_CLOSE_MS);
  }

  #disconnect(): void {
    this.#client?.close();
    this.#client = undefined;
  }

  /** Closes the connection; a later call opens a new one. */
  close(): void {
    clearTimeout(this.#idleTimer);
    this.#disconnect();
  }
}

function mapGrpcError(error: grpc.ServiceError, where: string, timeoutMs: number): UpstreamError {
  const details = error.details || error.message;
  switch (error.code) {
    case status.UNAVAILABLE:
      return new UpstreamError(status.UNAVAILABLE, `upstream ${where} is unavailable: ${details}`);
    case status.DEADLINE_EXCEEDED:
      return new UpstreamError(
        status.DEADLINE_EXCEEDED,
        `upstream ${where} did not answer within ${Math.round(timeoutMs)} ms`,
      );
    default:
      return new UpstreamError(
        error.code,
        `upstream ${where} answered ${status[error.code]}: ${details}`,
        false,
      );
  }
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes);
}
