/**
 * The serving engine: a loaded model and its NIP defense behind plain-array batch calls, so the server
 * and the batcher never hold tensors. Every call disposes what it creates.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { DefenseOutcome, NipSettings, ScaleRule, SplitModel } from "../nip/types.ts";

/**
 * What the server needs of a loaded pipeline (the shape of `Pipeline` from `src/pipeline.ts`, kept
 * structural so the server does not depend on how it was loaded).
 */
export interface PipelineLike {
  split: SplitModel;
  profile: { settings: NipSettings; candidateCount: number; layerName: string; modelHash: string };
  /** The defense in force: its scale rule and strength may override the profile's. */
  defense: {
    defendBatch(x: tf.Tensor4D): DefenseOutcome;
    readonly scaleRule: ScaleRule;
    readonly strength: number;
  };
  modelName: string;
}

/** Verdicts of a batch before defense. */
export interface PredictBatch {
  labels: Int32Array;
  /** Row-major [n, classes]. */
  scores: Float32Array;
}

/** A defended batch, as plain arrays: the core's {@link DefenseOutcome} with the defended inputs read out. */
export interface DefendBatch extends Omit<DefenseOutcome, "defended"> {
  /** Row-major [n, ...inputShape]. */
  defended: Float32Array;
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
}

/** A model the server can defend and predict with. */
export class ServingEngine {
  readonly name: string;
  readonly inputShape: [number, number, number];
  readonly inputRange: [number, number];
  readonly numClasses: number;
  readonly #pipeline: PipelineLike;

  constructor(pipeline: PipelineLike) {
    const shape = pipeline.split.inputShape;
    if (shape.length !== 3) {
      throw new Error(`serving needs an image model [h, w, c]; this one takes [${shape}]`);
    }
    this.#pipeline = pipeline;
    this.name = pipeline.modelName;
    this.inputShape = [shape[0], shape[1], shape[2]];
    this.inputRange = [pipeline.split.inputRange[0], pipeline.split.inputRange[1]];
    const out = pipeline.split.model.outputs[0].shape;
    this.numClasses = Number(out[out.length - 1]);
  }

  /** Floats per example. */
  get exampleSize(): number {
    return this.inputShape[0] * this.inputShape[1] * this.inputShape[2];
  }

  /** Bare prediction of `n` examples. */
  predict(rows: Float32Array, n: number): PredictBatch {
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

  /** NIP defense of `n` examples. */
  defend(rows: Float32Array, n: number): DefendBatch {
    const x = tf.tensor4d(rows, [n, ...this.inputShape]);
    let outcome: DefenseOutcome | undefined;
    try {
      outcome = this.#pipeline.defense.defendBatch(x);
      return { ...outcome, defended: outcome.defended.dataSync() as Float32Array };
    } finally {
      x.dispose();
      outcome?.defended.dispose();
    }
  }

  /** Runs one prediction and one defense on a mid-range input so the first real call is not slowed by kernel set-up. */
  warmUp(): void {
    const mid = new Float32Array(this.exampleSize).fill((this.inputRange[0] + this.inputRange[1]) / 2);
    this.predict(mid, 1);
    this.defend(mid, 1);
  }

  /** What `Describe` reports. */
  describe(): ModelDescription {
    const p = this.#pipeline;
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
      scaleRule: p.defense.scaleRule,
      alpha: p.defense.strength,
      modelHash: p.profile.modelHash,
      backend: tf.getBackend(),
    };
  }
}
