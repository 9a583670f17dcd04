/**
 * Event-loop lag: a timer due every `intervalMs` measures how late it fires. The lateness is time the
 * loop spent on other work (a long computation, a garbage-collection pause) or waiting for a core, and
 * every call that arrived meanwhile waited that long before the server could read it: the server's own
 * share of a slow answer, told apart from the network's and the client's.
 *
 * @module
 */

/** Samples the event loop's lag until stopped; `record` gets each sample in seconds. */
export class LoopLagSampler {
  readonly #timer: ReturnType<typeof setInterval>;
  #due: number;
  #max = 0;

  constructor(readonly record: (seconds: number) => void, readonly intervalMs = 20) {
    this.#due = performance.now() + intervalMs;
    this.#timer = setInterval(() => this.#tick(), intervalMs);
    // The sampler must not keep a process alive that has nothing else to do.
    this.#timer.unref();
  }

  #tick() {
    const now = performance.now();
    const lag = Math.max(0, now - this.#due) / 1000;
    this.#due = now + this.intervalMs;
    if (lag > this.#max) this.#max = lag;
    this.record(lag);
  }

  /** The largest lag since the start (seconds). */
  get maxSeconds(): number {
    return this.#max;
  }

  /** Stops sampling. */
  stop(): void {
    clearInterval(this.#timer);
  }
}
