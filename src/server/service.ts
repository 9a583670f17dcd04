/**
 * The request logic of `nip.v1.DefenseService`, free of gRPC plumbing: decode the input, defend or
 * predict through the dynamic batcher, forward upstream, build the answer messages. With an audio front
 * end the models are audio models: WAV in, defended features or the defended WAV out and upstream.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { encodeImage } from "../image/codec.ts";
import { inputToImage } from "../image/resize.ts";
import type { Upstream, UpstreamAnswer } from "../upstream/types.ts";
import type { AudioFrontEnd } from "./audio.ts";
import { readsAudioFeatures } from "../../audio/config.ts";
import { checkAnswers } from "../upstream/answers.ts";
import { batchDeadline, expired } from "./batch_deadline.ts";
import { type BatchInfo, DynamicBatcher } from "./batcher.ts";
import type { SidecarConfig } from "./config.ts";
import type { BatchDetection, DefendBatch, Engine, PredictBatch } from "./engine.ts";
import {
  decide,
  type Decision,
  needsAnswer,
  needsDetection,
  POLICIES,
  type Policy,
} from "../stages/policy.ts";
import { applyPolicy, type SmoothedCheck, smoothedChecks } from "./verdict_policy.ts";
import { checkCertifyRequest } from "../smoothing/cohen.ts";
import { invalidArgument, StatusError } from "./errors.ts";
import { type DecodedInput, decodeInput, type InputMessage } from "./input.ts";
import { DecodePool } from "./decode_pool.ts";
import type { SidecarMetrics } from "./metrics.ts";
import { status } from "@grpc/grpc-js";

/** `DefendRequest` / `ClassifyRequest` / `PredictRequest` as loaded. */
export interface RequestMessage {
  model?: string;
  input?: InputMessage | null;
  outputFormat?: string;
  /** Do not classify the defended input locally. */
  skipVerdictAfter?: boolean;
  /** `POLICY_*`: overrides the deployment's policy. */
  policy?: string;
}

/** `CertifyRequest` as loaded (zeros mean the deployment's settings). */
export interface CertifyMessage {
  model?: string;
  input?: InputMessage | null;
  sigma?: number;
  n0?: number;
  n?: number;
  alpha?: number;
  seed?: number;
}

/** Most noisy forwards one Certify request may ask for, over all its examples. */
export const CERTIFY_MAX_FORWARDS = 1_000_000;

/** A Defend request in the batch queue: its examples, whether it wants the verdict after, its policy. */
interface DefendItem extends DecodedInput {
  verdictAfter: boolean;
  policy: Policy;
}

/** A Classify request in the batch queue: its examples, its deadline, its verdict choice. */
interface ClassifyItem extends DefendItem {
  deadline?: number;
}

/** One Classify request's share of a defended, forwarded batch. */
interface ClassifyResult {
  defended: DefendBatch;
  /** The policy's decision per example. */
  decisions: Decision[];
  /** One per example; a placeholder (label -1) for an example that was not forwarded or was withheld. */
  answers: UpstreamAnswer[];
  /** The smoothed policies: each example's answer checked against the smoothed classifier. */
  checks?: SmoothedCheck[];
  upstreamMs: number;
  /** The defended WAV that was forwarded (WAV payload only), and the time its resynthesis took. */
  wav?: Uint8Array;
  audioMs: number;
}

const IMAGE_FORMATS = new Set(["OUTPUT_FORMAT_PNG", "OUTPUT_FORMAT_JPEG"]);
/** Every `OutputFormat` the proto defines; proto-loader gives an unknown value as its number. */
const OUTPUT_FORMATS = [
  "OUTPUT_FORMAT_UNSPECIFIED",
  "OUTPUT_FORMAT_TENSOR",
  "OUTPUT_FORMAT_PNG",
  "OUTPUT_FORMAT_JPEG",
  "OUTPUT_FORMAT_NONE",
  "OUTPUT_FORMAT_WAV",
];

interface ModelSlot {
  engine: Engine;
  defend: DynamicBatcher<DefendItem, DefendBatch>;
  predict: DynamicBatcher<DecodedInput, PredictBatch>;
  /**
   * Defends a batch and forwards it upstream in one call (a request whose deadline passed in the queue
   * gets its DEADLINE_EXCEEDED instead); absent without an upstream.
   */
  classify?: DynamicBatcher<ClassifyItem, ClassifyResult | StatusError>;
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

/** Whether any request of a batch wants the local verdict after defense (then the batch computes it). */
function anyVerdictAfter(items: DefendItem[]): boolean {
  return items.some((it) => it.verdictAfter);
}

/** Whether any request's policy may transform an example (else the batch skips the transforms). */
function anyTransform(items: DefendItem[]): boolean {
  return items.some((it) => decide(it.policy, true).transform || decide(it.policy, false).transform);
}

/** The raw signal of each example (WAV requests carry one example each), when every request has one. */
function signalsOf(items: DecodedInput[]): Float32Array[] | undefined {
  return items.every((it) => it.samples) ? items.map((it) => it.samples!) : undefined;
}

function sliceDetection(detection: BatchDetection, start: number, n: number): BatchDetection {
  const slice = (record: Record<string, Float32Array>) =>
    Object.fromEntries(Object.entries(record).map(([k, v]) => [k, v.subarray(start, start + n)]));
  return {
    pValue: detection.pValue.subarray(start, start + n),
    scores: slice(detection.scores),
    pValues: slice(detection.pValues),
  };
}

/** The placeholder answer of an example that was not forwarded (rejected, or policy detect). */
const NOT_FORWARDED: UpstreamAnswer = { label: -1, scores: [], json: "" };

function sliceDefend(
  batch: DefendBatch,
  start: number,
  n: number,
  size: number,
  classes: number,
): DefendBatch {
  const after = batch.labelsAfter.length > 0;
  return {
    detection: batch.detection ? sliceDetection(batch.detection, start, n) : undefined,
    defended: batch.defended.subarray(start * size, (start + n) * size),
    labelsBefore: batch.labelsBefore.subarray(start, start + n),
    labelsAfter: after ? batch.labelsAfter.subarray(start, start + n) : batch.labelsAfter,
    scoresBefore: batch.scoresBefore.subarray(start * classes, (start + n) * classes),
    scoresAfter: after
      ? batch.scoresAfter.subarray(start * classes, (start + n) * classes)
      : batch.scoresAfter,
    candidateIndex: batch.candidateIndex.subarray(start, start + n),
    similarity: batch.similarity.subarray(start, start + n),
    answered: batch.answered,
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
  readonly #audio?: AudioFrontEnd;
  /** Decodes images and WAVs off the event loop; closed by {@link DefenseServiceCore.close}. */
  readonly #decoder: DecodePool;

  /**
   * `audio`: the WAV front end; when given, every model is served as an audio model and must read its
   * features. An upstream with the "wav" payload (`audioPayload: "wav"`) needs it.
   */
  constructor(
    engines: Engine[],
    config: SidecarConfig,
    metrics: SidecarMetrics,
    upstream?: Upstream,
    audio?: AudioFrontEnd,
  ) {
    if (engines.length === 0) throw new Error("no model to serve");
    this.#config = config;
    this.#metrics = metrics;
    this.#upstream = upstream;
    this.#audio = audio;
    this.#decoder = new DecodePool(config.decode);
    this.#defaultName = engines[0].name;
    if (audio) {
      for (const e of engines) {
        if (!readsAudioFeatures(e.inputShape, e.inputRange)) {
          throw new Error(
            `model ${e.name} reads [${e.inputShape}] in [${e.inputRange}], not the audio front end's ` +
              `[${audio.shape}] in [${audio.range}]; serve it without the WAV front end`,
          );
        }
      }
    }
    if (upstream?.payload === "wav" && !audio) {
      throw new Error(
        `upstream ${upstream.description} takes WAVs; it needs an audio model and its front end`,
      );
    }
    for (const engine of engines) {
      const size = engine.exampleSize;
      const classes = engine.numClasses;
      const onBatch = (op: string) => (examples: number) => metrics.batchSize.observe(examples, { op });
      const defend = new DynamicBatcher<DefendItem, DefendBatch>(
        config.batching,
        async (items) => {
          const { rows, n } = concatRows(items, size);
          const whole = await engine.defend(
            rows,
            n,
            anyVerdictAfter(items),
            signalsOf(items),
            anyTransform(items),
          );
          return splitPerItem(items, whole, (w, start, k) => sliceDefend(w, start, k, size, classes));
        },
        (item) => item.n,
        onBatch("defend"),
      );
      const predict = new DynamicBatcher<DecodedInput, PredictBatch>(
        config.batching,
        async (items) => {
          const { rows, n } = concatRows(items, size);
          const whole = await engine.predict(rows, n);
          return splitPerItem(items, whole, (w, start, k) => ({
            labels: w.labels.subarray(start, start + k),
            scores: w.scores.subarray(start * classes, (start + k) * classes),
          }));
        },
        (item) => item.n,
        onBatch("predict"),
      );
      // Classify batches the upstream call too: one ModelInfer per batch, not per request. The call runs
      // until the latest deadline of the requests still in time (batch_deadline.ts); an upstream failure
      // fails the whole batch.
      const classify = upstream
        ? new DynamicBatcher<ClassifyItem, ClassifyResult | StatusError>(
          config.batching,
          async (items) => {
            const { rows, n } = concatRows(items, size);
            const whole = await engine.defend(
              rows,
              n,
              anyVerdictAfter(items),
              signalsOf(items),
              anyTransform(items),
            );
            const { alpha } = engine.policy;
            let start = 0;
            const parts = items.map((it) => {
              const part = applyPolicy(
                sliceDefend(whole, start, it.n, size, classes),
                it.rows,
                it.policy,
                alpha,
                size,
                classes,
              );
              start += it.n;
              return part;
            });
            // A request whose deadline passed while it waited is dropped: its client has its answer.
            const late = items.map((it) => expired(it.deadline));
            // Only what the policies forward goes upstream; a batch with nothing to forward makes no call.
            const forwarded = parts.flatMap((part, i) =>
              late[i] ? [] : part.decisions.flatMap((d, j) => d.forward ? [{ item: i, example: j }] : [])
            );
            const deadline = batchDeadline(items.filter((_, i) => !late[i]).map((it) => it.deadline));
            // WAV payload: each forwarded request's defended WAV, resynthesised before the call (an audio
            // model takes one WAV per request, so request i is example i).
            const encoded = upstream.payload === "wav"
              ? items.map((it, i) =>
                forwarded.some((f) => f.item === i) ? this.#encodeWav(it, parts[i].batch.defended) : undefined
              )
              : undefined;
            const wavs = encoded?.flatMap((e) => e ? [e.wav] : []);
            const forwardRows = new Float32Array(forwarded.length * size);
            forwarded.forEach((f, k) =>
              forwardRows.set(
                parts[f.item].batch.defended.subarray(f.example * size, (f.example + 1) * size),
                k * size,
              )
            );
            const upstreamStart = performance.now();
            let answers: UpstreamAnswer[] = [];
            if (forwarded.length > 0) {
              try {
                answers = await upstream.classify({
                  rows: forwardRows,
                  n: forwarded.length,
                  shape: engine.inputShape,
                  range: engine.inputRange,
                  deadline,
                  wavs,
                });
                checkAnswers(answers, forwarded.length, classes, upstream.description);
              } catch (error) {
                const code = (error as { code?: number }).code ?? status.UNKNOWN;
                metrics.upstreamErrors.inc({ code: status[code] ?? String(code) });
                throw error;
              } finally {
                metrics.upstreamLatency.observe((performance.now() - upstreamStart) / 1000);
              }
            }
            const upstreamMs = forwarded.length > 0 ? performance.now() - upstreamStart : 0;
            const perItem = parts.map((part) => part.decisions.map(() => NOT_FORWARDED));
            forwarded.forEach((f, k) => perItem[f.item][f.example] = answers[k]);
            return items.map((it, i) => {
              if (late[i]) {
                return new StatusError(status.DEADLINE_EXCEEDED, "deadline exceeded in the batch queue");
              }
              const smoothed = needsAnswer(it.policy)
                ? smoothedChecks(
                  it.policy,
                  parts[i].batch.labelsAfter,
                  perItem[i].map((a) => a.label),
                )
                : undefined;
              return {
                defended: parts[i].batch,
                decisions: smoothed?.decisions ?? parts[i].decisions,
                answers: smoothed
                  ? perItem[i].map((a, j) => smoothed.decisions[j].rejected ? NOT_FORWARDED : a)
                  : perItem[i],
                checks: smoothed?.checks,
                upstreamMs,
                wav: encoded?.[i]?.wav,
                audioMs: encoded?.[i]?.ms ?? 0,
              };
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

  /** Decodes a request's input; for a defense, refuses tensors when a stage needs the raw waveform. */
  async #decode(slot: ModelSlot, request: RequestMessage, forDefense = false): Promise<DecodedInput> {
    const input = await decodeInput(request.input, {
      shape: slot.engine.inputShape,
      range: slot.engine.inputRange,
      maxExamples: this.#config.maxExamplesPerRequest,
      maxImagePixels: this.#config.maxImagePixels,
      model: slot.engine.name,
      audio: this.#audio,
      decoder: this.#decoder,
    });
    if (forDefense && slot.engine.needsSignals && !input.samples) {
      throw invalidArgument(
        `input: the defense of model ${slot.engine.name} acts on the raw waveform; send a WAV, not a tensor`,
      );
    }
    return input;
  }

  /** Rejects an output format the model's modality cannot give, before any work is done. */
  #checkFormat(format: string): void {
    if (!OUTPUT_FORMATS.includes(format)) {
      throw invalidArgument(
        `output_format: unknown value ${format}; expected one of ${OUTPUT_FORMATS.join(", ")}`,
      );
    }
    if (this.#audio && IMAGE_FORMATS.has(format)) {
      throw invalidArgument(
        `output_format: ${format} is for image models; an audio model returns ` +
          "OUTPUT_FORMAT_WAV or OUTPUT_FORMAT_TENSOR",
      );
    }
    if (!this.#audio && format === "OUTPUT_FORMAT_WAV") {
      throw invalidArgument("output_format: OUTPUT_FORMAT_WAV needs an audio model; this model takes images");
    }
  }

  /** The defended WAV of a WAV request (one example), and the milliseconds the resynthesis took. */
  #encodeWav(input: DecodedInput, defended: Float32Array): { wav: Uint8Array; ms: number } {
    const t = performance.now();
    const wav = this.#audio!.encode(input.samples!, defended);
    return { wav, ms: performance.now() - t };
  }

  #output(slot: ModelSlot, defended: Float32Array, n: number, format: string, wav?: Uint8Array) {
    const { engine } = slot;
    if (format === "OUTPUT_FORMAT_WAV") return { tensor: null, images: [], wav: Buffer.from(wav!) };
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

  /**
   * The verdicts of one request; without `verdictAfter` the label after is -1 and its scores empty. With a
   * detection stage each verdict carries the detection and the policy's decision.
   */
  #verdicts(
    slot: ModelSlot,
    d: DefendBatch,
    n: number,
    verdictAfter: boolean,
    decisions: Decision[],
    checks?: SmoothedCheck[],
  ) {
    const classes = slot.engine.numClasses;
    const { alpha } = slot.engine.policy;
    this.#metrics.defended.inc({}, decisions.filter((x) => x.transform).length);
    return Array.from({ length: n }, (_, i) => {
      const flipped = verdictAfter && d.labelsBefore[i] !== d.labelsAfter[i];
      if (flipped) this.#metrics.labelFlips.inc();
      const detection = d.detection ? this.#detectionVerdict(d.detection, i, alpha, decisions[i]) : {};
      const check = checks ? this.#smoothedVerdict(checks[i], decisions[i]) : {};
      // A smoothing stage's answer is the verdict after even when the request skipped the local verdict.
      const after = verdictAfter || d.answered === true;
      return {
        labelBefore: d.labelsBefore[i],
        labelAfter: after ? d.labelsAfter[i] : -1,
        scoresBefore: Array.from(d.scoresBefore.subarray(i * classes, (i + 1) * classes)),
        scoresAfter: after && d.scoresAfter.length > 0
          ? Array.from(d.scoresAfter.subarray(i * classes, (i + 1) * classes))
          : [],
        candidateIndex: d.candidateIndex[i],
        similarity: d.similarity[i],
        labelFlipped: flipped,
        defended: decisions[i].transform,
        ...detection,
        ...check,
      };
    });
  }

  /** One example's smoothed-policy fields, counted as the detection's are (detector "smoothing"). */
  #smoothedVerdict(check: SmoothedCheck, decision: Decision) {
    if (check.flagged) this.#metrics.flagged.inc({ detector: "smoothing" });
    if (decision.rejected) this.#metrics.rejected.inc({ detector: "smoothing" });
    return {
      flagged: check.flagged,
      rejected: decision.rejected,
      reason: decision.rejected ? `rejected: ${check.reason}` : check.reason,
    };
  }

  /** One example's detection fields, counting flagged and rejected examples by detector. */
  #detectionVerdict(detection: BatchDetection, i: number, alpha: number, decision: Decision) {
    const pValue = detection.pValue[i];
    const flagged = pValue <= alpha;
    const below = Object.keys(detection.pValues).filter((name) => detection.pValues[name][i] <= alpha);
    for (const name of [...(flagged ? ["combined"] : []), ...below]) {
      this.#metrics.flagged.inc({ detector: name });
    }
    if (decision.rejected) {
      for (const name of ["combined", ...below]) this.#metrics.rejected.inc({ detector: name });
    }
    return {
      flagged,
      pValue,
      detectorScores: Object.fromEntries(Object.entries(detection.scores).map(([k, v]) => [k, v[i]])),
      detectorPValues: Object.fromEntries(Object.entries(detection.pValues).map(([k, v]) => [k, v[i]])),
      rejected: decision.rejected,
      reason: decision.rejected
        ? `rejected: combined p-value ${pValue.toPrecision(3)} <= alpha ${alpha}` +
          (below.length > 0 ? `; detectors at or below alpha: ${below.join(", ")}` : "")
        : "",
    };
  }

  /** The request's policy (`POLICY_UNSPECIFIED`: the deployment's); one that needs detection needs it here. */
  #policyOf(slot: ModelSlot, request: RequestMessage): Policy {
    const requested = request.policy ?? "POLICY_UNSPECIFIED";
    const policy = requested === "POLICY_UNSPECIFIED"
      ? slot.engine.policy.policy
      : POLICIES.find((p) => `POLICY_${p.toUpperCase().replaceAll("-", "_")}` === requested);
    if (policy === undefined) throw invalidArgument(`policy: unknown policy ${requested}`);
    if (needsAnswer(policy) && !slot.engine.answers) {
      throw invalidArgument(
        `policy: ${requested} needs a smoothing stage; model ${slot.engine.name} runs without one ` +
          "(start the sidecar with --defense smooth)",
      );
    }
    if (needsDetection(policy) && slot.engine.detectors.length === 0) {
      throw invalidArgument(
        `policy: ${requested} needs a detection stage; model ${slot.engine.name} runs without one ` +
          "(serve it with --defense detect+nip after `deno task calibrate:detectors`)",
      );
    }
    return policy;
  }

  /**
   * `audioMs` (decoding before `computeStart` plus resynthesis after it) is reported on its own and kept
   * out of `computeMs`.
   */
  static #timings(
    info: BatchInfo,
    computeStart: number,
    start: number,
    upstreamMs = 0,
    audio = { decodeMs: 0, encodeMs: 0 },
  ) {
    const now = performance.now();
    return {
      queueMs: info.queueMs,
      computeMs: now - computeStart - upstreamMs - info.queueMs - audio.encodeMs,
      upstreamMs,
      totalMs: now - start,
      batchExamples: info.batchExamples,
      audioMs: audio.decodeMs + audio.encodeMs,
    };
  }

  /** `Defend`. */
  async defend(request: RequestMessage) {
    const start = performance.now();
    const slot = this.#slot(request.model);
    const format = request.outputFormat && request.outputFormat !== "OUTPUT_FORMAT_UNSPECIFIED"
      ? request.outputFormat
      : "OUTPUT_FORMAT_TENSOR";
    this.#checkFormat(format);
    const input = await this.#decode(slot, request, true);
    const computeStart = performance.now();
    const decodeMs = input.samples ? computeStart - start : 0;
    const verdictAfter = !request.skipVerdictAfter;
    const policy = this.#policyOf(slot, request);
    const submitted = await slot.defend.submit({ ...input, verdictAfter, policy });
    const { info } = submitted;
    const applied = applyPolicy(
      submitted.result,
      input.rows,
      policy,
      slot.engine.policy.alpha,
      slot.engine.exampleSize,
      slot.engine.numClasses,
    );
    const result = applied.batch;
    // Without an upstream, the smoothed policies check the local model's own answer.
    const smoothed = needsAnswer(policy)
      ? smoothedChecks(policy, result.labelsAfter, result.labelsBefore)
      : undefined;
    const decisions = smoothed?.decisions ?? applied.decisions;
    const encoded = format === "OUTPUT_FORMAT_WAV" ? this.#encodeWav(input, result.defended) : undefined;
    return {
      model: slot.engine.name,
      defended: format === "OUTPUT_FORMAT_NONE"
        ? null
        : this.#output(slot, result.defended, input.n, format, encoded?.wav),
      verdicts: this.#verdicts(slot, result, input.n, verdictAfter, decisions, smoothed?.checks),
      timings: DefenseServiceCore.#timings(info, computeStart, start, 0, {
        decodeMs,
        encodeMs: encoded?.ms ?? 0,
      }),
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
    const format = request.outputFormat ?? "OUTPUT_FORMAT_UNSPECIFIED";
    this.#checkFormat(format);
    const input = await this.#decode(slot, request, true);
    const computeStart = performance.now();
    const decodeMs = input.samples ? computeStart - start : 0;
    const verdictAfter = !request.skipVerdictAfter;
    const policy = this.#policyOf(slot, request);
    const { result: classified, info } = await slot.classify!.submit({
      ...input,
      deadline,
      verdictAfter,
      policy,
    });
    if (classified instanceof StatusError) throw classified;
    const { defended: result, answers, upstreamMs } = classified;
    const wantsDefended = format !== "OUTPUT_FORMAT_UNSPECIFIED" && format !== "OUTPUT_FORMAT_NONE";
    // The forwarded WAV is returned as is; with a features upstream it is made here when asked for.
    let encodeMs = classified.audioMs;
    let wav = classified.wav;
    if (format === "OUTPUT_FORMAT_WAV" && !wav) {
      const encoded = this.#encodeWav(input, result.defended);
      wav = encoded.wav;
      encodeMs += encoded.ms;
    }
    return {
      model: slot.engine.name,
      answers,
      verdicts: this.#verdicts(slot, result, input.n, verdictAfter, classified.decisions, classified.checks),
      defended: wantsDefended ? this.#output(slot, result.defended, input.n, format, wav) : null,
      timings: DefenseServiceCore.#timings(info, computeStart, start, upstreamMs, { decodeMs, encodeMs }),
      upstream: upstream.description,
    };
  }

  /** `Predict`: the local model's bare prediction, no defense. */
  async predict(request: RequestMessage) {
    const start = performance.now();
    const slot = this.#slot(request.model);
    const input = await this.#decode(slot, request);
    const computeStart = performance.now();
    const decodeMs = input.samples ? computeStart - start : 0;
    const { result, info } = await slot.predict.submit(input);
    const classes = slot.engine.numClasses;
    return {
      model: slot.engine.name,
      predictions: Array.from({ length: input.n }, (_, i) => ({
        label: result.labels[i],
        scores: Array.from(result.scores.subarray(i * classes, (i + 1) * classes)),
      })),
      timings: DefenseServiceCore.#timings(info, computeStart, start, 0, { decodeMs, encodeMs: 0 }),
    };
  }

  /**
   * `Certify`: randomized smoothing's certificate for each example, computed outside the batch queues (one
   * request costs its own n0 + n forwards per example); example i is drawn with seed + 2i, and the loop
   * yields between examples so that other requests are served meanwhile.
   */
  async certify(request: CertifyMessage) {
    const start = performance.now();
    const slot = this.#slot(request.model);
    const settings = slot.engine.certifierSettings;
    const sigma = Number(settings.sigma);
    const asked = request.sigma ?? 0;
    if (!Number.isFinite(asked) || asked < 0) {
      throw invalidArgument(`sigma: ${asked} must be a non-negative number (0: the deployment's, ${sigma})`);
    }
    if (asked !== 0 && Math.abs(asked - sigma) > 1e-9) {
      throw invalidArgument(
        `sigma: model ${slot.engine.name} certifies at sigma ${sigma} (its denoiser is trained for that level); ` +
          `send 0 or ${sigma}, or start the sidecar with --stage-settings smooth.sigma=${asked}`,
      );
    }
    // Only 0 (proto3's unset) means "the deployment's": NaN is falsy too, and must be refused, not defaulted.
    const alpha = request.alpha === undefined || request.alpha === 0 ? Number(settings.alpha) : request.alpha;
    if (!Number.isFinite(alpha)) throw invalidArgument(`alpha: ${request.alpha} is not a number`);
    const base = {
      n0: request.n0 || Number(settings.n0),
      n: request.n || Number(settings.n),
      alpha,
      seed: request.seed || crypto.getRandomValues(new Uint32Array(1))[0] >>> 1,
    };
    try {
      checkCertifyRequest(base);
    } catch (error) {
      throw invalidArgument((error as Error).message.replace(/^(\w+) =/, "$1: $1 ="));
    }
    const input = await this.#decode(slot, request);
    if ((base.n0 + base.n) * input.n > CERTIFY_MAX_FORWARDS) {
      throw invalidArgument(
        `n: ${input.n} examples x (n0 ${base.n0} + n ${base.n}) forwards exceeds the limit of ` +
          `${CERTIFY_MAX_FORWARDS} per request; send fewer examples or samples`,
      );
    }
    const computeStart = performance.now();
    const size = slot.engine.exampleSize;
    const certifications = [];
    for (let i = 0; i < input.n; i++) {
      const seed = (base.seed + 2 * i) >>> 0;
      const [c] = await slot.engine.certify(input.rows.subarray(i * size, (i + 1) * size), 1, {
        ...base,
        seed,
      });
      certifications.push({
        label: c.label,
        abstained: c.label === -1,
        radius: c.radius,
        pALower: c.pALower,
        n0: base.n0,
        n: c.n,
        alpha: base.alpha,
        sigma,
        radiusSpace: this.#audio ? "log-mel features (dB)" : "input",
        denoiser: String(settings.denoiser),
        seed,
      });
      this.#metrics.certified.inc({ outcome: c.label === -1 ? "abstained" : "certified" });
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    const now = performance.now();
    return {
      model: slot.engine.name,
      certifications,
      timings: {
        queueMs: 0,
        computeMs: now - computeStart,
        upstreamMs: 0,
        totalMs: now - start,
        batchExamples: input.n,
        audioMs: input.samples ? computeStart - start : 0,
      },
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
        inputKinds: this.#audio ? ["wav"] : ["tensor", "image"],
        modality: this.#audio ? "audio" : "image",
        sampleRate: this.#audio?.sampleRate ?? 0,
        maxAudioSeconds: this.#audio?.maxSeconds ?? 0,
      },
      models: this.modelNames,
      upstream: this.#upstream?.description ?? "",
    };
  }

  /**
   * Refuses more work and waits for queued work, until `deadline` (a `performance.now()` time) at most;
   * stops the decode workers.
   */
  async close(deadline = Infinity): Promise<void> {
    const batchers = [...this.#slots.values()].flatMap((s) => [s.defend, s.predict, s.classify ?? []].flat());
    await Promise.all(batchers.map((b) => b.close(deadline)));
    this.#decoder.close();
  }
}
