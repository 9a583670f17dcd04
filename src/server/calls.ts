/**
 * The ledger of answers in progress: every unary call and every stream message being answered holds one
 * {@link PendingAnswer} until its status is sent. The in-flight gauge reads its size at scrape time, and
 * the end of the shutdown grace period answers whatever is still open with UNAVAILABLE.
 *
 * @module
 */
import { status } from "@grpc/grpc-js";

/** Delivers one answer: the response for OK, else the code and message. */
export type Send = (code: status, message: string, response?: unknown) => void;

/** Records one answered call or message (metrics, log), with the seconds since it began. */
export type Finish = (method: string, seconds: number, code: status, message?: string) => void;

/** One answer in progress; the first {@link PendingAnswer.settle} wins, later ones are ignored. */
export class PendingAnswer {
  readonly #ledger: Set<PendingAnswer>;
  readonly #method: string;
  readonly #send: Send;
  readonly #finish: Finish;
  readonly #start = performance.now();

  constructor(ledger: Set<PendingAnswer>, method: string, send: Send, finish: Finish) {
    this.#ledger = ledger;
    this.#method = method;
    this.#send = send;
    this.#finish = finish;
    ledger.add(this);
  }

  /** Sends the answer and records it, unless it was already answered (e.g. by the grace period's end). */
  settle(code: status, message = "", response?: unknown): void {
    if (!this.#ledger.delete(this)) return;
    this.#finish(this.#method, (performance.now() - this.#start) / 1000, code, message);
    this.#send(code, message, response);
  }

  /** Settles with the outcome of `work`: its result is the OK response, a throw is mapped by `toStatus`. */
  async run(
    work: () => unknown,
    toStatus: (error: unknown) => { code: status; message: string },
  ): Promise<void> {
    try {
      const response = await work();
      this.settle(status.OK, "", response);
    } catch (error) {
      const { code, message } = toStatus(error);
      this.settle(code, message);
    }
  }
}

/** Every answer in progress. */
export class CallLedger {
  readonly #open = new Set<PendingAnswer>();
  readonly #finish: Finish;

  constructor(finish: Finish) {
    this.#finish = finish;
  }

  /** Answers (unary calls and stream messages) in progress now. */
  get size(): number {
    return this.#open.size;
  }

  /** Opens one answer, delivered by `send` when settled. */
  begin(method: string, send: Send): PendingAnswer {
    return new PendingAnswer(this.#open, method, send, this.#finish);
  }

  /** Settles every open answer with `code` (the grace period's end: UNAVAILABLE). */
  settleAll(code: status, message: string): void {
    for (const answer of [...this.#open]) answer.settle(code, message);
  }
}
