/**
 * The error raised for audio a caller sent that cannot be used (the gRPC server maps it to
 * INVALID_ARGUMENT).
 *
 * @module
 */

/** Bad audio input: not a WAV, truncated, empty, absurd format, too long. `reason` says which. */
export class AudioInputError extends Error {
  /** A short machine-readable reason code, e.g. `not-wav`, `truncated-header`, `too-long`. */
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.name = "AudioInputError";
    this.reason = reason;
  }
}
