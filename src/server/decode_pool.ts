/**
 * A small pool of Web Workers that decode and resize encoded images, and decode WAV requests into the
 * speaker model's features (`decode_worker.ts`), so that a decompression bomb or a long WAV cannot stall
 * the server's event loop (health checks, other calls): bounded concurrency (`workers`), a bounded queue
 * (`maxQueue` inputs waiting), and a time budget per input after which the worker is terminated and
 * replaced. Only the model's input comes back (an image's small row; a WAV's features and samples).
 *
 * @module
 */
import { AudioInputError } from "../../audio/errors.ts";
import type { ImageFormatName } from "../image/codec.ts";
import { ImageDecodeError, ImageTooLargeError } from "../image/errors.ts";

/** One image to decode into a model input row. */
export interface ImageJob {
  bytes: Uint8Array;
  /** Declared format; undefined: detected from the bytes. */
  format?: ImageFormatName;
  maxPixels: number;
  /** The model's input [height, width, channels] and value range. */
  shape: readonly [number, number, number];
  range: readonly [number, number];
}

/** One WAV request to decode with the speaker model's front end (`audio/request.ts`) and its limits. */
export interface WavJob {
  bytes: Uint8Array;
  maxSeconds: number;
  maxBytes: number;
}

/** What a worker decodes. */
export type DecodeJob = ({ kind: "image" } & ImageJob) | ({ kind: "wav" } & WavJob);

/** What a worker gives back: an image's row, or a WAV's features and mono samples. */
export type DecodeResult = { rows: Float32Array } | { features: Float32Array; samples: Float32Array };

/** A message to a worker. */
export interface DecodeRequest {
  id: number;
  job: DecodeJob;
}

/** A message from a worker: ready, a result, or an error (`reason`: an `AudioInputError`'s code). */
export type DecodeReply =
  | { ready: true }
  | ({ id: number } & DecodeResult)
  | { id: number; error: { name: string; message: string; reason?: string } };

/** Size of the pool. */
export interface DecodePoolOptions {
  /** Workers decoding at once. */
  workers: number;
  /** Most milliseconds one input (image or WAV) may take in a worker. */
  budgetMs: number;
  /** Most inputs waiting for a worker; more are refused. */
  maxQueue: number;
}

/** An input that took longer than the time budget (its worker was terminated). */
export class DecodeBudgetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DecodeBudgetError";
  }
}

/** The queue of inputs waiting for a worker is full. */
export class DecodeQueueFullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DecodeQueueFullError";
  }
}

/** The pool was closed (server shutdown) before the input was decoded. */
export class DecodePoolClosedError extends Error {
  constructor() {
    super("decoding stopped: the server is shutting down");
    this.name = "DecodePoolClosedError";
  }
}

interface Task {
  id: number;
  job: DecodeJob;
  signal?: AbortSignal;
  resolve(result: DecodeResult): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  task?: Task;
  timer?: ReturnType<typeof setTimeout>;
}

const WORKER_URL = new URL("./decode_worker.ts", import.meta.url).href;

/** Rebuilds a worker's error as the decoder's error class, so callers map it to a status as before. */
function fromReply(error: { name: string; message: string; reason?: string }): Error {
  if (error.name === "ImageDecodeError") return new ImageDecodeError(error.message);
  if (error.name === "ImageTooLargeError") return new ImageTooLargeError(error.message);
  if (error.name === "AudioInputError") return new AudioInputError(error.reason ?? "", error.message);
  return new Error(`decode failed: ${error.name}: ${error.message}`);
}

/** The pool. Workers start on first use; {@link DecodePool.close} terminates them. */
export class DecodePool {
  readonly #options: DecodePoolOptions;
  readonly #slots: Slot[] = [];
  readonly #queue: Task[] = [];
  #nextId = 0;
  #closed = false;
  #spawnScheduled = false;

  constructor(options: DecodePoolOptions) {
    if (options.workers < 1 || options.budgetMs < 1 || options.maxQueue < 1) {
      throw new RangeError(
        `decode pool: workers, budgetMs and maxQueue must be >= 1 (${JSON.stringify(options)})`,
      );
    }
    this.#options = options;
  }

  /**
   * Decodes one image into a model input row (the caller owns it). Rejects with the codec's
   * `ImageDecodeError` / `ImageTooLargeError`, {@link DecodeBudgetError}, {@link DecodeQueueFullError} or
   * {@link DecodePoolClosedError}. An aborted `signal` drops the image if it has not started.
   */
  async decode(job: ImageJob, signal?: AbortSignal): Promise<Float32Array> {
    const result = await this.#submit({ kind: "image", ...job }, signal);
    return (result as { rows: Float32Array }).rows;
  }

  /**
   * Decodes one WAV request into the speaker model's features and its mono samples (the caller owns both).
   * Rejects with `AudioInputError` (with its reason code) or the pool's errors, as {@link decode}.
   */
  async decodeWav(job: WavJob): Promise<{ features: Float32Array; samples: Float32Array }> {
    return await this.#submit({ kind: "wav", ...job }) as { features: Float32Array; samples: Float32Array };
  }

  #submit(job: DecodeJob, signal?: AbortSignal): Promise<DecodeResult> {
    if (this.#closed) return Promise.reject(new DecodePoolClosedError());
    if (this.#queue.length >= this.#options.maxQueue) {
      return Promise.reject(
        new DecodeQueueFullError(`decode queue is full (${this.#queue.length} inputs waiting); retry later`),
      );
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ id: this.#nextId++, job, signal, resolve, reject });
      this.#pump();
    });
  }

  /** Terminates the workers; inputs waiting or decoding are rejected with {@link DecodePoolClosedError}. */
  close(): void {
    this.#closed = true;
    for (const slot of this.#slots.splice(0)) {
      clearTimeout(slot.timer);
      slot.worker.terminate();
      slot.task?.reject(new DecodePoolClosedError());
    }
    for (const task of this.#queue.splice(0)) task.reject(new DecodePoolClosedError());
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      const next = this.#queue[0];
      if (next.signal?.aborted) {
        this.#queue.shift();
        next.reject(new Error("image decode cancelled: another image of the request failed"));
        continue;
      }
      const idle = this.#slots.find((s) => s.ready && s.task === undefined);
      if (idle === undefined) {
        if (this.#slots.length < this.#options.workers) this.#scheduleSpawn();
        return;
      }
      this.#queue.shift();
      this.#start(idle, next);
    }
  }

  /**
   * Starts one worker in a later task: `new Worker` blocks the calling thread (60-260 ms measured on a
   * loaded machine), so workers replaced together start one per task, letting health checks in between.
   */
  #scheduleSpawn(): void {
    if (this.#spawnScheduled) return;
    this.#spawnScheduled = true;
    setTimeout(() => {
      this.#spawnScheduled = false;
      if (this.#closed) return;
      this.#spawn();
      this.#pump();
    }, 0);
  }

  #spawn(): void {
    const slot: Slot = { worker: new Worker(WORKER_URL, { type: "module" }), ready: false };
    slot.worker.onmessage = (event: MessageEvent<DecodeReply>) => this.#reply(slot, event.data);
    slot.worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      const error = new Error(`decode worker failed: ${event.message}`);
      // A worker that fails before it is ready (its modules did not load) would fail again: do not retry.
      if (!slot.ready) { for (const task of this.#queue.splice(0)) task.reject(error); }
      this.#retire(slot, error);
    };
    this.#slots.push(slot);
  }

  #start(slot: Slot, task: Task): void {
    slot.task = task;
    // A copy of this input's bytes alone, transferred: a Node Buffer's slice() would share (and the transfer
    // detach) the whole gRPC message's buffer, and posting the view would clone all of it.
    const bytes = new Uint8Array(task.job.bytes);
    slot.worker.postMessage({ id: task.id, job: { ...task.job, bytes } } satisfies DecodeRequest, [
      bytes.buffer,
    ]);
    const what = task.job.kind === "image" ? "image" : "WAV";
    slot.timer = setTimeout(() => {
      this.#retire(slot, new DecodeBudgetError(`${what} decode exceeded ${this.#options.budgetMs} ms`));
    }, this.#options.budgetMs);
  }

  #reply(slot: Slot, reply: DecodeReply): void {
    if ("ready" in reply) {
      slot.ready = true;
    } else if (slot.task?.id === reply.id) {
      clearTimeout(slot.timer);
      const task = slot.task;
      slot.task = undefined;
      if ("error" in reply) task.reject(fromReply(reply.error));
      else task.resolve(reply);
    }
    this.#pump();
  }

  /** Terminates a worker (over budget or failed), fails its input, and lets a fresh one take its place. */
  #retire(slot: Slot, error: Error): void {
    const index = this.#slots.indexOf(slot);
    if (index < 0) return; // already retired or closed
    clearTimeout(slot.timer);
    slot.worker.terminate();
    this.#slots.splice(index, 1);
    slot.task?.reject(error);
    if (!this.#closed) this.#pump();
  }
}
