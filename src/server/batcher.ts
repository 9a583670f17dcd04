/**
 * A dynamic batcher modelled on Triton's: concurrent submissions are gathered into one batch until the
 * batch holds `maxBatchSize` examples or the oldest waited `maxQueueDelayMicros`; the queue is bounded and
 * a full queue rejects at once with {@link QueueFullError}. Generic: it knows nothing of models.
 *
 * @module
 */
import { setImmediate } from "node:timers";

/** Batching settings (Triton's `dynamic_batching` block). */
export interface BatcherOptions {
  /** Largest number of examples (sum of item sizes) in one batch. */
  maxBatchSize: number;
  /** How long the oldest queued item may wait for others, in microseconds. */
  maxQueueDelayMicros: number;
  /** Most items waiting (not yet running); beyond it `submit` rejects with {@link QueueFullError}. */
  maxQueueSize: number;
  /** When false, every item runs alone at once (still through the queue bound). */
  enabled?: boolean;
}

/** What a run reports per item besides its result. */
export interface BatchInfo {
  /** Examples in the batch the item ran in. */
  batchExamples: number;
  /** Items in that batch. */
  batchItems: number;
  /** Milliseconds the item waited in the queue. */
  queueMs: number;
}

/** Raised by `submit` when the queue is full. */
export class QueueFullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "QueueFullError";
  }
}

/** Raised for items submitted after `close()`. */
export class BatcherClosedError extends Error {
  constructor() {
    super("batcher is closed");
    this.name = "BatcherClosedError";
  }
}

interface Pending<I, O> {
  item: I;
  size: number;
  enqueuedAt: number;
  resolve: (value: { result: O; info: BatchInfo }) => void;
  reject: (error: unknown) => void;
}

/**
 * Gathers items into batches. `run` gets the items of one batch and returns one result per item, in
 * order; if it throws, every item of that batch fails with the error.
 */
export class DynamicBatcher<I, O> {
  readonly #options: Required<BatcherOptions>;
  readonly #run: (items: I[]) => O[] | Promise<O[]>;
  readonly #sizeOf: (item: I) => number;
  readonly #onBatch?: (examples: number, items: number) => void;
  #queue: Pending<I, O>[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running = 0;
  #closed = false;
  #flushQueued = false;

  constructor(
    options: BatcherOptions,
    run: (items: I[]) => O[] | Promise<O[]>,
    sizeOf: (item: I) => number = () => 1,
    onBatch?: (examples: number, items: number) => void,
  ) {
    if (!(options.maxBatchSize >= 1)) {
      throw new RangeError(`maxBatchSize must be >= 1, got ${options.maxBatchSize}`);
    }
    if (!(options.maxQueueDelayMicros >= 0)) {
      throw new RangeError(`maxQueueDelayMicros must be >= 0, got ${options.maxQueueDelayMicros}`);
    }
    if (!(options.maxQueueSize >= 1)) {
      throw new RangeError(`maxQueueSize must be >= 1, got ${options.maxQueueSize}`);
    }
    this.#options = { enabled: true, ...options };
    this.#run = run;
    this.#sizeOf = sizeOf;
    this.#onBatch = onBatch;
  }

  /** Items waiting to run. */
  get queueLength(): number {
    return this.#queue.length;
  }

  /** Batches running now. */
  get running(): number {
    return this.#running;
  }

  /** Queues an item; resolves with its result and how it was batched. */
  submit(item: I): Promise<{ result: O; info: BatchInfo }> {
    if (this.#closed) return Promise.reject(new BatcherClosedError());
    if (this.#queue.length >= this.#options.maxQueueSize) {
      return Promise.reject(
        new QueueFullError(`request queue is full (${this.#options.maxQueueSize} waiting); retry later`),
      );
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, size: this.#sizeOf(item), enqueuedAt: performance.now(), resolve, reject });
      this.#schedule();
    });
  }

  /**
   * Stops taking items; queued items still run. Resolves when the queue is empty and nothing runs, or at
   * `deadline` (a `performance.now()` time): items still queued then fail with {@link BatcherClosedError},
   * and batches still running are no longer waited for.
   */
  async close(deadline = Infinity): Promise<void> {
    this.#closed = true;
    while ((this.#queue.length > 0 || this.#running > 0) && performance.now() < deadline) {
      if (this.#queue.length > 0 && this.#timer === undefined) this.#flush();
      await new Promise((r) => setTimeout(r, 1));
    }
    this.#clearTimer();
    for (const p of this.#queue.splice(0)) p.reject(new BatcherClosedError());
  }

  #queuedExamples(): number {
    let total = 0;
    for (const p of this.#queue) total += p.size;
    return total;
  }

  #schedule(): void {
    const now = !this.#options.enabled || this.#options.maxQueueDelayMicros === 0 ||
      this.#queuedExamples() >= this.#options.maxBatchSize;
    if (now) {
      this.#clearTimer();
      // setImmediate: after the submitting task and its microtasks (so submissions of the same task join one
      // batch), without a timer's 1 ms floor. Under Deno it runs before pending network I/O is read, so
      // requests still in the socket join a later batch.
      if (!this.#flushQueued) {
        this.#flushQueued = true;
        setImmediate(() => {
          this.#flushQueued = false;
          this.#flush();
        });
      }
      return;
    }
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#flush();
    }, this.#options.maxQueueDelayMicros / 1000);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #take(): Pending<I, O>[] {
    if (!this.#options.enabled) return this.#queue.splice(0, 1);
    // Items are taken in order; an item larger than the batch limit runs alone.
    let total = 0;
    let count = 0;
    for (const p of this.#queue) {
      if (count > 0 && total + p.size > this.#options.maxBatchSize) break;
      total += p.size;
      count++;
    }
    return this.#queue.splice(0, count);
  }

  #flush(): void {
    while (this.#queue.length > 0) {
      const batch = this.#take();
      void this.#execute(batch);
      // With batching on, leftovers wait for the delay again unless they fill a batch.
      if (this.#options.enabled && this.#queuedExamples() < this.#options.maxBatchSize) break;
    }
    if (this.#queue.length > 0) this.#schedule();
  }

  async #execute(batch: Pending<I, O>[]): Promise<void> {
    this.#running++;
    const start = performance.now();
    const examples = batch.reduce((sum, p) => sum + p.size, 0);
    this.#onBatch?.(examples, batch.length);
    try {
      const results = await this.#run(batch.map((p) => p.item));
      if (results.length !== batch.length) {
        throw new Error(`batch run returned ${results.length} results for ${batch.length} items`);
      }
      batch.forEach((p, i) =>
        p.resolve({
          result: results[i],
          info: { batchExamples: examples, batchItems: batch.length, queueMs: start - p.enqueuedAt },
        })
      );
    } catch (error) {
      for (const p of batch) p.reject(error);
    } finally {
      this.#running--;
    }
  }
}
