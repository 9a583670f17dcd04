/**
 * The request logic of `nip.v1.DefenseService`, free of gRPC plumbing: decode the input, defend or
 * predict through the dynamic batcher, forward upstream, build the answer messages.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { encodeImage } from "../image/codec.ts";
import { inputToImage } from "../image/resize.ts";
import type { Upstream, UpstreamAnswer } from "../upstream/types.ts";
import { type BatchInfo, DynamicBatcher } from "./batcher.ts";
import type { SidecarConfig } from "./config.ts";
import type { DefendBatch, PredictBatch, ServingEngine } from "./engine.ts";
import { invalidArgument, StatusError } from "./errors.ts";
import { type DecodedInput, decodeInput, type InputMessage, type WavDecoder } from "./input.ts";
import type { SidecarMetrics } from "./metrics.ts";
import { status } from "@grpc/grpc-js";

/** `DefendRequest` / `ClassifyRequest` / `PredictRequest` as loaded. */
export interface RequestMessage {
  model?: string;
  input?: InputMessage | null;
  outputFormat?: string;
}

/** A Classify request in the batch queue: its examples and its deadline. */
interface ClassifyItem extends DecodedInput {
  deadline?: number;
}

/** One Classify request's share of a defended, forwarded batch. */
interface ClassifyResult {
  defended: DefendBatch;
  answers: UpstreamAnswer[];
  upstreamMs: number;
}

interface ModelSlot {
  engine: ServingEngine;
  defend: DynamicBatcher<DecodedInput, DefendBatch>;
  predict: DynamicBatcher<DecodedInput, PredictBatch>;
  /** Defends a batch and forwards it upstream in one call; absent without an upstream. */
  classify?: DynamicBatcher<ClassifyItem, ClassifyResult>;
}

function concatRows(items: DecodedInput[], size: number): { rows: Float32Array; n: number } {
  const n = items.reduce((s, it) => s + it.n, 0);
  if (items.length === 1) return { rows: items[0].rows, n };
  const rows = new Float32Array(n * size);
  let offset = 0;
  for (const it of items) {
    rows.set(it.rows, offset);
    offset += it.rows.length;
  }
  return { rows, n };
}

function sliceDefend(
  batch: DefendBatch,
  start: number,
  n: number,
  size: number,
  classes: number,
): DefendBatch {
  return {
    defended: batch.defended.subarray(start * size, (start + n) * size),
    labelsBefore: batch.labelsBefore.subarray(start, start + n),
    labelsAfter: batch.labelsAfter.subarray(start, start + n),
    scoresBefore: batch.scoresBefore.subarray(start * classes, (start + n) * classes),
    scoresAfter: batch.scoresAfter.subarray(start * classes, (start + n) * classes),
    candidateIndex: batch.candidateIndex.subarray(start, start + n),
    similarity: batch.similarity.subarray(start, start + n),
  };
}

function splitPerItem<T>(
  items: DecodedInput[],
  whole: T,
  slice: (whole: T, start: number, n: number) => T,
): T[] {
  let start = 0;
  return items.map((it) => {
    const part = slice(whole, start, it.n);
    start += it.n;
    return part;
  });
}

function float32Bytes(values: Float32Array): Buffer {
  const out = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i], i * 4);
  return out;
}

/** The service's logic over a set of loaded models. */
export class DefenseServiceCore {
  readonly #slots = new Map<string, ModelSlot>();
  readonly #defaultName: string;
  readonly #config: SidecarConfig;
  readonly #metrics: SidecarMetrics;
  readonly #upstream?: Upstream;
  readonly #wav?: WavDecoder;

  constructor(
    engines: ServingEngine[],
    config: SidecarConfig,
    metrics: SidecarMetrics,
    upstream?: Upstream,
    wav?: WavDecoder,
  ) {
    if (engines.length === 0) throw new Error("no model to serve");
    this.#config = config;
    this.#metrics = metrics;
    this.#upstream = upstream;
    this.#wav = wav;
    this.#defaultName = engines[0].name;
    for (const engine of engines) {
      const size = engine.exampleSize;
      const classes = engine.numClasses;
      const onBatch = (op: string) => (examples: number) => metrics.batchSize.observe(examples, { op });
      const defend = new DynamicBatcher<DecodedInput, DefendBatch>(
        config.batching,
        (items) => {
          const { rows, n } = concatRows(items, size);
          const whole = engine.defend(rows, n);
          return splitPerItem(items, whole, (w, start, k) => sliceDefend(w, start, k, size, classes));
        },
        (item) => item.n,
        onBatch("defend"),
      );
      const predict = new DynamicBatcher<DecodedInput, PredictBatch>(
        config.batching,
        (items) => {
          const { rows, n } = concatRows(items, size);
          const whole = engine.predict(rows, n);
          return splitPerItem(items, whole, (w, start, k) => ({
            labels: w.labels.subarray(start, start + k),
            scores: w.scores.subarray(start * classes, (start + k) * classes),
          }));
        },
        (item) => item.n,
        onBatch("predict"),
      );
      // Classify batches the upstream call too: one ModelInfer per batch, not per request. The batch's
      // upstream deadline is its earliest request's; an upstream failure fails the whole batch.
      const classify = upstream
        ? new DynamicBatcher<ClassifyItem, ClassifyResult>(
          config.batching,
          async (items) => {
            const { rows, n } = concatRows(items, size);
            const whole = engine.defend(rows, n);
            const deadlines = items.map((it) => it.deadline).filter((d): d is number => d !== undefined);
            const upstreamStart = performance.now();
            let answers: UpstreamAnswer[];
            try {
              answers = await upstream.classify({
                rows: whole.defended,
                n,
                shape: engine.inputShape,
                range: engine.inputRange,
                deadline: deadlines.length > 0 ? Math.min(...deadlines) : undefined,
              });
            } catch (error) {
              const code = (error as { code?: number }).code ?? status.UNKNOWN;
              metrics.upstreamErrors.inc({ code: status[code] ?? String(code) });
              throw error;
            } finally {
              metrics.upstreamLatency.observe((performance.now() - upstreamStart) / 1000);
            }
            const upstreamMs = performance.now() - upstreamStart;
            let start = 0;
            return items.map((it) => {
              const part = {
                defended: sliceDefend(whole, start, it.n, size, classes),
                answers: answers.slice(start, start + it.n),
                upstreamMs,
              };
              start += it.n;
              return part;
            });
          },
          (item) => item.n,
          onBatch("classify"),
        )
        : undefined;
      this.#slots.set(engine.name, { engine, defend, predict, classify });
    }
    metrics.addGauge("nip_queue_depth", "Requests waiting in the batch queues.", () => {
      let total = 0;
      for (const s of this.#slots.values()) {
        total += s.defend.queueLength + s.predict.queueLength + (s.classify?.queueLength ?? 0);
      }
      return total;
    });
  }

  /** Names of the loaded models, default first. */
  get modelNames(): string[] {
    return [...this.#slots.keys()];
  }

  #slot(name: string | undefined): ModelSlot {
    const slot = this.#slots.get(name || this.#defaultName);
    if (!slot) throw invalidArgument(`model: unknown model "${name}"; loaded: ${this.modelNames.join(", ")}`);
    return slot;
  }

  #decode(slot: ModelSlot, request: RequestMessage): DecodedInput {
    return decodeInput(request.input, {
      shape: slot.engine.inputShape,
      range: slot.engine.inputRange,
      maxExamples: this.#config.maxExamplesPerRequest,
      maxImagePixels: this.#config.maxImagePixels,
      wav: this.#wav,
    });
  }

  #output(slot: ModelSlot, defended: Float32Array, n: number, format: string) {
    const { engine } = slot;
    if (format === "OUTPUT_FORMAT_PNG" || format === "OUTPUT_FORMAT_JPEG") {
      const kind = format === "OUTPUT_FORMAT_PNG" ? "png" : "jpeg";
      const size = engine.exampleSize;
      const images = Array.from({ length: n }, (_, i) => ({
        data: Buffer.from(
          encodeImage(
            inputToImage(defended.subarray(i * size, (i + 1) * size), engine.inputShape, engine.inputRange),
            kind,
          ),
        ),
        format: kind === "png" ? "IMAGE_FORMAT_PNG" : "IMAGE_FORMAT_JPEG",
      }));
      return { tensor: null, images };
    }
    return {
      tensor: { shape: [n, ...engine.inputShape], dtype: "DATA_TYPE_FLOAT32", data: float32Bytes(defended) },
      images: [],
    };
  }

  #verdicts(slot: ModelSlot, d: DefendBatch, n: number) {
    const classes = slot.engine.numClasses;
    this.#metrics.defended.inc({}, n);
    return Array.from({ length: n }, (_, i) => {
      const flipped = d.labelsBefore[i] !== d.labelsAfter[i];
      if (flipped) this.#metrics.labelFlips.inc();
      return {
        labelBefore: d.labelsBefore[i],
        labelAfter: d.labelsAfter[i],
        scoresBefore: Array.from(d.scoresBefore.subarray(i * classes, (i + 1) * classes)),
        scoresAfter: Array.from(d.scoresAfter.subarray(i * classes, (i + 1) * classes)),
        candidateIndex: d.candidateIndex[i],
        similarity: d.similarity[i],
        labelFlipped: flipped,
      };
    });
  }

  static #timings(info: BatchInfo, computeStart: number, start: number, upstreamMs = 0) {
    const now = performance.now();
    return {
      queueMs: info.queueMs,
      computeMs: now - computeStart - upstreamMs - info.queueMs,
      upstreamMs,
      totalMs: now - start,
      batchExamples: info.batchExamples,
    };
  }

  /** `Defend`. */
  async defend(request: RequestMessage) {
    const start = performance.now();
    const slot = this.#slot(request.model);
    const input = this.#decode(slot, request);
    const computeStart = performance.now();
    const { result, info } = await slot.defend.submit(input);
    const format = request.outputFormat && request.outputFormat !== "OUTPUT_FORMAT_UNSPECIFIED"
      ? request.outputFormat
      : "OUTPUT_FORMAT_TENSOR";
    return {
      model: slot.engine.name,
      defended: format === "OUTPUT_FORMAT_NONE" ? null : this.#output(slot, result.defended, input.n, format),
      verdicts: this.#verdicts(slot, result, input.n),
      timings: DefenseServiceCore.#timings(info, computeStart, start),
    };
  }

  /** `Classify`: defend, then forward the defended input upstream. */
  async classify(request: RequestMessage, deadline?: number) {
    const start = performance.now();
    const upstream = this.#upstream;
    if (!upstream) {
      throw new StatusError(
        status.FAILED_PRECONDITION,
        "Classify needs an upstream model server; start the sidecar with --upstream oip|http",
      );
    }
    const slot = this.#slot(request.model);
    const input = this.#decode(slot, request);
    const computeStart = performance.now();
    const { result: classified, info } = await slot.classify!.submit({ ...input, deadline });
    const { defended: result, answers, upstreamMs } = classified;
    const format = request.outputFormat ?? "OUTPUT_FORMAT_UNSPECIFIED";
    const wantsDefended = format !== "OUTPUT_FORMAT_UNSPECIFIED" && format !== "OUTPUT_FORMAT_NONE";
    return {
      model: slot.engine.name,
      answers,
      verdicts: this.#verdicts(slot, result, input.n),
      defended: wantsDefended ? this.#output(slot, result.defended, input.n, format) : null,
      timings: DefenseServiceCore.#timings(info, computeStart, start, upstreamMs),
      upstream: upstream.description,
    };
  }

  /** `Predict`: the local model's bare prediction, no defense. */
  async predict(request: RequestMessage) {
    const start = performance.now();
    const slot = this.#slot(request.model);
    const input = this.#decode(slot, request);
    const computeStart = performance.now();
    const { result, info } = await slot.predict.submit(input);
    const classes = slot.engine.numClasses;
    return {
      model: slot.engine.name,
      predictions: Array.from({ length: input.n }, (_, i) => ({
        label: result.labels[i],
        scores: Array.from(result.scores.subarray(i * classes, (i + 1) * classes)),
      })),
      timings: DefenseServiceCore.#timings(info, computeStart, start),
    };
  }

  /** `Describe`. */
  describe(request: { model?: string }) {
    const slot = this.#slot(request.model);
    const d = slot.engine.describe();
    return {
      modelInfo: {
        ...d,
        isDefault: slot.engine.name === this.#defaultName,
        inputKinds: this.#wav ? ["tensor", "image", "wav"] : ["tensor", "image"],
      },
      models: this.modelNames,
      upstream: this.#upstream?.description ?? "",
    };
  }

  /** Waits for queued work, then refuses more. */
  async close(): Promise<void> {
    await Promise.all(
      [...this.#slots.values()].flatMap((s) => [s.defend.close(), s.predict.close(), s.classify?.close()]),
    );
  }
}
