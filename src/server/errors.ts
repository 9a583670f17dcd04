/**
 * gRPC status errors of the sidecar and the mapping of internal errors onto gRPC status codes.
 *
 * @module
 */
import { status } from "@grpc/grpc-js";
import { BatcherClosedError, QueueFullError } from "./batcher.ts";
import { ImageDecodeError, ImageTooLargeError } from "../image/codec.ts";
import { UpstreamError } from "../upstream/types.ts";
import { ComputeWorkerError } from "./worker_engine.ts";

/** An error that carries the gRPC status to answer with. */
export class StatusError extends Error {
  readonly code: status;
  constructor(code: status, message: string) {
    super(message);
    this.name = "StatusError";
    this.code = code;
  }
}

/** Bad input: INVALID_ARGUMENT with the reason. */
export function invalidArgument(message: string): StatusError {
  return new StatusError(status.INVALID_ARGUMENT, message);
}

/** Input over a size limit: RESOURCE_EXHAUSTED with the limit. */
export function tooLarge(message: string): StatusError {
  return new StatusError(status.RESOURCE_EXHAUSTED, message);
}

/** Maps any error to a gRPC status and a client-facing message. Unknown errors become INTERNAL. */
export function toStatus(error: unknown): { code: status; message: string } {
  if (error instanceof StatusError) return { code: error.code, message: error.message };
  if (error instanceof UpstreamError) return { code: error.code, message: error.message };
  if (error instanceof QueueFullError) return { code: status.RESOURCE_EXHAUSTED, message: error.message };
  if (error instanceof BatcherClosedError) {
    return { code: status.UNAVAILABLE, message: "server is shutting down" };
  }
  if (error instanceof ImageTooLargeError) return { code: status.RESOURCE_EXHAUSTED, message: error.message };
  if (error instanceof ImageDecodeError) return { code: status.INVALID_ARGUMENT, message: error.message };
  if (error instanceof ComputeWorkerError) return { code: status.UNAVAILABLE, message: error.message };
  return { code: status.INTERNAL, message: `internal error: ${(error as Error)?.message ?? String(error)}` };
}

/** The name of a gRPC status code, e.g. "INVALID_ARGUMENT". */
export function statusName(code: number): string {
  return (status as unknown as Record<number, string>)[code] ?? String(code);
}
