/**
 * The evaluation harness (SPEC.md sections 6-7): for each attack and budget, attack the correctly
 * classified test examples, defend the adversarial ones without labels (`honest`), optionally replay the
 * authors' `paper-oracle` protocol, and report every DSR beside benign accuracy after defense and the
 * random-noise and random-candidate controls.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Attack, AttackBudget } from "../attacks/types.ts";
import { targetFromModel } from "../attacks/target.ts";
import type { NipDefense } from "../nip/defense.ts";
import { agreement, randomCandidateControl, randomNoiseControl } from "./controls.ts";
import { mulberry32 } from "../random.ts";
import { changeNorms, finiteMean, psnr, tknc } from "./metrics.ts";
import { paperOracleLabels } from "./oracle.ts";
import { predictLabels } from "../nip/neurons.ts";

/** Evaluation protocols: `honest` (the default) and the clearly labelled `paper-oracle`. */
export type Protocol = "honest" | "paper-oracle";

/** One attack at one budget. */
export interface AttackSpec {
  attack: Attack;
  budget: AttackBudget;
}

/** Options of {@link evaluate}. */
export interface EvalOptions {
  protocols?: Protocol[];
  batchSize?: number;
  seed?: number;
  /** Draws of the random-noise control (SPEC.md: 5). */
  noiseDraws?: number;
  onProgress?: (stage: string, done: number, total: number) => void;
}

/** Benign accuracy before and after defense on the whole test set (computed once per evaluation). */
export interface BenignSummary {
  examples: number;
  accuracy: number;
  accuracyAfterDefense: number;
  /** Fraction of benign examples whose label the defense changed. */
  labelFlips: number;
  msPerExampleDefense: number;
  msPerExampleBare: number;
}

/** The figures of one attack at one budget. */
export interface AttackRow {
  attack: string;
  norm: string;
  budget: string;
  budgetSource: string;
  epsilon: number;
  /** Correctly classified test examples that were attacked. */
  attacked: number;
  /** Adversarial examples that fooled the bare model. */
  adversarial: number;
  asr: number;
  /** DSR per protocol run (`honest` always). */
  dsr: Partial<Record<Protocol, number>>;
  /** DSR of NIP_n (perturbation on the chosen layer's activations), honest protocol. */
  dsrNipN: number;
  controls: { randomNoise: number; randomCandidate: number };
  /** PSNR in dB of defended adversarial examples vs their benign twins (measurement only). */
  psnr: number;
  tknc: number;
  defenseChange: { l2: number; linf: number };
  msPerExample: { attack: number; defense: number; bare: number };
}

/** A whole evaluation's result. */
export interface EvalReport {
  benign: BenignSummary;
  rows: AttackRow[];
  profile: { layer: string; candidates: number; keyMode: string; scaleRule: string; strength: number };
}

function timed<T>(work: () => T): [T, number] {
  const start = performance.now();
  const result = work();
  return [result, performance.now() - start];
}

function batches(n: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let start = 0; start < n; start += size) out.push([start, Math.min(size, n - start)]);
  return out;
}

/** Benign accuracy before / after defense, and the bare predictions (every attack starts from them). */
function benignSummary(
  defense: NipDefense,
  x: tf.Tensor,
  labels: Int32Array,
  batchSize: number,
): { summary: BenignSummary; bare: Int32Array } {
  const allBare = new Int32Array(labels.length);
  let correct = 0;
  let correctAfter = 0;
  let flips = 0;
  let defenseMs = 0;
  let bareMs = 0;
  for (const [start, size] of batches(labels.length, batchSize)) {
    const batch = x.slice(start, size);
    const [bare, bareTime] = timed(() => predictLabels(defense.split.model, batch));
    allBare.set(bare, start);
    const [outcome, defenseTime] = timed(() => defense.defendBatch(batch));
    outcome.defended.dispose();
    batch.dispose();
    bareMs += bareTime;
    defenseMs += defenseTime;
    for (let i = 0; i < size; i++) {
      correct += bare[i] === labels[start + i] ? 1 : 0;
      correctAfter += outcome.labelsAfter[i] === labels[start + i] ? 1 : 0;
      flips += outcome.labelsAfter[i] !== bare[i] ? 1 : 0;
    }
  }
  const n = labels.length;
  const summary = {
    examples: n,
    accuracy: correct / n,
    accuracyAfterDefense: correctAfter / n,
    labelFlips: flips / n,
    msPerExampleDefense: defenseMs / n,
    msPerExampleBare: bareMs / n,
  };
  return { summary, bare: allBare };
}

function gatherRows(x: tf.Tensor, indices: ArrayLike<number>): tf.Tensor {
  return tf.tidy(() => x.gather(tf.tensor1d(Int32Array.from(indices), "int32")));
}

/** The correctly classified test examples every attack starts from, with their true labels. */
interface AttackPool {
  benign: tf.Tensor4D;
  trueLabels: Int32Array;
}

async function evaluateAttack(
  defense: NipDefense,
  pool: AttackPool,
  spec: AttackSpec,
  options: Required<Omit<EvalOptions, "onProgress">> & Pick<EvalOptions, "onProgress">,
): Promise<AttackRow> {
  const { split } = defense;
  const { benign, trueLabels } = pool;
  const target = targetFromModel(split.model, { inputRange: split.inputRange });
  const random = mulberry32(options.seed);

  const advParts: tf.Tensor[] = [];
  const successIdx: number[] = [];
  let attackMs = 0;
  const plan = batches(trueLabels.length, options.batchSize);
  for (const [k, [start, size]] of plan.entries()) {
    const batch = benign.slice(start, size);
    const t0 = performance.now();
    const result = await spec.attack.run(
      target,
      batch,
      { kind: "misclassification", labels: trueLabels.slice(start, start + size) },
      spec.budget,
    );
    attackMs += performance.now() - t0;
    const hits = Array.from(result.success.keys()).filter((i) => result.success[i] === 1);
    if (hits.length > 0) advParts.push(gatherRows(result.adversarial, hits));
    hits.forEach((i) => successIdx.push(start + i));
    tf.dispose([batch, result.adversarial]);
    options.onProgress?.(
      `${spec.attack.name} ${spec.budget.label ?? spec.budget.epsilon}`,
      k + 1,
      plan.length,
    );
  }

  const row: AttackRow = {
    attack: spec.attack.name,
    norm: spec.attack.norm,
    budget: spec.budget.label ?? `${spec.attack.norm} ${spec.budget.epsilon}`,
    budgetSource: spec.budget.source ?? "custom",
    epsilon: spec.budget.epsilon,
    attacked: trueLabels.length,
    adversarial: successIdx.length,
    asr: trueLabels.length === 0 ? NaN : successIdx.length / trueLabels.length,
    dsr: {},
    dsrNipN: NaN,
    controls: { randomNoise: NaN, randomCandidate: NaN },
    psnr: NaN,
    tknc: NaN,
    defenseChange: { l2: NaN, linf: NaN },
    msPerExample: {
      attack: trueLabels.length === 0 ? NaN : attackMs / trueLabels.length,
      defense: NaN,
      bare: NaN,
    },
  };
  if (successIdx.length === 0) return row;
  const adversarial = tf.concat(advParts);
  tf.dispose(advParts);
  const twins = gatherRows(benign, successIdx);
  const advLabels = Int32Array.from(successIdx, (i) => trueLabels[i]);

  const sums = {
    honest: 0,
    nipN: 0,
    oracle: 0,
    noise: 0,
    candidate: 0,
    psnr: [] as number[],
    tknc: [] as number[],
  };
  const changeL2: number[] = [];
  const changeLinf: number[] = [];
  let defenseMs = 0;
  let bareMs = 0;
  for (const [start, size] of batches(advLabels.length, options.batchSize)) {
    const adv = adversarial.slice(start, size);
    const twin = twins.slice(start, size);
    const expected = advLabels.subarray(start, start + size);
    const [, bareTime] = timed(() => predictLabels(split.model, adv));
    const [outcome, defenseTime] = timed(() => defense.defendBatch(adv));
    bareMs += bareTime;
    defenseMs += defenseTime;
    sums.honest += agreement(outcome.labelsAfter, expected) * size;
    sums.nipN += agreement(defense.defendActivations(adv).labelsAfter, expected) * size;
    const change = changeNorms(outcome.defended, adv);
    changeL2.push(...change.l2);
    changeLinf.push(...change.linf);
    sums.noise += randomNoiseControl(split.model, adv, change.l2, expected, split.inputRange, {
      draws: options.noiseDraws,
      seed: options.seed + start,
    }) * size;
    sums.candidate += randomCandidateControl(defense, adv, expected, random) * size;
    sums.psnr.push(...psnr(outcome.defended, twin, split.inputRange));
    sums.tknc.push(...tknc(split, twin, outcome.defended));
    if (options.protocols.includes("paper-oracle")) {
      sums.oracle += agreement(paperOracleLabels(defense, adv, twin, expected), expected) * size;
    }
    tf.dispose([adv, twin, outcome.defended]);
  }
  tf.dispose([adversarial, twins]);
  const m = advLabels.length;
  row.dsr.honest = sums.honest / m;
  if (options.protocols.includes("paper-oracle")) row.dsr["paper-oracle"] = sums.oracle / m;
  row.dsrNipN = sums.nipN / m;
  row.controls = { randomNoise: sums.noise / m, randomCandidate: sums.candidate / m };
  row.psnr = finiteMean(sums.psnr);
  row.tknc = finiteMean(sums.tknc);
  row.defenseChange = { l2: finiteMean(changeL2), linf: finiteMean(changeLinf) };
  row.msPerExample.defense = defenseMs / m;
  row.msPerExample.bare = bareMs / m;
  return row;
}

/** Runs every attack spec against the defense on the test batch `x` with its true labels. */
export async function evaluate(
  defense: NipDefense,
  x: tf.Tensor4D,
  labels: Int32Array,
  specs: AttackSpec[],
  options: EvalOptions = {},
): Promise<EvalReport> {
  const resolved = {
    protocols: options.protocols ?? ["honest"],
    batchSize: options.batchSize ?? 100,
    seed: options.seed ?? 1,
    noiseDraws: options.noiseDraws ?? 5,
    onProgress: options.onProgress,
  };
  const { summary, bare } = benignSummary(defense, x, labels, resolved.batchSize);
  const correct = Array.from(labels.keys()).filter((i) => bare[i] === labels[i]);
  const pool = {
    benign: gatherRows(x, correct) as tf.Tensor4D,
    trueLabels: Int32Array.from(correct, (i) => labels[i]),
  };
  const rows: AttackRow[] = [];
  try {
    for (const spec of specs) rows.push(await evaluateAttack(defense, pool, spec, resolved));
  } finally {
    pool.benign.dispose();
  }
  return {
    benign: summary,
    rows,
    profile: profileSummary(defense),
  };
}

/** What a report says about the defense it measured. */
export function profileSummary(defense: NipDefense): EvalReport["profile"] {
  return {
    layer: defense.profile.layerName,
    candidates: defense.candidateCount,
    keyMode: defense.profile.settings.keyMode,
    scaleRule: defense.scaleRule,
    strength: defense.strength,
  };
}
