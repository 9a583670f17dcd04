/**
 * The upstream contract: where `Classify` sends the defended input, and the errors it raises.
 *
 * @module
 */
import { status } from "@grpc/grpc-js";

/** A batch of defended inputs to classify upstream. */
export interface UpstreamRequest {
  /** Row-major [n, ...shape] values in `range`. */
  rows: Float32Array;
  n: number;
  /** One example's shape, [height, width, channels]. */
  shape: [number, number, number];
  range: [number, number];
  /** Absolute deadline (epoch ms) of the client's call, if it set one. */
  deadline?: number;
  /** One defended WAV file per example, for an upstream whose `payload` is "wav". */
  wavs?: Uint8Array[];
}

/**
 * What an upstream is sent: "tensor", the defended input itself; "wav", for an audio model, the defended
 * WAV of each example (in `UpstreamRequest.wavs`, the defended features still in `rows`).
 */
export type UpstreamPayload = "tensor" | "wav";

/** The upstream's answer for one example. */
export interface UpstreamAnswer {
  /** Argmax of `scores`, or the label picked from a JSON answer; -1 when there is none. */
  label: number;
  scores: number[];
  /** The picked part of a JSON answer, as JSON text ("" for OIP). */
  json: string;
}

/** A model server the sidecar forwards to. */
export interface Upstream {
  /** Where it forwards, e.g. "oip://127.0.0.1:8001/fashion-lenet". */
  readonly description: string;
  /** What it must be sent; absent: "tensor". */
  readonly payload?: UpstreamPayload;
  /** Classifies a batch; one answer per example. Throws {@link UpstreamError}. */
  classify(request: UpstreamRequest): Promise<UpstreamAnswer[]>;
  /** Releases connections. */
  close(): void;
}

/** A failed upstream call, with the gRPC status to answer the client with. */
export class UpstreamError extends Error {
  readonly code: status;
  /** Whether repeating the call could succeed (the upstream is down or overloaded). */
  readonly retryable: boolean;
  constructor(code: status, message: string, retryable = code === status.UNAVAILABLE) {
    super(message);
    this.name = "UpstreamError";
    this.code = code;
    this.retryable = retryable;
  }
}

/** Index of the largest value (first on ties); -1 for an empty list. */
export function argmax(values: ArrayLike<number>): number {
  let best = -1;
  for (let i = 0; i < values.length; i++) if (best < 0 || values[i] > values[best]) best = i;
  return best;
}

/** The request's WAVs, one per example, for an upstream that takes them; throws when they are missing. */
export function requestWavs(request: UpstreamRequest, upstream: string): Uint8Array[] {
  const wavs = request.wavs;
  if (!wavs || wavs.length !== request.n) {
    throw new Error(
      `upstream ${upstream} takes one WAV per example; the request has ${wavs?.length ?? 0} for ${request.n}`,
    );
  }
  return wavs;
}
