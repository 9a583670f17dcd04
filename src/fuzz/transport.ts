/**
 * Raw gRPC calls with pre-serialized bytes: the fuzzer's requests are built at the wire level, so the
 * client's serializer and deserializer are the identity. Every call resolves (never rejects) with what
 * happened, and a watchdog turns a call that never finishes into a "hang".
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";

/** What one call ended with. */
export interface CallResult {
  /** The gRPC status code, or "hang" when the call did not finish within its bound. */
  code: grpc.status | "hang";
  details: string;
  /** Answers received: one for a unary call that succeeded, any number on a stream. */
  answers: Uint8Array[];
  ms: number;
}

const identity = (x: Uint8Array) => Buffer.from(x);

/** A raw client of one server address. */
export class RawClient {
  readonly #client: grpc.Client;

  constructor(address: string) {
    this.#client = new grpc.Client(address, grpc.credentials.createInsecure(), {
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
      "grpc.max_send_message_length": 64 * 1024 * 1024,
    });
  }

  /** One unary call of `path` with `bytes` as its request. */
  unary(
    path: string,
    bytes: Uint8Array,
    metadata: Record<string, string>,
    timeoutMs: number,
  ): Promise<CallResult> {
    const start = performance.now();
    return new Promise((resolve) => {
      const finish = watchdog(resolve, start, timeoutMs);
      this.#client.makeUnaryRequest(
        path,
        identity,
        identity,
        bytes,
        toMetadata(metadata),
        { deadline: Date.now() + timeoutMs },
        (error, answer) =>
          finish(
            error
              ? { code: error.code, details: error.details, answers: [] }
              : { code: grpc.status.OK, details: "", answers: [answer!] },
          ),
      );
    });
  }

  /** One bidirectional stream: writes every message, half-closes, collects answers until the status. */
  stream(
    path: string,
    messages: Uint8Array[],
    metadata: Record<string, string>,
    timeoutMs: number,
  ): Promise<CallResult> {
    const start = performance.now();
    return new Promise((resolve) => {
      const finish = watchdog(resolve, start, timeoutMs);
      const call = this.#client.makeBidiStreamRequest(path, identity, identity, toMetadata(metadata), {
        deadline: Date.now() + timeoutMs,
      });
      const answers: Uint8Array[] = [];
      call.on("data", (m: Uint8Array) => answers.push(m));
      // "status" comes after the last "data" on both success and failure; "error" precedes it on failure.
      call.on("error", () => {});
      call.on("status", (s: grpc.StatusObject) => finish({ code: s.code, details: s.details, answers }));
      for (const m of messages) call.write(m);
      call.end();
    });
  }

  /** Closes the channel. */
  close(): void {
    this.#client.close();
  }
}

function toMetadata(entries: Record<string, string>): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(entries)) metadata.set(key, value);
  return metadata;
}

/** A settle-once callback that also settles "hang" 2 s after the call's deadline. */
function watchdog(
  resolve: (r: CallResult) => void,
  start: number,
  timeoutMs: number,
): (r: Omit<CallResult, "ms">) => void {
  let done = false;
  const settle = (r: Omit<CallResult, "ms">) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    resolve({ ...r, ms: performance.now() - start });
  };
  const timer = setTimeout(
    () =>
      settle({
        code: "hang",
        details: `no status ${timeoutMs + 2000} ms after the call started`,
        answers: [],
      }),
    timeoutMs + 2000,
  );
  return settle;
}
