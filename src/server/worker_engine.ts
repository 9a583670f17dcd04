/**
 * A served model computing in a Web Worker (`compute_worker.ts`) with its own tfjs: the same
 * {@link Engine} as `ServingEngine`, but predict, defend and certify run off the server's event loop, so
 * that health checks and other calls are answered while a batch is defended (tfjs computes synchronously;
 * in the server's thread each slice of compute holds every other call).
 *
 * @module
 */
import type { PipelineOptions } from "../pipeline.ts";
import type { Certificate, CertifyRequest } from "../smoothing/cohen.ts";
import type { Policy } from "../stages/policy.ts";
import type { StageSettings } from "../stages/stage.ts";
import type { DefendBatch, Engine, ModelDescription, PredictBatch, TensorMemory } from "./engine.ts";

/** The first message to a worker: what to load (`loadPipeline`'s options). */
export interface WorkerInit {
  pipeline: PipelineOptions;
}

/** What a worker is asked to compute on `n` examples (row-major `rows`). */
export type ComputeJob =
  & { rows: Float32Array; n: number }
  & (
    | { call: "predict" }
    | { call: "defend"; verdictAfter?: boolean; signals?: Float32Array[]; transforms?: boolean }
    | { call: "certify"; request: CertifyRequest }
  );

/** One call to a worker. */
export type ComputeCall = ComputeJob & { id: number };

/** What the server needs to know of the loaded model, sent once when the worker is ready. */
export interface EngineInfo {
  name: string;
  inputShape: [number, number, number];
  inputRange: [number, number];
  numClasses: number;
  certifierSettings: StageSettings;
  answers: boolean;
  detectors: string[];
  policy: { policy: Policy; alpha: number };
  needsSignals: boolean;
  description: ModelDescription;
}

/** A message from a worker: loaded, failed to load, a call's result or its error; all with its tensors. */
export type ComputeReply =
  & { memory: TensorMemory }
  & (
    | { ready: EngineInfo }
    | { failed: { name: string; message: string } }
    | { id: number; result: unknown }
    | { id: number; error: { name: string; message: string } }
  );

/** The compute worker stopped (an uncaught error or a terminated worker): its calls cannot be answered. */
export class ComputeWorkerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ComputeWorkerError";
  }
}

interface Pending {
  resolve(result: unknown): void;
  reject(error: Error): void;
}

const WORKER_URL = new URL("./compute_worker.ts", import.meta.url).href;

/** A model loaded and served in its own worker. {@link WorkerEngine.dispose} terminates the worker. */
export class WorkerEngine implements Engine {
  readonly #worker: Worker;
  readonly #info: EngineInfo;
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;
  #memory: TensorMemory;
  #stopped?: ComputeWorkerError;
  #failed!: (error: ComputeWorkerError) => void;
  /** Settles when the worker died (not when disposed): the server then reports itself NOT_SERVING. */
  readonly failure: Promise<Error> = new Promise((resolve) => this.#failed = resolve);

  private constructor(worker: Worker, info: EngineInfo, memory: TensorMemory) {
    this.#worker = worker;
    this.#info = info;
    this.#memory = memory;
    worker.onmessage = (event: MessageEvent<ComputeReply>) => this.#reply(event.data);
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      worker.terminate();
      const error = new ComputeWorkerError(`compute worker of model ${info.name} failed: ${event.message}`);
      this.#stop(error);
      this.#failed(error);
    };
  }

  /**
   * Starts a worker that loads the pipeline as `loadPipeline(options)` would and warms it up; rejects with
   * the loader's error (its message, e.g. a missing model or a profile of another model) when it fails.
   * `workerUrl`: the worker's module (tests give one that wraps `compute_worker.ts`).
   */
  static start(options: PipelineOptions, workerUrl = WORKER_URL): Promise<WorkerEngine> {
    const worker = new Worker(workerUrl, { type: "module" });
    return new Promise((resolve, reject) => {
      worker.onmessage = (event: MessageEvent<ComputeReply>) => {
        const reply = event.data;
        if ("ready" in reply) return resolve(new WorkerEngine(worker, reply.ready, reply.memory));
        worker.terminate();
        const failed = "failed" in reply ? reply.failed : { name: "Error", message: "unexpected reply" };
        reject(Object.assign(new Error(failed.message), { name: failed.name }));
      };
      worker.onerror = (event: ErrorEvent) => {
        event.preventDefault();
        worker.terminate();
        reject(new ComputeWorkerError(`compute worker failed to start: ${event.message}`));
      };
      worker.postMessage({ pipeline: options } satisfies WorkerInit);
    });
  }

  get name(): string {
    return this.#info.name;
  }
  get inputShape(): [number, number, number] {
    return this.#info.inputShape;
  }
  get inputRange(): [number, number] {
    return this.#info.inputRange;
  }
  get numClasses(): number {
    return this.#info.numClasses;
  }
  get certifierSettings(): StageSettings {
    return this.#info.certifierSettings;
  }
  get answers(): boolean {
    return this.#info.answers;
  }
  get detectors(): string[] {
    return this.#info.detectors;
  }
  get policy(): { policy: Policy; alpha: number } {
    return this.#info.policy;
  }
  get needsSignals(): boolean {
    return this.#info.needsSignals;
  }
  get exampleSize(): number {
    const [h, w, c] = this.#info.inputShape;
    return h * w * c;
  }

  /** Bare prediction of `n` examples, in the worker. */
  predict(rows: Float32Array, n: number): Promise<PredictBatch> {
    return this.#call({ call: "predict", rows, n }) as Promise<PredictBatch>;
  }

  /** The defense pipeline on `n` examples, in the worker (as `ServingEngine.defend`). */
  defend(
    rows: Float32Array,
    n: number,
    verdictAfter?: boolean,
    signals?: Float32Array[],
    transforms?: boolean,
  ): Promise<DefendBatch> {
    return this.#call({ call: "defend", rows, n, verdictAfter, signals, transforms }) as Promise<DefendBatch>;
  }

  /** Certificates for `n` examples, in the worker. */
  certify(rows: Float32Array, n: number, request: CertifyRequest): Promise<Certificate[]> {
    return this.#call({ call: "certify", rows, n, request }) as Promise<Certificate[]>;
  }

  /** Nothing to do: the worker warmed the model up before it said it was ready. */
  warmUp(): Promise<void> {
    return Promise.resolve();
  }

  /** What `Describe` reports (read in the worker when it loaded the model). */
  describe(): ModelDescription {
    return this.#info.description;
  }

  /** The worker's tfjs memory as of its last reply (taken after each call has disposed its tensors). */
  ownTensors(): TensorMemory {
    return this.#memory;
  }

  /** Terminates the worker; calls still running are rejected. */
  dispose(): void {
    this.#worker.terminate();
    this.#stop(new ComputeWorkerError(`compute worker of model ${this.name} was stopped`));
  }

  #call(call: ComputeJob): Promise<unknown> {
    if (this.#stopped) return Promise.reject(this.#stopped);
    const id = this.#nextId++;
    // A copy of this call's rows alone, transferred: `rows` is often a view into a larger request buffer.
    const rows = call.rows.slice();
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...call, rows, id } satisfies ComputeCall, [rows.buffer]);
    });
  }

  #reply(reply: ComputeReply): void {
    this.#memory = reply.memory;
    if (!("id" in reply)) return;
    const pending = this.#pending.get(reply.id);
    if (!pending) return;
    this.#pending.delete(reply.id);
    if ("error" in reply) {
      pending.reject(Object.assign(new Error(reply.error.message), { name: reply.error.name }));
    } else pending.resolve(reply.result);
  }

  #stop(error: ComputeWorkerError): void {
    this.#stopped ??= error;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}
