/**
 * The evaluation harness (SPEC.md sections 6-7), one for every modality and any list of defense
 * pipelines: for each attack and budget, attack the correctly classified examples in the attack's own
 * space (the model's input, or a raw waveform through the front end), defend the adversarial ones with
 * each pipeline without labels (`honest`), and report for every defense the same columns: DSR, the
 * random-noise control at that defense's own change norm, its own random-choice control where it makes a
 * choice, benign accuracy after defense and ms per example. Labelled alternative protocols of a stage
 * (the paper-oracle protocol) are reported beside its DSR when asked for.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Attack, AttackBudget, AttackTarget } from "../attacks/types.ts";
import { targetFromModel } from "../attacks/target.ts";
import { predictLabels } from "../nip/neurons.ts";
import type { SplitModel } from "../nip/types.ts";
import { DefensePipeline, type FrontEnd, type PipelineOutcome } from "../stages/pipeline.ts";
import type { StageSettings } from "../stages/stage.ts";
import { agreement, randomNoiseControl } from "./controls.ts";
import { changeNorms, psnr, tknc } from "./metrics.ts";
import {
  type BlockTally,
  type BlockTiming,
  type DefenseTally,
  meanOf,
  reportFromBlocks,
  type RowTally,
  type RunLayout,
} from "./tally.ts";

/** Evaluation protocols: `honest` (always) and the clearly labelled `paper-oracle`. */
export type Protocol = "honest" | "paper-oracle";

/** The examples an evaluation runs on: model inputs, true labels, and raw signals when the modality has them. */
export interface EvalSet {
  /** [n, ...inputShape] in the model's input space. */
  x: tf.Tensor;
  labels: Int32Array;
  /** The raw signal of each example (waveforms), for attacks and stages that act on it. */
  signals?: Float32Array[];
}

/** Adversarial examples brought into the model's input space, with their signals and per-example measures. */
export interface ModelBatch {
  x: tf.Tensor;
  signals?: Float32Array[];
  /** Per-example measures of the perturbation (e.g. SNR in dB), averaged into the row. */
  measures?: Record<string, number[]>;
}

/** Where an attack acts and how its output reaches the model. */
export interface AttackDomain {
  /** `input` for the model's input space; e.g. `waveform` for raw audio. */
  readonly name: string;
  /** The target the attack optimises against. */
  target(split: SplitModel): AttackTarget;
  /** Rows `indices` of the set in the attack's space. */
  inputs(set: EvalSet, indices: readonly number[]): tf.Tensor4D;
  /** Adversarial examples (rows `indices` of the set) in the model's input space. */
  toModel(adversarial: tf.Tensor, set: EvalSet, indices: readonly number[]): ModelBatch;
}

function gatherRows(x: tf.Tensor, indices: readonly number[]): tf.Tensor {
  return tf.tidy(() => x.gather(tf.tensor1d(Int32Array.from(indices), "int32")));
}

/** Attacks act on the model's input directly (images, feature maps); no signal follows them. */
export const MODEL_INPUT_DOMAIN: AttackDomain = {
  name: "input",
  target: (split) => targetFromModel(split.model, { inputRange: split.inputRange }),
  inputs: (set, indices) => gatherRows(set.x, indices) as tf.Tensor4D,
  toModel: (adversarial) => ({ x: adversarial.clone() }),
};

/** One attack at one budget, in a domain (default: the model's input). */
export interface AttackSpec {
  attack: Attack;
  budget: AttackBudget;
  domain?: AttackDomain;
}

/** Options of {@link evaluate}. */
export interface EvalOptions {
  protocols?: Protocol[];
  /**
   * Examples per block (default 100): blocks are evaluated one by one, each from its own examples and its
   * global index only (seeds included), so any subset of blocks gives the same tallies (`tally.ts`).
   */
  blockSize?: number;
  /** Which blocks to evaluate (default all): a shard's share. */
  selectBlock?: (block: number) => boolean;
  seed?: number;
  /** Draws of the random-noise control (SPEC.md: 5). */
  noiseDraws?: number;
  /** Turns raw signals into model inputs; needed by pipelines with signal-domain stages. */
  frontEnd?: FrontEnd;
  onProgress?: (stage: string, done: number, total: number) => void;
}

/** What a report says about one defense pipeline. */
export interface DefenseInfo {
  name: string;
  stages: { name: string; description: string; settings: StageSettings }[];
  /** Name of its own random-choice control, when one of its stages makes a choice. */
  control?: string;
  /** Labelled alternative protocols reported beside its DSR. */
  protocols: { name: string; usesTruth: boolean; description: string }[];
}

/** One defense on the benign examples. */
export interface BenignDefense {
  accuracy: number;
  /** Fraction of benign examples whose label the defense changed. */
  labelFlips: number;
  msPerExample: number;
}

/** Benign accuracy bare and after each defense, on every evaluated example. */
export interface BenignSummary {
  examples: number;
  accuracy: number;
  msPerExampleBare: number;
  defenses: Record<string, BenignDefense>;
}

/** One defense against one attack. */
export interface DefenseScore {
  /** Adversarial examples classified correctly after defense / adversarial examples (honest). */
  dsr: number;
  /** Gaussian noise of the same L2 norm as this defense's change, mean over draws. */
  randomNoise: number;
  /** The defense with its choice drawn at random (absent when it makes none). */
  ownControl?: number;
  /** DSR under each labelled alternative protocol that was run. */
  protocols: Record<string, number>;
  change: { l2: number; linf: number };
  /** PSNR in dB and TKNC of defended adversarial examples vs their benign twins (measurement only). */
  psnr: number;
  tknc: number;
  msPerExample: number;
}

/** The figures of one attack at one budget. */
export interface AttackRow {
  attack: string;
  norm: string;
  domain: string;
  budget: string;
  budgetSource: string;
  epsilon: number;
  /** Correctly classified examples that were attacked. */
  attacked: number;
  /** Adversarial examples that fooled the bare model (judged on the model's input). */
  adversarial: number;
  asr: number;
  /** Mean of each per-example perturbation measure of the domain. */
  perturbation: Record<string, number>;
  msPerExample: { attack: number; bare: number };
  defenses: Record<string, DefenseScore>;
}

/** A whole evaluation's result. */
export interface EvalReport {
  defenses: DefenseInfo[];
  benign: BenignSummary;
  rows: AttackRow[];
}

interface Resolved {
  protocols: Protocol[];
  blockSize: number;
  seed: number;
  noiseDraws: number;
  frontEnd?: FrontEnd;
  onProgress?: EvalOptions["onProgress"];
}

/** A pipeline with its own control, as the harness runs it. */
interface Defense {
  pipeline: DefensePipeline;
  control?: DefensePipeline;
  /** Stages made for the control only (the control shares the others with the pipeline). */
  controlStages: { dispose(): void }[];
  info: DefenseInfo;
}

function describe(pipeline: DefensePipeline): Defense {
  const variants = pipeline.stages.map((s) => s.randomChoice?.());
  const hasControl = variants.some((v) => v !== undefined);
  const control = hasControl
    ? new DefensePipeline(
      pipeline.split,
      pipeline.stages.map((s, i) => variants[i] ?? s),
      pipeline.policy,
      pipeline.alpha,
    )
    : undefined;
  const protocols = pipeline.stages.length === 1 ? pipeline.stages[0].protocols ?? [] : [];
  return {
    pipeline,
    control,
    controlStages: variants.filter((v) => v !== undefined),
    info: {
      name: pipeline.name,
      stages: pipeline.stages.map((s) => ({
        name: s.name,
        description: s.description,
        settings: s.settings,
      })),
      control: control?.name,
      protocols: protocols.map((p) => ({ name: p.name, usesTruth: p.usesTruth, description: p.description })),
    },
  };
}

async function runPipeline(
  pipeline: DefensePipeline,
  x: tf.Tensor,
  signals: Float32Array[] | undefined,
  options: Resolved,
  seed: number,
): Promise<PipelineOutcome> {
  if (!pipeline.hasSignalStages) return pipeline.run(x, { seed });
  if (!signals || !options.frontEnd) {
    throw new RangeError(`defense ${pipeline.name} acts on raw signals, and these examples have none`);
  }
  return await pipeline.runWithSignals(x, signals, options.frontEnd, { seed });
}

/** The adversarial examples of one attack that fool the bare model, in the model's input space. */
export interface Adversarial {
  x: tf.Tensor;
  signals?: Float32Array[];
  /** Rows of the set they came from, and their true labels. */
  rows: number[];
  labels: Int32Array;
  measures: Record<string, number[]>;
  attackMs: number;
  bareMs: number;
}

/**
 * Attacks the examples `pool` (rows of the set, correctly classified) and keeps those whose final input
 * the bare model misclassifies; the caller disposes `x`.
 */
export async function attackAll(
  split: SplitModel,
  set: EvalSet,
  pool: number[],
  spec: AttackSpec,
  options: Pick<EvalOptions, "onProgress"> & { batchSize: number },
): Promise<Adversarial> {
  const domain = spec.domain ?? MODEL_INPUT_DOMAIN;
  const target = domain.target(split);
  const parts: tf.Tensor[] = [];
  const signals: Float32Array[] = [];
  const rows: number[] = [];
  const measures: Record<string, number[]> = {};
  let attackMs = 0;
  let bareMs = 0;
  const plan: [number, number][] = [];
  for (let start = 0; start < pool.length; start += options.batchSize) {
    plan.push([start, Math.min(options.batchSize, pool.length - start)]);
  }
  for (const [k, [start, size]] of plan.entries()) {
    const indices = pool.slice(start, start + size);
    const labels = Int32Array.from(indices, (i) => set.labels[i]);
    const inputs = domain.inputs(set, indices);
    const t0 = performance.now();
    const result = await spec.attack.run(target, inputs, { kind: "misclassification", labels }, spec.budget);
    attackMs += performance.now() - t0;
    const model = domain.toModel(result.adversarial, set, indices);
    tf.dispose([inputs, result.adversarial]);
    const t1 = performance.now();
    const predicted = predictLabels(split.model, model.x);
    bareMs += performance.now() - t1;
    const hits = indices.flatMap((_, i) => predicted[i] !== labels[i] ? [i] : []);
    if (hits.length > 0) parts.push(gatherRows(model.x, hits));
    model.x.dispose();
    for (const i of hits) {
      rows.push(indices[i]);
      if (model.signals) signals.push(model.signals[i]);
      for (const [name, values] of Object.entries(model.measures ?? {})) {
        (measures[name] ??= []).push(values[i]);
      }
    }
    options.onProgress?.(
      `${spec.attack.name} ${spec.budget.label ?? spec.budget.epsilon}`,
      k + 1,
      plan.length,
    );
  }
  const x = parts.length > 0 ? tf.concat(parts) : tf.zeros([0, ...set.x.shape.slice(1)]);
  tf.dispose(parts);
  return {
    x,
    signals: signals.length > 0 ? signals : undefined,
    rows,
    labels: Int32Array.from(rows, (i) => set.labels[i]),
    measures,
    attackMs,
    bareMs,
  };
}

/** One defense on one block's adversarial examples (one batch): its tally and its milliseconds. */
async function scoreDefense(
  defense: Defense,
  adversarial: Adversarial,
  set: EvalSet,
  options: Resolved,
  seed: number,
): Promise<{ tally: DefenseTally; ms: number }> {
  const { split } = defense.pipeline;
  const protocols = defense.pipeline.stages.length === 1 ? defense.pipeline.stages[0].protocols ?? [] : [];
  const run = protocols.filter((p) => !p.usesTruth || options.protocols.includes("paper-oracle"));
  const adv = adversarial.x;
  const expected = adversarial.labels;
  const size = expected.length;
  const twins = gatherRows(set.x, adversarial.rows);
  try {
    const t0 = performance.now();
    const outcome = await runPipeline(defense.pipeline, adv, adversarial.signals, options, seed);
    const ms = performance.now() - t0;
    const change = changeNorms(outcome.defended, adv);
    const tally: DefenseTally = {
      honest: agreement(outcome.labelsAfter!, expected) * size,
      noise: randomNoiseControl(split.model, adv, change.l2, expected, split.inputRange, {
        draws: options.noiseDraws,
        seed,
      }) * size,
      protocols: {},
      l2: meanOf(change.l2),
      linf: meanOf(change.linf),
      psnr: meanOf(psnr(outcome.defended, twins, split.inputRange)),
      tknc: meanOf(tknc(split, twins, outcome.defended)),
    };
    outcome.defended.dispose();
    if (defense.control) {
      const controlled = await runPipeline(defense.control, adv, adversarial.signals, options, seed);
      controlled.defended.dispose();
      tally.control = agreement(controlled.labelsAfter!, expected) * size;
    }
    for (const protocol of run) {
      const labels = protocol.labels(adv, { benignTwins: twins, trueLabels: expected });
      tally.protocols[protocol.name] = agreement(labels, expected) * size;
    }
    return { tally, ms };
  } finally {
    twins.dispose();
  }
}

/** One block: benign accuracy bare and after each defense, then every attack on its correct examples. */
async function evaluateBlock(
  split: SplitModel,
  defenses: Defense[],
  set: EvalSet,
  specs: AttackSpec[],
  block: number,
  options: Resolved,
): Promise<{ tally: BlockTally; timing: BlockTiming }> {
  const start = block * options.blockSize;
  const size = Math.min(options.blockSize, set.labels.length - start);
  const seed = options.seed + start;
  const labels = set.labels.subarray(start, start + size);
  const x = set.x.slice(start, size);
  const tally: BlockTally = { block, examples: size, bareCorrect: 0, benign: {}, rows: [] };
  const timing: BlockTiming = { block, bare: 0, benign: {}, rows: [] };
  let bare: Int32Array;
  try {
    const t0 = performance.now();
    bare = predictLabels(split.model, x);
    timing.bare = performance.now() - t0;
    tally.bareCorrect = agreement(bare, labels) * size;
    for (const defense of defenses) {
      const t = performance.now();
      const outcome = await runPipeline(
        defense.pipeline,
        x,
        set.signals?.slice(start, start + size),
        options,
        seed,
      );
      timing.benign[defense.info.name] = performance.now() - t;
      outcome.defended.dispose();
      tally.benign[defense.info.name] = {
        correct: agreement(outcome.labelsAfter!, labels) * size,
        flips: (1 - agreement(outcome.labelsAfter!, bare)) * size,
      };
    }
  } finally {
    x.dispose();
  }
  const pool = Array.from({ length: size }, (_, i) => start + i).filter((i) =>
    bare[i - start] === set.labels[i]
  );
  for (const spec of specs) {
    const adversarial = await attackAll(split, set, pool, spec, { batchSize: options.blockSize });
    try {
      const row: RowTally = {
        attacked: pool.length,
        adversarial: adversarial.labels.length,
        perturbation: Object.fromEntries(
          Object.entries(adversarial.measures).map(([name, values]) => [name, meanOf(values)]),
        ),
        defenses: {},
      };
      const rowTiming = {
        attack: adversarial.attackMs,
        bare: adversarial.bareMs,
        defenses: {} as Record<string, number>,
      };
      if (row.adversarial > 0) {
        for (const defense of defenses) {
          const scored = await scoreDefense(defense, adversarial, set, options, seed);
          row.defenses[defense.info.name] = scored.tally;
          rowTiming.defenses[defense.info.name] = scored.ms;
        }
      }
      tally.rows.push(row);
      timing.rows.push(rowTiming);
      options.onProgress?.(
        `block ${block + 1}: ${spec.attack.name} ${spec.budget.label ?? spec.budget.epsilon}`,
        tally.rows.length,
        specs.length,
      );
    } finally {
      adversarial.x.dispose();
    }
  }
  return { tally, timing };
}

/** An evaluation's report with the blocks it was made from (see `tally.ts`). */
export interface EvalRun {
  report: EvalReport;
  layout: RunLayout;
  blockSize: number;
  /** Blocks of the whole set (a shard ran some of them). */
  blockCount: number;
  tallies: BlockTally[];
  timings: BlockTiming[];
}

/**
 * Evaluates every defense pipeline against every attack spec on `set`, block by block (see
 * {@link EvalOptions.blockSize}); returns the report of the blocks run and the blocks themselves. The
 * pipelines must share one split model; they stay owned by the caller.
 */
export async function evaluateBlocks(
  pipelines: DefensePipeline[],
  set: EvalSet,
  specs: AttackSpec[],
  options: EvalOptions = {},
): Promise<EvalRun> {
  if (pipelines.length === 0) throw new RangeError("evaluate: no defense to evaluate");
  const split = pipelines[0].split;
  if (pipelines.some((p) => p.split !== split)) {
    throw new RangeError("evaluate: pipelines over different models");
  }
  const names = pipelines.map((p) => p.name);
  const repeated = names.find((name, i) => names.indexOf(name) !== i);
  if (repeated) throw new RangeError(`evaluate: defense "${repeated}" is listed twice`);
  const resolved: Resolved = {
    protocols: options.protocols ?? ["honest"],
    blockSize: options.blockSize ?? 100,
    seed: options.seed ?? 1,
    noiseDraws: options.noiseDraws ?? 5,
    frontEnd: options.frontEnd,
    onProgress: options.onProgress,
  };
  if (!Number.isInteger(resolved.blockSize) || resolved.blockSize < 1) {
    throw new RangeError(`evaluate: block size ${resolved.blockSize} must be a positive integer`);
  }
  const defenses = pipelines.map(describe);
  const layout: RunLayout = {
    defenses: defenses.map((d) => d.info),
    rows: specs.map((spec) => ({
      attack: spec.attack.name,
      norm: spec.attack.norm,
      domain: (spec.domain ?? MODEL_INPUT_DOMAIN).name,
      budget: spec.budget.label ?? `${spec.attack.norm} ${spec.budget.epsilon}`,
      budgetSource: spec.budget.source ?? "custom",
      epsilon: spec.budget.epsilon,
    })),
  };
  const blockCount = Math.ceil(set.labels.length / resolved.blockSize);
  const selected = Array.from({ length: blockCount }, (_, b) => b).filter((b) =>
    options.selectBlock?.(b) ?? true
  );
  const tallies: BlockTally[] = [];
  const timings: BlockTiming[] = [];
  try {
    for (const [k, block] of selected.entries()) {
      const { tally, timing } = await evaluateBlock(split, defenses, set, specs, block, resolved);
      tallies.push(tally);
      timings.push(timing);
      resolved.onProgress?.("blocks of examples", k + 1, selected.length);
    }
  } finally {
    for (const defense of defenses) defense.controlStages.forEach((s) => s.dispose());
  }
  return {
    report: reportFromBlocks(layout, tallies, timings),
    layout,
    blockSize: resolved.blockSize,
    blockCount,
    tallies,
    timings,
  };
}

/** {@link evaluateBlocks}' report alone. */
export async function evaluate(
  pipelines: DefensePipeline[],
  set: EvalSet,
  specs: AttackSpec[],
  options: EvalOptions = {},
): Promise<EvalReport> {
  return (await evaluateBlocks(pipelines, set, specs, options)).report;
}
