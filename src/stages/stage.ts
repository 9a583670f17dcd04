/**
 * The defense-stage interface: one shape for everything that sits between a request and the model. A
 * stage is built from benign calibration data only (or from fixed settings), and per batch it may
 * transform the input (NIP, the input-transformation baselines), score it (a detector) or answer for it
 * (a smoothed classifier). Stages never see a true label. Free of I/O.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { LayerForward } from "../nip/neurons.ts";
import type { ProfileStageState } from "../nip/profile.ts";
import type { SplitModel } from "../nip/types.ts";
import type { Certificate, CertifyRequest } from "../smoothing/cohen.ts";

/** What a stage does with a batch. */
export type StageRole = "transform" | "score" | "answer";

/**
 * Where a stage acts: `input` on the model's input (images, feature maps), `signal` on the raw signal
 * before the front end turns it into the model's input (waveforms).
 */
export type StageDomain = "input" | "signal";

/** The modalities a stage applies to. */
export type StageModality = "image" | "audio";

/** A stage's settings as written into reports: plain values only. */
export type StageSettings = Readonly<Record<string, number | string | boolean>>;

/** Per-example facts a stage reports beside its output (e.g. NIP's matched candidate), one value per example. */
export type StageDetails = Record<string, Float32Array | Int32Array>;

/** What an `input`-domain stage sees of one batch. Every tensor in it belongs to the pipeline. */
export interface StageInput {
  /** The batch as it reaches this stage, in the model's input space. */
  readonly x: tf.Tensor;
  /** The model's forward of `x` to the split layer and on to the scores: computed once, shared by every stage. */
  forward(): LayerForward;
  /** Seeded uniforms in [0, 1) for randomised stages. */
  readonly random: () => number;
}

/** Output of a transform: the new batch (the stage's own tensor, handed to the pipeline) and details. */
export interface TransformOutput {
  x: tf.Tensor;
  details?: StageDetails;
}

/** Output of a scoring stage: one score per example, larger = more suspicious. */
export interface ScoreOutput {
  scores: Float32Array;
  details?: StageDetails;
}

/** Output of an answering stage: a label per example (-1 = abstain) and optional row-major scores. */
export interface AnswerOutput {
  labels: Int32Array;
  scores?: Float32Array;
  details?: StageDetails;
}

/**
 * A labelled alternative way of running a stage, reported beside its honest DSR: the paper-oracle
 * protocol, or the same change applied elsewhere (NIP_n on the layer's activations).
 */
export interface StageProtocol {
  /** Column name, e.g. `paper-oracle`, `NIP_n`. */
  readonly name: string;
  /** True when it reads true labels or benign twins, which no deployed defense has; reports say so. */
  readonly usesTruth: boolean;
  readonly description: string;
  /** Labels of the adversarial batch after the stage under this protocol. */
  labels(adversarial: tf.Tensor, truth: { benignTwins: tf.Tensor; trueLabels: Int32Array }): Int32Array;
}

/** One defense stage. Exactly the method of its role (and domain) is present. */
export interface DefenseStage {
  /** Short name used on the command line and in reports, e.g. `nip`, `ss`, `mc`. */
  readonly name: string;
  /** One line: what it does, with its settings. */
  readonly description: string;
  readonly settings: StageSettings;
  readonly role: StageRole;
  readonly domain: StageDomain;
  /** `transform` role, `input` domain: the defended batch. */
  transform?(input: StageInput): TransformOutput;
  /**
   * `transform` role, `input` domain, for the adaptive attacks: the same forward values as `transform`
   * but differentiable in `x` (BPDA: the non-differentiable parts held constant or replaced by the
   * identity). Runs inside the caller's gradient tape; returns a new tensor.
   */
  differentiable?(input: StageInput): tf.Tensor;
  /** `transform` role, `signal` domain: the defended raw signals (one per example, any lengths). */
  transformSignals?(signals: Float32Array[], random: () => number): Promise<Float32Array[]>;
  /** `score` role. */
  score?(input: StageInput): ScoreOutput;
  /**
   * `score` role, `input` domain, for the adaptive attacks on detection: a differentiable stand-in for
   * `score` (one value per example of `input.x`, larger = more suspicious). Exact where the score is a
   * smooth function of the input; BPDA (a non-differentiable step held constant or replaced by the
   * identity) or one EOT draw (`input.random`) elsewhere, as each detector documents. Runs inside the
   * caller's gradient tape; returns a new tensor.
   */
  surrogateScore?(input: StageInput): tf.Tensor1D;
  /** `answer` role. */
  answer?(input: StageInput): AnswerOutput;
  /**
   * `answer` role, for stages whose answer carries a guarantee (randomized smoothing): one certificate
   * per example of `x`, from fresh samples drawn with `request.seed`.
   */
  certify?(x: tf.Tensor, request: CertifyRequest): Certificate[];
  /**
   * {@link certify} in steps (one batch of noisy forwards each): yields between them and returns the same
   * certificates, so that a server answers other calls while a large `n` is sampled.
   */
  certifySteps?(x: tf.Tensor, request: CertifyRequest): Generator<void, Certificate[]>;
  /**
   * `answer` role with a randomised base classifier, for adaptive attacks with EOT: the class
   * probabilities of one random draw of the base classifier on each example of `x`, differentiable in
   * `x`. Runs inside the caller's gradient tape; returns a new tensor.
   */
  sampleProbabilities?(x: tf.Tensor, random: () => number): tf.Tensor2D;
  /**
   * The stage's own control, when it makes a choice that can be randomised: the same stage with that
   * choice drawn at random (NIP: a random candidate instead of the matched one). Reports show it beside
   * the stage.
   */
  randomChoice?(): DefenseStage;
  /** Labelled alternative protocols the evaluation may report beside the honest DSR. */
  readonly protocols?: readonly StageProtocol[];
  /** Frees the stage's tensors. */
  dispose(): void;
}

/**
 * A stage's calibrated state, fitted on benign examples only and stored in the model's profile (so it is
 * refused against another model's hash): plain values and typed arrays.
 */
export type StageState = ProfileStageState;

/** Benign calibration examples with their true labels: fitting may read them, the test stage never does. */
export interface BenignExamples {
  /** [n, ...inputShape] in the model's input space. */
  readonly x: tf.Tensor;
  readonly labels: Int32Array;
}

/** What a stage factory is given: the split model and the model's calibration profile, if any. */
export interface StageContext<Profile = unknown> {
  readonly split: SplitModel;
  /** The model's calibration profile, already checked against the model's hash. */
  readonly profile?: Profile;
  /** This stage's fitted state from the profile (stages with `fit` only). */
  readonly state?: StageState;
  /** Per-stage overrides from the command line or configuration (e.g. `strength`). */
  readonly overrides?: Readonly<Record<string, number | string | boolean>>;
}

/** Builds one kind of stage; the registry holds one factory per stage name. */
export interface StageFactory<Profile = unknown> {
  readonly name: string;
  /** One line for listings. */
  readonly summary: string;
  /** Modalities the stage applies to. */
  readonly modalities: readonly StageModality[];
  /** Whether the stage needs the model's calibration profile. */
  readonly needsProfile: boolean;
  /**
   * Fits the stage's state on benign examples (correctly classified ones of a calibration split disjoint
   * from NIP's candidates and from every test set); absent for stages with nothing to fit.
   */
  fit?(context: StageContext<Profile>, benign: BenignExamples): StageState;
  create(context: StageContext<Profile>): DefenseStage;
}

/** A stage's setting, refused when it is not a finite number within range. */
export function numericSetting(
  stage: string,
  name: string,
  value: number | string | boolean | undefined,
  fallback: number,
  range: [number, number] = [-Infinity, Infinity],
): number {
  const parsed = value === undefined ? fallback : Number(value);
  if (!Number.isFinite(parsed) || parsed < range[0] || parsed > range[1]) {
    throw new RangeError(
      `${stage}: setting ${name} = ${value} must be a number in [${range[0]}, ${range[1]}]`,
    );
  }
  return parsed;
}

/** A stage's setting, refused when it is not an integer within range. */
export function integerSetting(
  stage: string,
  name: string,
  value: number | string | boolean | undefined,
  fallback: number,
  range: [number, number] = [-Infinity, Infinity],
): number {
  const parsed = numericSetting(stage, name, value, fallback, range);
  if (!Number.isInteger(parsed)) {
    throw new RangeError(`${stage}: setting ${name} = ${value} must be an integer`);
  }
  return parsed;
}
