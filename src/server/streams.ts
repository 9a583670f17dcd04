/**
 * `DefendStream` / `ClassifyStream`: each message is answered on its own (`{id, response}` or
 * `{id, error}`), a bad or undecodable message included, and the stream goes on. A stream ends when the
 * client half-closes and its last answer is written, when the client cancels, or at shutdown: streams
 * with nothing in progress end at once with UNAVAILABLE, the others after their last answer.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { checkMetadata, UndecodableMessage } from "./admission.ts";
import type { CallLedger } from "./calls.ts";
import type { Logger } from "./log.ts";
import type { RequestMessage } from "./service.ts";

/** A stream request message as loaded. */
export interface StreamMessage {
  id?: string;
  request?: RequestMessage | null;
}

/** Answers one message's request; `deadline` is the stream's (epoch ms). */
export type StreamHandle = (request: RequestMessage, deadline?: number) => Promise<unknown>;

/** Maps an error to the status a client is answered with. */
export type StatusOf = (error: unknown) => { code: grpc.status; message: string };

const SHUTTING_DOWN = "server is shutting down";

/** The open streams of a server. */
export class StreamRegistry {
  readonly #streams = new Set<ServedStream>();
  #draining = false;

  /** Streams open now (idle or answering). */
  get size(): number {
    return this.#streams.size;
  }

  /** Ends idle streams now (UNAVAILABLE) and the others once their last answer is written. */
  drain(): void {
    this.#draining = true;
    for (const s of [...this.#streams]) s.drain();
  }

  /** The grpc-js handler of a bidirectional stream method. */
  handler(
    method: string,
    handle: StreamHandle,
    ledger: CallLedger,
    log: Logger,
    statusOf: StatusOf,
    deadlineOf: (call: grpc.ServerDuplexStream<unknown, unknown>) => number | undefined,
  ): (call: grpc.ServerDuplexStream<StreamMessage | UndecodableMessage, unknown>) => void {
    return (call) => {
      const refused = checkMetadata(call.metadata);
      if (refused) {
        ledger.begin(method, (code, message) => call.emit("error", { code, details: message }))
          .settle(refused.code, refused.message);
        return;
      }
      const stream = new ServedStream(
        call,
        method,
        { handle, ledger, log, statusOf },
        deadlineOf(call),
        () => {
          this.#streams.delete(stream);
        },
      );
      this.#streams.add(stream);
      if (this.#draining) stream.drain();
    };
  }
}

/** What a stream answers with. */
interface Served {
  handle: StreamHandle;
  ledger: CallLedger;
  log: Logger;
  statusOf: StatusOf;
}

/** One served stream. */
class ServedStream {
  readonly #call: grpc.ServerDuplexStream<StreamMessage | UndecodableMessage, unknown>;
  readonly #method: string;
  readonly #served: Served;
  readonly #deadline?: number;
  readonly #onClosed: () => void;
  #pending = 0;
  #received = 0;
  #halfClosed = false;
  #draining = false;
  #closed = false;

  constructor(
    call: grpc.ServerDuplexStream<StreamMessage | UndecodableMessage, unknown>,
    method: string,
    served: Served,
    deadline: number | undefined,
    onClosed: () => void,
  ) {
    this.#call = call;
    this.#method = method;
    this.#served = served;
    this.#deadline = deadline;
    this.#onClosed = onClosed;
    call.on("data", (message: StreamMessage | UndecodableMessage) => this.#receive(message));
    call.on("end", () => {
      this.#halfClosed = true;
      this.#maybeEnd();
    });
    // Whichever comes first (a cancel, the transport closing, an error) releases the stream; an error it
    // sent itself (the UNAVAILABLE of a drain) comes after the release and is not logged.
    call.on("cancelled", () => this.#release());
    call.on("close", () => this.#release());
    call.on("error", (error: Error) => {
      if (!this.#closed) this.#served.log.warn("stream error", { method, error: error.message });
      this.#release();
    });
  }

  /** Ends the stream once nothing is in progress (now, if idle), with UNAVAILABLE unless half-closed. */
  drain(): void {
    this.#draining = true;
    this.#maybeEnd();
  }

  #receive(message: StreamMessage | UndecodableMessage): void {
    const index = this.#received++;
    if (this.#closed) return;
    // An undecodable message has no readable id: its answer carries "".
    const id = message instanceof UndecodableMessage ? "" : message.id ?? "";
    this.#pending++;
    const answer = this.#served.ledger.begin(this.#method, (code, text, response) => {
      if (!this.#closed && !this.#call.cancelled) {
        this.#call.write(code === grpc.status.OK ? { id, response } : { id, error: { code, message: text } });
      }
      this.#pending--;
      this.#maybeEnd();
    });
    if (message instanceof UndecodableMessage) {
      const error = message.error(`stream message ${index}`);
      answer.settle(error.code, error.message);
      return;
    }
    if (this.#draining) {
      answer.settle(grpc.status.UNAVAILABLE, SHUTTING_DOWN);
      return;
    }
    void answer.run(() => this.#served.handle(message.request ?? {}, this.#deadline), this.#served.statusOf);
  }

  #maybeEnd(): void {
    if (this.#closed || this.#pending > 0 || !(this.#halfClosed || this.#draining)) return;
    const call = this.#call;
    this.#release();
    if (call.cancelled) return;
    if (this.#halfClosed) call.end();
    else call.emit("error", { code: grpc.status.UNAVAILABLE, details: SHUTTING_DOWN });
  }

  #release(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClosed();
  }
}
