/**
 * Upstreams that receive the defended WAV of an audio model instead of its defended features
 * (`upstream.audioPayload: "wav"`):
 *
 * - Open Inference Protocol: one `ModelInfer` per batch with one `BYTES` input of shape `[n]`, each element
 *   one WAV file, sent in `raw_input_contents` in the protocol's raw BYTES layout (each element a 4-byte
 *   little-endian length, then its bytes); scores read as for the FP32 upstream.
 * - HTTP JSON: one request per example; the body template may place the WAV as `{{wav_base64}}` (with
 *   `{{wav_mime}}` = `audio/wav`) besides the placeholders of `src/upstream/http_json.ts` (`{{tensor}}`
 *   and `{{shape}}` then hold the defended features).
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import { HttpJsonUpstream, type HttpJsonUpstreamOptions } from "../upstream/http_json.ts";
import {
  leBytesToFloat32,
  type OipInferRequest,
  type OipInferResponse,
  oipService,
} from "../upstream/oip_proto.ts";
import { attemptTimeoutMs, withRetries } from "../upstream/retry.ts";
import { argmax, type UpstreamAnswer, UpstreamError } from "../upstream/types.ts";

/** A batch of defended WAVs, with the defended features they were made from. */
export interface WavUpstreamRequest {
  /** One WAV file per example. */
  wavs: Uint8Array[];
  /** Row-major [n, ...shape] defended features (for `{{tensor}}` in HTTP templates). */
  features: Float32Array;
  shape: [number, number, number];
  range: [number, number];
  /** Absolute deadline (epoch ms) of the client's call, if it set one. */
  deadline?: number;
}

/** A model server that takes the defended WAV. */
export interface WavUpstream {
  /** Where it forwards, e.g. "oip+wav://127.0.0.1:8001/speaker". */
  readonly description: string;
  /** Classifies a batch of WAVs; one answer per WAV. Throws {@link UpstreamError}. */
  classifyWavs(request: WavUpstreamRequest): Promise<UpstreamAnswer[]>;
  close(): void;
}

/** Whether an upstream takes WAVs (built for `audioPayload: "wav"`). */
export function isWavUpstream(upstream: object | undefined): upstream is WavUpstream {
  return upstream !== undefined && typeof (upstream as WavUpstream).classifyWavs === "function";
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

/** The elements of OIP raw BYTES contents; throws RangeError when a length runs past the end. */
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
    out.push(raw.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  return out;
}

/** Settings of {@link OipWavUpstream}. */
export interface OipWavUpstreamOptions {
  address: string;
  model: string;
  /** Name of the model's BYTES input. */
  inputName: string;
  /** Output to read; empty: the first. */
  outputName?: string;
  timeoutMs: number;
  retries: number;
  tls?: boolean;
  onRetry?: (error: UpstreamError) => void;
}

/** An OIP model server that reads WAV files (a BYTES input). */
export class OipWavUpstream implements WavUpstream {
  readonly description: string;
  readonly #options: OipWavUpstreamOptions;
  readonly #client: grpc.Client;

  constructor(options: OipWavUpstreamOptions) {
    this.#options = options;
    this.description = `oip+wav://${options.address}/${options.model}`;
    const { Client } = oipService();
    this.#client = new Client(
      options.address,
      options.tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure(),
      {
        "grpc.max_receive_message_length": 64 * 1024 * 1024,
        "grpc.max_send_message_length": 64 * 1024 * 1024,
      },
    );
  }

  classifyWavs(request: WavUpstreamRequest): Promise<UpstreamAnswer[]> {
    const n = request.wavs.length;
    const inferRequest: OipInferRequest = {
      modelName: this.#options.model,
      inputs: [{ name: this.#options.inputName, datatype: "BYTES", shape: [n] }],
      outputs: this.#options.outputName ? [{ name: this.#options.outputName }] : [],
      rawInputContents: [encodeBytesElements(request.wavs)],
    };
    return withRetries(
      { retries: this.#options.retries, baseDelayMs: 25, idempotent: true },
      request.deadline,
      async () => {
        const timeout = attemptTimeoutMs(this.#options.timeoutMs, request.deadline, this.description);
        return this.#answers(await this.#infer(inferRequest, timeout), n);
      },
      this.#options.onRetry,
    );
  }

  #infer(request: OipInferRequest, timeoutMs: number): Promise<OipInferResponse> {
    return new Promise((resolve, reject) => {
      // deno-lint-ignore no-explicit-any
      (this.#client as any).ModelInfer(
        request,
        { deadline: Date.now() + timeoutMs },
        (error: grpc.ServiceError | null, response: OipInferResponse) => {
          if (!error) return resolve(response);
          const details = error.details || error.message;
          if (error.code === status.UNAVAILABLE) {
            reject(
              new UpstreamError(
                status.UNAVAILABLE,
                `upstream ${this.description} is unavailable: ${details}`,
              ),
            );
          } else if (error.code === status.DEADLINE_EXCEEDED) {
            reject(
              new UpstreamError(
                status.DEADLINE_EXCEEDED,
                `upstream ${this.description} did not answer within ${Math.round(timeoutMs)} ms`,
              ),
            );
          } else {
            reject(
              new UpstreamError(
                error.code,
                `upstream ${this.description} answered ${status[error.code]}: ${details}`,
                false,
              ),
            );
          }
        },
      );
    });
  }

  #answers(response: OipInferResponse, n: number): UpstreamAnswer[] {
    const outputs = response.outputs ?? [];
    const index = this.#options.outputName
      ? outputs.findIndex((o) => o.name === this.#options.outputName)
      : 0;
    const output = outputs[index];
    if (!output) {
      throw new UpstreamError(
        status.INTERNAL,
        `${this.description}: answer has no output ${this.#options.outputName || ""} (outputs: ${
          outputs.map((o) => o.name).join(", ") || "none"
        })`,
      );
    }
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
        `${this.description}: output "${output.name}" has shape [${shape}] and ${values.length} values ` +
          `for ${n} WAVs`,
      );
    }
    const classes = elements / n;
    return Array.from({ length: n }, (_, i) => {
      const scores = Array.from(values.subarray(i * classes, (i + 1) * classes));
      return { label: argmax(scores), scores, json: "" };
    });
  }

  close(): void {
    this.#client.close();
  }
}

const WAV_PLACEHOLDER = /\{\{\s*wav_base64\s*\}\}/g;
const WAV_MIME_PLACEHOLDER = /\{\{\s*wav_mime\s*\}\}/g;
const INDEX_PLACEHOLDER = /\{\{\s*index\s*\}\}/g;

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/**
 * An HTTP JSON upstream that takes the defended WAV: the WAV placeholders are filled first, then the
 * request goes out through {@link HttpJsonUpstream} (same timeouts, retries, error mapping, answer path).
 */
export class HttpWavUpstream implements WavUpstream {
  readonly description: string;
  readonly #options: HttpJsonUpstreamOptions;

  constructor(options: HttpJsonUpstreamOptions) {
    this.#options = options;
    // Checks the URL and every other placeholder now, at startup.
    this.description = `${this.#oneOff("", 0).description} (wav)`;
  }

  #oneOff(wavBase64: string, index: number): HttpJsonUpstream {
    const bodyTemplate = this.#options.bodyTemplate
      .replace(WAV_PLACEHOLDER, () => wavBase64)
      .replace(WAV_MIME_PLACEHOLDER, () => "audio/wav")
      .replace(INDEX_PLACEHOLDER, () => String(index));
    return new HttpJsonUpstream({ ...this.#options, bodyTemplate, concurrency: 1 });
  }

  async classifyWavs(request: WavUpstreamRequest): Promise<UpstreamAnswer[]> {
    const size = request.shape[0] * request.shape[1] * request.shape[2];
    const answers: UpstreamAnswer[] = new Array(request.wavs.length);
    let next = 0;
    const worker = async () => {
      while (next < request.wavs.length) {
        const i = next++;
        const [answer] = await this.#oneOff(base64(request.wavs[i]), i).classify({
          rows: request.features.subarray(i * size, (i + 1) * size),
          n: 1,
          shape: request.shape,
          range: request.range,
          deadline: request.deadline,
        });
        answers[i] = answer;
      }
    };
    const workers = Math.min(this.#options.concurrency ?? 8, request.wavs.length);
    await Promise.all(Array.from({ length: workers }, worker));
    return answers;
  }

  close(): void {}
}
