/**
 * An HTTP JSON upstream for third-party vision APIs: one request per example, its body made from a
 * template that places the defended image (base64 PNG/JPEG) or tensor, and the answer picked out of the
 * JSON response by a path. Timeouts, bounded retries for idempotent calls, HTTP failures mapped to gRPC
 * status codes (gRPC's HTTP-to-status mapping).
 *
 * Template placeholders: `{{image_base64}}`, `{{image_mime}}`, `{{tensor}}` (flat JSON array),
 * `{{shape}}` (JSON [h, w, c]), `{{index}}` (example index in the call); with the "wav" payload (an audio
 * model's defended WAV) also `{{wav_base64}}` and `{{wav_mime}}` (`audio/wav`), `{{tensor}}` and
 * `{{shape}}` then holding the defended features.
 *
 * @module
 */
import { status } from "@grpc/grpc-js";
import { encodeImage, type ImageFormatName } from "../image/codec.ts";
import { inputToImage } from "../image/resize.ts";
import { redactUrl, secretRedactor, upstreamSecrets } from "../server/redact.ts";
import { attemptTimeoutMs, withRetries } from "./retry.ts";
import { argmax, requestWavs, UpstreamError } from "./types.ts";
import type { Upstream, UpstreamAnswer, UpstreamPayload, UpstreamRequest } from "./types.ts";

/** Settings of an HTTP JSON upstream. */
export interface HttpJsonUpstreamOptions {
  url: string;
  /** Default POST. */
  method?: string;
  headers?: Record<string, string>;
  /** Request body with placeholders (see the module doc); unused for GET/HEAD. */
  bodyTemplate: string;
  /** Where the answer is in the response JSON, e.g. `$.predictions[0].label`. */
  answerPath: string;
  /** Encoding of `{{image_base64}}`. Default png. */
  imageFormat?: ImageFormatName;
  /** "wav": each example's defended WAV is sent (`{{wav_base64}}`); default "tensor". */
  payload?: UpstreamPayload;
  timeoutMs: number;
  retries: number;
  /** Whether retrying is safe; default: true for GET, HEAD, PUT, DELETE, OPTIONS, false otherwise. */
  idempotent?: boolean;
  /** Most requests in flight at once for one batch. Default 8. */
  concurrency?: number;
  /** Called once per retried error. */
  onRetry?: (error: UpstreamError) => void;
}

const IDEMPOTENT_METHODS = new Set(["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]);

/** Picks a value out of parsed JSON by a path like `$.a.b[0].c` or `a.b.0.c`. */
export function pickJsonPath(value: unknown, path: string): unknown {
  const tokens: string[] = [];
  const re = /\[(\d+)\]|\[["']([^"']+)["']\]|\.?([^.[\]]+)/g;
  const body = path.trim().replace(/^\$/, "");
  for (const m of body.matchAll(re)) tokens.push(m[1] ?? m[2] ?? m[3]);
  let current = value;
  const walked: string[] = [];
  for (const token of tokens) {
    walked.push(token);
    if (current === null || typeof current !== "object" || !(token in (current as Record<string, unknown>))) {
      throw new Error(`no value at ${walked.join(".")}`);
    }
    current = (current as Record<string, unknown>)[token];
  }
  return current;
}

/** Fills a body template for one example. */
export function fillTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{\s*(\w+)\s*\}\}/g, (whole, name: string) => {
    if (!(name in values)) throw new Error(`unknown template placeholder ${whole}`);
    return values[name];
  });
}

const WAV_PLACEHOLDER = /\{\{\s*wav_(base64|mime)\s*\}\}/;

/** Checks a template's placeholders without sending anything (used when the upstream is built). */
export function validateTemplate(template: string, payload: UpstreamPayload = "tensor"): void {
  const wav = WAV_PLACEHOLDER.exec(template);
  if (wav && payload !== "wav") throw new Error(`template placeholder ${wav[0]} needs the "wav" payload`);
  fillTemplate(template, {
    image_base64: "",
    image_mime: "",
    tensor: "",
    shape: "",
    index: "",
    ...(payload === "wav" ? { wav_base64: "", wav_mime: "" } : {}),
  });
}

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** gRPC status for an HTTP status (gRPC's "HTTP to gRPC Status Code Mapping"). */
export function httpStatusToGrpc(httpStatus: number): status {
  switch (httpStatus) {
    case 400:
      return status.INTERNAL;
    case 401:
      return status.UNAUTHENTICATED;
    case 403:
      return status.PERMISSION_DENIED;
    case 404:
      return status.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return status.UNAVAILABLE;
    default:
      return status.UNKNOWN;
  }
}

/** One HTTP call per example, answers picked by path. */
export class HttpJsonUpstream implements Upstream {
  readonly description: string;
  readonly payload: UpstreamPayload;
  readonly #options: HttpJsonUpstreamOptions;
  readonly #method: string;
  readonly #idempotent: boolean;
  /** Hides the URL's and headers' secrets in messages (fetch errors and answers may quote them). */
  readonly #redact: (text: string) => string;

  constructor(options: HttpJsonUpstreamOptions) {
    this.payload = options.payload ?? "tensor";
    validateTemplate(options.bodyTemplate, this.payload);
    new URL(options.url);
    this.#options = options;
    this.#method = (options.method ?? "POST").toUpperCase();
    this.#idempotent = options.idempotent ?? IDEMPOTENT_METHODS.has(this.#method);
    this.#redact = secretRedactor(upstreamSecrets(options));
    this.description = `${this.#method} ${redactUrl(options.url)}${this.payload === "wav" ? " (wav)" : ""}`;
  }

  async classify(request: UpstreamRequest): Promise<UpstreamAnswer[]> {
    if (this.payload === "wav") requestWavs(request, this.description);
    const size = request.shape[0] * request.shape[1] * request.shape[2];
    const answers: UpstreamAnswer[] = new Array(request.n);
    let next = 0;
    const worker = async () => {
      while (next < request.n) {
        const i = next++;
        answers[i] = await this.#one(request, request.rows.subarray(i * size, (i + 1) * size), i);
      }
    };
    const workers = Math.min(this.#options.concurrency ?? 8, request.n);
    await Promise.all(Array.from({ length: workers }, worker));
    return answers;
  }

  #body(request: UpstreamRequest, row: Float32Array, index: number): string {
    const usesImage = /\{\{\s*image_base64\s*\}\}/.test(this.#options.bodyTemplate);
    const format = this.#options.imageFormat ?? "png";
    const image = usesImage
      ? base64(encodeImage(inputToImage(row, request.shape, request.range), format))
      : "";
    const usesTensor = /\{\{\s*tensor\s*\}\}/.test(this.#options.bodyTemplate);
    return fillTemplate(this.#options.bodyTemplate, {
      image_base64: image,
      image_mime: format === "png" ? "image/png" : "image/jpeg",
      tensor: usesTensor ? JSON.stringify(Array.from(row)) : "",
      shape: JSON.stringify(request.shape),
      index: String(index),
      ...(this.payload === "wav" ? { wav_base64: base64(request.wavs![index]), wav_mime: "audio/wav" } : {}),
    });
  }

  #one(request: UpstreamRequest, row: Float32Array, index: number): Promise<UpstreamAnswer> {
    const hasBody = this.#method !== "GET" && this.#method !== "HEAD";
    const body = hasBody ? this.#body(request, row, index) : undefined;
    return withRetries(
      { retries: this.#options.retries, baseDelayMs: 25, idempotent: this.#idempotent },
      request.deadline,
      async () => {
        const timeout = attemptTimeoutMs(this.#options.timeoutMs, request.deadline, this.description);
        let response: Response;
        try {
          response = await fetch(this.#options.url, {
            method: this.#method,
            headers: { "content-type": "application/json", ...this.#options.headers },
            body,
            signal: AbortSignal.timeout(timeout),
          });
        } catch (error) {
          const name = (error as Error).name;
          if (name === "TimeoutError" || name === "AbortError") {
            throw new UpstreamError(
              status.DEADLINE_EXCEEDED,
              `upstream ${this.description} did not answer within ${Math.round(timeout)} ms`,
            );
          }
          throw new UpstreamError(
            status.UNAVAILABLE,
            `upstream ${this.description} is unavailable: ${this.#redact((error as Error).message)}`,
          );
        }
        const text = await response.text();
        if (!response.ok) {
          const code = httpStatusToGrpc(response.status);
          throw new UpstreamError(
            code,
            `upstream ${this.description} answered HTTP ${response.status}: ${
              this.#redact(text).slice(0, 200)
            }`,
            code === status.UNAVAILABLE,
          );
        }
        return this.#answer(text);
      },
      this.#options.onRetry,
    );
  }

  #answer(text: string): UpstreamAnswer {
    let picked: unknown;
    try {
      picked = pickJsonPath(JSON.parse(text), this.#options.answerPath);
    } catch (error) {
      throw new UpstreamError(
        status.INTERNAL,
        `upstream ${this.description}: cannot pick ${this.#options.answerPath} from the answer: ${
          this.#redact((error as Error).message)
        }`,
      );
    }
    const json = JSON.stringify(picked);
    if (typeof picked === "number" && Number.isInteger(picked)) return { label: picked, scores: [], json };
    if (Array.isArray(picked) && picked.length > 0 && picked.every((v) => typeof v === "number")) {
      return { label: argmax(picked), scores: picked, json };
    }
    return { label: -1, scores: [], json };
  }

  close(): void {}
}
