/**
 * The serving engine: a loaded model and its NIP defense behind plain-array batch calls, so the server
 * and the batcher never hold tensors. Every call disposes what it creates.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { concatArrays } from "../arrays.ts";
import type { DefenseOutcome, NipSettings, SplitModel } from "../nip/types.ts";
import { modalityOf } from "../pipeline.ts";
import type { Certificate, CertifyRequest } from "../smoothing/cohen.ts";
import type { DefensePipeline, FrontEnd, PipelineOutcome } from "../stages/pipeline.ts";
import type { Policy } from "../stages/policy.ts";
import { certifyingStage } from "../stages/registry.ts";
import type { DefenseStage, StageSettings, StageState } from "../stages/stage.ts";

/**
 * What the server needs of a loaded pipeline (the shape of `Pipeline` from `src/pipeline.ts`, kept
 * structural so the server does not depend on how it was loaded).
 */
export interface PipelineLike {
  split: SplitModel;
  profile: {
    settings: NipSettings;
    candidateCount: number;
    layerName: string;
    modelHash: string;
    stages?: Record<string, StageState>;
  };
  /** The defense pipeline in force. */
  defense: DefensePipeline;
  modelName: string;
  /** Settings per stage name (also those of the stage that answers Certify). */
  overrides?: Record<string, StageSettings>;
}

/** Verdicts of a batch before defense. */
export interface PredictBatch {
  labels: Int32Array;
  /** Row-major [n, classes]. */
  scores: Float32Array;
}

/**
 * A defended batch, as plain arrays: the core's {@link DefenseOutcome} with the defended inputs read out.
 * Without the verdict after defense `labelsAfter` and `scoresAfter` are empty; without a stage that
 * matches a candidate (NIP), `candidateIndex` is -1 and `similarity` NaN.
 */
export interface DefendBatch extends Omit<DefenseOutcome, "defended"> {
  /** Row-major [n, ...inputShape]. */
  defended: Float32Array;
  /** The detection, when the pipeline has one: its combined p-value per example and each detector's. */
  detection?: BatchDetection;
  /** A stage answered (smoothing): `labelsAfter` are its labels (-1 = abstained), even untransformed. */
  answered?: boolean;
}

/** The detection stage's verdict on a batch, as plain arrays. */
export interface BatchDetection {
  pValue: Float32Array;
  /** Per detector name. */
  scores: Record<string, Float32Array>;
  pValues: Record<string, Float32Array>;
}

/** One stage as `Describe` lists it. */
export interface StageDescription {
  name: string;
  role: string;
  domain: string;
  description: string;
  settings: Record<string, string>;
}

/** Description of a loaded model for `Describe`. */
export interface ModelDescription {
  name: string;
  inputShape: number[];
  inputMin: number;
  inputMax: number;
  numClasses: number;
  layerName: string;
  k1: number;
  k2: number;
  candidateCount: number;
  keyMode: string;
  scaleRule: string;
  alpha: number;
  modelHash: string;
  backend: string;
  stages: StageDescription[];
  policy: string;
  /** The detectors of the detection stage; empty without one. */
  detectors: string[];
  /** The alpha inputs are flagged at; 0 without detection. */
  detectionAlpha: number;
  /** The stage that answers Certify. */
  certifier: StageDescription;
}

/** Live tfjs memory of one thread. */
export interface TensorMemory {
  numTensors: number;
  numBytes: number;
}

/**
 * What the service needs of a served model: a {@link ServingEngine} computing on the server's thread, or a
 * `WorkerEngine` (`worker_engine.ts`) proxying one in a worker, so that compute never holds the event loop.
 */
export interface Engine {
  readonly name: string;
  readonly inputShape: [number, number, number];
  readonly inputRange: [number, number];
  readonly numClasses: number;
  /** The certifier's settings (sigma, denoiser, n0, n, alpha), as numbers and text. */
  readonly certifierSettings: StageSettings;
  /** Whether a stage of the pipeline answers for the model (smoothing). */
  readonly answers: boolean;
  /** The detectors of the pipeline's detection stage; empty without one. */
  readonly detectors: string[];
  /** The deployment's policy and alpha. */
  readonly policy: { policy: Policy; alpha: number };
  /** Whether a stage acts on raw signals, so each example must come with its signal (a WAV). */
  readonly needsSignals: boolean;
  /** Floats per example. */
  readonly exampleSize: number;
  /** Bare prediction of `n` examples (row-major inputs). */
  predict(rows: Float32Array, n: number): Promise<PredictBatch>;
  /** The defense pipeline on `n` examples (see {@link ServingEngine.defend}). */
  defend(
    rows: Float32Array,
    n: number,
    verdictAfter?: boolean,
    signals?: Float32Array[],
    transforms?: boolean,
  ): Promise<DefendBatch>;
  /** Randomized smoothing's certificates for `n` examples. */
  certify(rows: Float32Array, n: number, request: CertifyRequest): Promise<Certificate[]>;
  /** Readies the kernels so the first real call is not slowed by their set-up. */
  warmUp(): Promise<void>;
  /** What `Describe` reports. */
  describe(): ModelDescription;
  /** Frees what the engine holds. */
  dispose(): void;
  /** The tensors of an engine with its own tfjs (in a worker); absent: it shares this thread's. */
  ownTensors?(): TensorMemory;
  /** Settles when the engine can no longer compute (its worker died); absent: it cannot fail so. */
  readonly failure?: Promise<Error>;
}

function describeStage(stage: DefenseStage): StageDescription {
  return {
    name: stage.name,
    role: stage.role,
    domain: stage.domain,
    description: stage.description,
    settings: Object.fromEntries(Object.entries(stage.settings).map(([k, v]) => [k, String(v)])),
  };
}

/** The detection stage's details (`pValue`, `<detector>.score`, `<detector>.pValue`) as a {@link BatchDetection}. */
function detectionOf(outcome: PipelineOutcome): BatchDetection | undefined {
  if (!outcome.pValue) return undefined;
  const details = Object.values(outcome.details).find((d) => d.pValue === outcome.pValue)!;
  const scores: Record<string, Float32Array> = {};
  const pValues: Record<string, Float32Array> = {};
  for (const [key, values] of Object.entries(details)) {
    const [detector, field] = key.split(".");
    if (field === "score") scores[detector] = Float32Array.from(values);
    if (field === "pValue") pValues[detector] = Float32Array.from(values);
  }
  return { pValue: Float32Array.from(outcome.pValue), scores, pValues };
}

/**
 * Most examples defended in one event-loop turn (about 25 ms of NIP for the default model on one wasm
 * thread): between slices other calls' compute takes its turn, and, when the engine runs in the server's
 * thread (`--compute-worker false`), the server answers health checks and other calls.
 */
export const COMPUTE_SLICE_EXAMPLES = 16;

/** Most examples predicted in one turn: a bare forward is about 10x cheaper than the default defense. */
export const PREDICT_SLICE_EXAMPLES = 128;

/**
 * Lets the event loop run before the next piece of compute. A timer, not `setImmediate`: under Deno an
 * immediate callback runs before pending network I/O is read, so it would let no request in.
 */
const nextTurn = () => new Promise((resolve) => setTimeout(resolve, 0));

const floats = (parts: Float32Array[]) => concatArrays(parts, (l) => new Float32Array(l));
const ints = (parts: Int32Array[]) => concatArrays(parts, (l) => new Int32Array(l));

/** Consecutive slices' defended batches joined into one, in order. */
function joinDefendBatches(parts: DefendBatch[]): DefendBatch {
  const field = <K extends keyof DefendBatch>(key: K) => parts.map((p) => p[key]);
  const detections = parts.map((p) => p.detection);
  const joinRecord = (pick: (d: BatchDetection) => Record<string, Float32Array>) =>
    Object.fromEntries(
      Object.keys(pick(detections[0]!)).map((name) => [name, floats(detections.map((d) => pick(d!)[name]))]),
    );
  return {
    detection: detections[0]
      ? {
        pValue: floats(detections.map((d) => d!.pValue)),
        scores: joinRecord((d) => d.scores),
        pValues: joinRecord((d) => d.pValues),
      }
      : undefined,
    defended: floats(field("defended") as Float32Array[]),
    labelsBefore: ints(field("labelsBefore") as Int32Array[]),
    labelsAfter: ints(field("labelsAfter") as Int32Array[]),
    scoresBefore: floats(field("scoresBefore") as Float32Array[]),
    scoresAfter: floats(field("scoresAfter") as Float32Array[]),
    candidateIndex: ints(field("candidateIndex") as Int32Array[]),
    similarity: floats(field("similarity") as Float32Array[]),
    answered: parts[0].answered,
  };
}

/** A model the server can defend and predict with. */
export class ServingEngine implements Engine {
  readonly name: string;
  readonly inputShape: [number, number, number];
  readonly inputRange: [number, number];
  readonly numClasses: number;
  readonly #pipeline: PipelineLike;
  readonly #frontEnd?: FrontEnd;
  /** The stage that answers Certify: the pipeline's own when it certifies, else one built for it. */
  readonly #certifier: DefenseStage;
  readonly #ownsCertifier: boolean;

  /** `frontEnd`: raw signals -> model inputs, for pipelines with stages on raw signals (audio models). */
  constructor(pipeline: PipelineLike, frontEnd?: FrontEnd) {
    const shape = pipeline.split.inputShape;
    if (shape.length !== 3) {
      throw new Error(`serving needs an image model [h, w, c]; this one takes [${shape}]`);
    }
    this.#pipeline = pipeline;
    this.#frontEnd = frontEnd;
    this.name = pipeline.modelName;
    this.inputShape = [shape[0], shape[1], shape[2]];
    this.inputRange = [pipeline.split.inputRange[0], pipeline.split.inputRange[1]];
    const out = pipeline.split.model.outputs[0].shape;
    this.numClasses = Number(out[out.length - 1]);
    const own = pipeline.defense.stages.find((stage) => stage.certify !== undefined);
    this.#ownsCertifier = own === undefined;
    this.#certifier = own ?? certifyingStage({
      split: pipeline.split,
      profile: pipeline.profile as Parameters<typeof certifyingStage>[0]["profile"],
      modality: modalityOf(pipeline.split),
      overrides: pipeline.overrides,
    });
  }

  /** The certifier's settings (sigma, denoiser, n0, n, alpha), as numbers and text. */
  get certifierSettings(): StageSettings {
    return this.#certifier.settings;
  }

  /**
   * Certificates for `n` examples (randomized smoothing; seeded by `request.seed`): (n0 + n) forwards per
   * example, bounded by the stage's limits, yielding to the event loop between batches of them when the
   * stage certifies in steps, so that a large `n` does not hold other calls.
   */
  async certify(rows: Float32Array, n: number, request: CertifyRequest): Promise<Certificate[]> {
    const x = tf.tensor4d(rows, [n, ...this.inputShape]);
    try {
      if (!this.#certifier.certifySteps) return this.#certifier.certify!(x, request);
      const steps = this.#certifier.certifySteps(x, request);
      let step = steps.next();
      while (!step.done) {
        await nextTurn();
        step = steps.next();
      }
      return step.value;
    } finally {
      x.dispose();
    }
  }

  /** Frees the certifier when the engine built it (the pipeline's stages belong to the pipeline). */
  dispose(): void {
    if (this.#ownsCertifier) this.#certifier.dispose();
  }

  /** Whether a stage of the pipeline answers for the model (smoothing), as the smoothed policies need. */
  get answers(): boolean {
    return this.#pipeline.defense.stages.some((stage) => stage.role === "answer");
  }

  /** The detectors of the pipeline's detection stage; empty without one. */
  get detectors(): string[] {
    return this.#pipeline.defense.detection?.members ?? [];
  }

  /** The deployment's policy and alpha. */
  get policy(): { policy: Policy; alpha: number } {
    return { policy: this.#pipeline.defense.policy, alpha: this.#pipeline.defense.alpha };
  }

  /** Whether a stage acts on raw signals, so each example must come with its signal (a WAV). */
  get needsSignals(): boolean {
    return this.#pipeline.defense.hasSignalStages;
  }

  /** Floats per example. */
  get exampleSize(): number {
    return this.inputShape[0] * this.inputShape[1] * this.inputShape[2];
  }

  /** Bare prediction of `n` examples, {@link PREDICT_SLICE_EXAMPLES} per event-loop turn. */
  async predict(rows: Float32Array, n: number): Promise<PredictBatch> {
    const parts = await this.#inSlices(
      n,
      PREDICT_SLICE_EXAMPLES,
      (start, k) => this.#predictSlice(this.#rowsOf(rows, start, k), k),
    );
    if (parts.length === 1) return parts[0];
    return { labels: ints(parts.map((p) => p.labels)), scores: floats(parts.map((p) => p.scores)) };
  }

  /**
   * The defense pipeline on `n` examples, {@link COMPUTE_SLICE_EXAMPLES} per event-loop turn;
   * `verdictAfter` also classifies the defended examples locally; `transforms: false` runs the scoring
   * stages only (no example will be defended). A pipeline with stages on raw signals needs each example's
   * `signals` and the engine's front end.
   */
  async defend(
    rows: Float32Array,
    n: number,
    verdictAfter = true,
    signals?: Float32Array[],
    transforms = true,
  ): Promise<DefendBatch> {
    const parts = await this.#inSlices(
      n,
      COMPUTE_SLICE_EXAMPLES,
      (start, k) =>
        this.#defendSlice(
          this.#rowsOf(rows, start, k),
          k,
          verdictAfter,
          signals?.slice(start, start + k),
          transforms,
        ),
    );
    return parts.length === 1 ? parts[0] : joinDefendBatches(parts);
  }

  #rowsOf(rows: Float32Array, start: number, k: number): Float32Array {
    return rows.subarray(start * this.exampleSize, (start + k) * this.exampleSize);
  }

  /**
   * Runs `compute` on consecutive slices of at most `slice` of `n` examples, yielding to the event loop
   * between slices: tfjs computes synchronously, and without the yield one 256-example request would hold
   * health checks and every other call for its whole compute.
   */
  async #inSlices<T>(
    n: number,
    slice: number,
    compute: (start: number, k: number) => T | Promise<T>,
  ): Promise<T[]> {
    const parts: T[] = [];
    for (let start = 0; start < n || start === 0; start += slice) {
      if (start > 0) await nextTurn();
      parts.push(await compute(start, Math.min(slice, n - start)));
    }
    return parts;
  }

  #predictSlice(rows: Float32Array, n: number): PredictBatch {
    return tf.tidy(() => {
      const scores = this.#pipeline.split.model.predict(
        tf.tensor4d(rows, [n, ...this.inputShape]),
      ) as tf.Tensor2D;
      return {
        labels: scores.argMax(-1).dataSync() as Int32Array,
        scores: scores.dataSync() as Float32Array,
      };
    });
  }

  async #defendSlice(
    rows: Float32Array,
    n: number,
    verdictAfter: boolean,
    signals: Float32Array[] | undefined,
    transforms: boolean,
  ): Promise<DefendBatch> {
    const { defense } = this.#pipeline;
    const x = tf.tensor4d(rows, [n, ...this.inputShape]);
    let outcome: PipelineOutcome | undefined;
    try {
      if (defense.hasSignalStages && (!signals || !this.#frontEnd)) {
        throw new Error(
          `defense ${defense.name} acts on raw signals; it needs WAV input and the audio front end`,
        );
      }
      // A fresh seed per slice: a randomised stage (TVM's mask, RC's crops) must not be predictable to a client.
      const seed = crypto.getRandomValues(new Uint32Array(1))[0];
      outcome = defense.hasSignalStages
        ? await defense.runWithSignals(x, signals!, this.#frontEnd!, { verdictAfter, seed, transforms })
        : defense.run(x, { verdictAfter, seed, transforms });
      // A stage that matches a candidate (NIP) reports it; the verdict carries it whichever stage it is.
      const matching = Object.values(outcome.details).find((d) => d.candidateIndex !== undefined);
      return {
        detection: detectionOf(outcome),
        defended: outcome.defended.dataSync() as Float32Array,
        labelsBefore: outcome.labelsBefore,
        labelsAfter: outcome.labelsAfter ?? new Int32Array(0),
        scoresBefore: outcome.scoresBefore,
        scoresAfter: outcome.scoresAfter ?? new Float32Array(0),
        answered: defense.stages.some((stage) => stage.role === "answer"),
        candidateIndex: Int32Array.from(matching?.candidateIndex ?? new Int32Array(n).fill(-1)),
        similarity: Float32Array.from(matching?.similarity ?? new Float32Array(n).fill(NaN)),
      };
    } finally {
      x.dispose();
      outcome?.defended.dispose();
    }
  }

  /** Runs one prediction and one defense on a mid-range input so the first real call is not slowed by kernel set-up. */
  async warmUp(): Promise<void> {
    const mid = new Float32Array(this.exampleSize).fill((this.inputRange[0] + this.inputRange[1]) / 2);
    this.predict(mid, 1);
    // A silent signal for stages on raw signals; the front end fits it to its clip length.
    const signals = this.#pipeline.defense.hasSignalStages ? [new Float32Array(this.exampleSize)] : undefined;
    await this.defend(mid, 1, true, signals);
  }

  /** What `Describe` reports. */
  describe(): ModelDescription {
    const p = this.#pipeline;
    // The profile's NIP fields, with the strength and scale rule in force where a stage overrides them.
    const nipSettings = p.defense.stages.find((s) => s.settings.strength !== undefined)?.settings;
    return {
      name: this.name,
      inputShape: [...this.inputShape],
      inputMin: this.inputRange[0],
      inputMax: this.inputRange[1],
      numClasses: this.numClasses,
      layerName: p.profile.layerName,
      k1: p.profile.settings.k1,
      k2: p.profile.settings.k2,
      candidateCount: p.profile.candidateCount,
      keyMode: p.profile.settings.keyMode,
      scaleRule: String(nipSettings?.scaleRule ?? p.profile.settings.scaleRule),
      alpha: Number(nipSettings?.strength ?? p.profile.settings.alpha),
      modelHash: p.profile.modelHash,
      backend: tf.getBackend(),
      stages: p.defense.stages.map(describeStage),
      policy: p.defense.policy,
      detectors: this.detectors,
      detectionAlpha: this.detectors.length > 0 ? p.defense.alpha : 0,
      certifier: describeStage(this.#certifier),
    };
  }
}
