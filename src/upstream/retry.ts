/**
 * Timeouts and bounded retries for upstream calls: only retryable errors of idempotent calls are
 * retried, with exponential backoff, and never past the deadline.
 *
 * @module
 */
import { status } from "@grpc/grpc-js";
import { UpstreamError } from "./types.ts";

/** Retry settings. */
export interface RetryPolicy {
  /** Extra attempts after the first (0 = no retry). */
  retries: number;
  /** Backoff before retry i is `baseDelayMs * 2^i`, with +-25% jitter. */
  baseDelayMs: number;
  /** Non-idempotent calls are never retried. */
  idempotent: boolean;
}

/**
 * The time budget of one attempt: the per-call timeout, cut to what is left of the deadline. Throws
 * DEADLINE_EXCEEDED when nothing is left.
 */
export function attemptTimeoutMs(timeoutMs: number, deadline: number | undefined, what: string): number {
  const left = deadline === undefined ? Infinity : deadline - Date.now();
  if (left <= 0) {
    throw new UpstreamError(
      status.DEADLINE_EXCEEDED,
      `${what}: the call's deadline passed before the upstream call`,
    );
  }
  return Math.max(1, Math.min(timeoutMs, left));
}

/** Runs `attempt` with bounded retries; `onRetry` is told of each retried error. */
export async function withRetries<T>(
  policy: RetryPolicy,
  deadline: number | undefined,
  attempt: (index: number) => Promise<T>,
  onRetry?: (error: UpstreamError, index: number) => void,
): Promise<T> {
  for (let i = 0;; i++) {
    try {
      return await attempt(i);
    } catch (error) {
      const canRetry = error instanceof UpstreamError && error.retryable && policy.idempotent &&
        i < policy.retries;
      if (!canRetry) throw error;
      const delay = policy.baseDelayMs * 2 ** i * (0.75 + Math.random() * 0.5);
      if (deadline !== undefined && Date.now() + delay >= deadline) throw error;
      onRetry?.(error, i);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
