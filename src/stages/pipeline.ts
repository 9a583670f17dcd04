/**
 * A defense pipeline: an ordered list of stages ({@link DefenseStage}) and a policy, run over one batch.
 * The model's forward to the split layer (and on to the scores) is computed at most once per distinct
 * batch and shared by every stage that asks for it and by the local verdict before defense; the verdict
 * after defense is a second forward, of the defended batch, and only when asked for. Free of I/O.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { forwardAtLayer, type LayerForward } from "../nip/neurons.ts";
import type { SplitModel } from "../nip/types.ts";
import { mulberry32 } from "../random.ts";
import { needsAnswer, needsDetection, type Policy } from "./policy.ts";
import type { DefenseStage, StageDetails, StageInput } from "./stage.ts";

/** Turns raw signals into the model's input batch (the audio front end); the caller owns the tensor. */
export type FrontEnd = (signals: Float32Array[]) => tf.Tensor;

/** Options of one {@link DefensePipeline.run}. */
export interface PipelineRunOptions {
  /** Classify the defended batch locally (`labelsAfter`, `scoresAfter`). Default true. */
  verdictAfter?: boolean;
  /** Seed of the randomised stages' draws for this batch (default 1). */
  seed?: number;
  /**
   * Run the transforms (default true). False when no example of the batch will use them (policies that
   * only detect): scoring stages still run, the defended batch is the input and the verdict after is the
   * verdict before.
   */
  transforms?: boolean;
}

/** What one batch went through, as plain arrays, plus the defended batch. */
export interface PipelineOutcome {
  /** The defended batch in the model's input space; the caller disposes it. */
  defended: tf.Tensor;
  /** The local model's verdict on the batch as it came in. */
  labelsBefore: Int32Array;
  /** Row-major [n, classes]. */
  scoresBefore: Float32Array;
  /** The verdict after defense (an answering stage's labels, else the model on `defended`). */
  labelsAfter?: Int32Array;
  /** Row-major [n, classes]; absent when an answering stage gave labels only. */
  scoresAfter?: Float32Array;
  /** Per-example details of each stage, by stage name. */
  details: Record<string, StageDetails>;
  /** Per-example scores of each scoring stage, by stage name. */
  scores: Record<string, Float32Array>;
  /** The detection's conformal p-value per example, when a stage reports one (`pValue` in its details). */
  pValue?: Float32Array;
}

/** A lazily computed, shared forward of one batch. */
class SharedForward {
  #forward?: LayerForward;
  constructor(readonly split: SplitModel, readonly x: tf.Tensor) {}

  /** The forward; kept out of any caller's `tf.tidy`, since later stages read it too. */
  get(): LayerForward {
    if (this.#forward === undefined) {
      const forward = forwardAtLayer(this.split, this.x);
      this.#forward = {
        layerOutput: tf.keep(forward.layerOutput),
        scores: tf.keep(forward.scores),
        labels: tf.keep(forward.labels),
      };
    }
    return this.#forward;
  }

  /**
   * The model's scores and labels for the batch as plain arrays: from the shared forward when a stage
   * computed it, else from one whole-model forward (cheaper than body and head apart).
   */
  verdict(): { labels: Int32Array; scores: Float32Array } {
    const scores = this.#forward
      ? Float32Array.from(this.#forward.scores.dataSync() as Float32Array)
      : tf.tidy(() =>
        (this.split.model.apply(this.x, { training: false }) as tf.Tensor).dataSync() as Float32Array
      );
    return { labels: argMaxRows(scores, this.x.shape[0]), scores };
  }

  dispose(): void {
    if (this.#forward) tf.dispose([this.#forward.layerOutput, this.#forward.scores, this.#forward.labels]);
  }
}

/** Index of the largest value of each row of a row-major [n, width] matrix. */
function argMaxRows(values: Float32Array, n: number): Int32Array {
  const width = values.length / n;
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < width; j++) if (values[i * width + j] > values[i * width + best]) best = j;
    labels[i] = best;
  }
  return labels;
}

/**
 * An ordered list of stages over one split model, with the policy and `alpha` a deployment applies to the
 * detection's verdict (`policy.ts`); the pipeline itself always runs every stage. Owns its stages.
 */
export class DefensePipeline {
  readonly split: SplitModel;
  readonly stages: readonly DefenseStage[];
  readonly policy: Policy;
  /** Flag an input when the detection's p-value is <= alpha. */
  readonly alpha: number;
  /** The stage that combines detectors (its `members` setting lists them), when the pipeline has one. */
  readonly detection?: { stage: DefenseStage; members: string[] };

  constructor(split: SplitModel, stages: readonly DefenseStage[], policy: Policy = "defend", alpha = 0.05) {
    const names = stages.map((s) => s.name);
    const repeated = names.find((name, i) => names.indexOf(name) !== i);
    if (repeated) throw new RangeError(`stage "${repeated}" appears twice in the pipeline`);
    const answering = stages.filter((s) => s.role === "answer");
    if (answering.length > 1) {
      throw new RangeError(`a pipeline takes one answering stage, got ${answering.map((s) => s.name)}`);
    }
    if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha = ${alpha} must be in (0, 1)`);
    if (needsDetection(policy) && !stages.some((s) => s.role === "score")) {
      throw new RangeError(`policy ${policy} needs a detection stage in the pipeline (e.g. detect+nip)`);
    }
    if (needsAnswer(policy) && answering.length === 0) {
      throw new RangeError(`policy ${policy} needs an answering stage in the pipeline (e.g. smooth)`);
    }
    this.split = split;
    this.stages = stages;
    this.policy = policy;
    this.alpha = alpha;
    const detection = stages.find((s) => s.role === "score" && String(s.settings.members ?? "") !== "");
    if (detection) {
      this.detection = { stage: detection, members: String(detection.settings.members).split(",") };
    }
  }

  /** Stage names joined with "+", e.g. "ss+nip"; "none" for an empty pipeline. */
  get name(): string {
    return this.stages.length === 0 ? "none" : this.stages.map((s) => s.name).join("+");
  }

  /** Whether a stage acts on raw signals, so {@link runWithSignals} is needed. */
  get hasSignalStages(): boolean {
    return this.stages.some((s) => s.domain === "signal");
  }

  /** Runs the pipeline on a batch of model inputs (no signal-domain stage allowed). */
  run(x: tf.Tensor, options: PipelineRunOptions = {}): PipelineOutcome {
    if (this.hasSignalStages) {
      throw new RangeError(`pipeline ${this.name} acts on raw signals: run it with runWithSignals`);
    }
    const before = new SharedForward(this.split, x);
    return this.#runInputStages(before, before, options);
  }

  /**
   * Runs the pipeline on a batch of model inputs `x` and the raw signals they were made from: the verdict
   * before defense is read from `x`; the signal stages run on `signals`, the front end turns their output
   * into the model's input, and the input stages go on from there.
   */
  async runWithSignals(
    x: tf.Tensor,
    signals: Float32Array[],
    frontEnd: FrontEnd,
    options: PipelineRunOptions = {},
  ): Promise<PipelineOutcome> {
    const before = new SharedForward(this.split, x);
    if (!this.hasSignalStages || options.transforms === false) {
      return this.#runInputStages(before, before, options);
    }
    const random = mulberry32(options.seed ?? 1);
    let current = signals;
    for (const stage of this.stages) {
      if (stage.domain === "signal") current = await stage.transformSignals!(current, random);
    }
    const start = new SharedForward(this.split, frontEnd(current));
    try {
      return this.#runInputStages(before, start, options);
    } finally {
      start.x.dispose();
    }
  }

  /**
   * The input stages' transforms chained, differentiable in `x` by each stage's BPDA rule (scoring and
   * answering stages do not change the input). For gradient attacks on the whole pipeline.
   */
  differentiable(x: tf.Tensor, seed = 1): tf.Tensor {
    if (this.hasSignalStages) throw new RangeError(`pipeline ${this.name} acts on raw signals: no gradient`);
    const random = mulberry32(seed);
    let current = x;
    for (const stage of this.stages) {
      if (stage.role !== "transform") continue;
      const forward = new SharedForward(this.split, current);
      const next = stage.differentiable!({ x: current, forward: () => forward.get(), random });
      forward.dispose();
      current = next;
    }
    return current === x ? x.clone() : current;
  }

  #runInputStages(before: SharedForward, start: SharedForward, options: PipelineRunOptions): PipelineOutcome {
    const random = mulberry32(options.seed ?? 1);
    const details: Record<string, StageDetails> = {};
    const scores: Record<string, Float32Array> = {};
    let answer: { labels: Int32Array; scores?: Float32Array } | undefined;
    let pValue: Float32Array | undefined;
    let current = start;
    const made: tf.Tensor[] = [];
    try {
      for (const stage of this.stages) {
        if (stage.domain === "signal") continue;
        const input: StageInput = { x: current.x, forward: () => current.get(), random };
        if (stage.role === "transform") {
          if (options.transforms === false) continue;
          const out = stage.transform!(input);
          made.push(out.x);
          if (out.details) details[stage.name] = out.details;
          if (current !== before && current !== start) current.dispose();
          current = new SharedForward(this.split, out.x);
        } else if (stage.role === "score") {
          const out = stage.score!(input);
          scores[stage.name] = out.scores;
          if (out.details) details[stage.name] = out.details;
          if (out.details?.pValue) pValue = out.details.pValue as Float32Array;
        } else {
          const out = stage.answer!(input);
          answer = out;
          if (out.details) details[stage.name] = out.details;
        }
      }
      const verdictBefore = before.verdict();
      // The last transform's output is handed over as the defended batch; untransformed, a copy is.
      const defended = made.length > 0 && current.x === made[made.length - 1]
        ? made.pop()!
        : current.x.clone();
      const outcome: PipelineOutcome = {
        defended,
        labelsBefore: verdictBefore.labels,
        scoresBefore: verdictBefore.scores,
        details,
        scores,
        pValue,
      };
      if (answer) {
        outcome.labelsAfter = answer.labels;
        outcome.scoresAfter = answer.scores;
      } else if (options.verdictAfter ?? true) {
        const after = current.verdict();
        outcome.labelsAfter = after.labels;
        outcome.scoresAfter = after.scores;
      }
      return outcome;
    } finally {
      if (current !== before && current !== start) current.dispose();
      if (start !== before) start.dispose();
      before.dispose();
      tf.dispose(made);
    }
  }

  /** Frees every stage. */
  dispose(): void {
    for (const stage of this.stages) stage.dispose();
  }
}
