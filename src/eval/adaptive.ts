/**
 * The adaptive evaluation (SPEC.md section 7, "adaptive"; issue 6 item 4): attacks that know the defense,
 * reported as **robust accuracy** of the defended pipeline, beside ASR against the bare model and, for the
 * paper's adaptive attacks, the paper's DSR = 1 - ASR.
 *
 * Two families of rows:
 * - `defended`: the attack runs against the whole defense pipeline, any list of stages (`defendedTarget`):
 *   PGD with each stage's BPDA gradient, Square / Boundary by queries only. Examples the defended pipeline already gets wrong are
 *   not attacked (they count as not robust).
 * - `model`: the paper's adaptive attacks (S-ALA, R-ALA, ALA, I-ALA, SAA) run against the bare model (they
 *   read its neurons); their outputs are then defended. Examples the bare model *or* the defended pipeline
 *   classifies correctly are attacked.
 *
 * Robust accuracy = examples (of all test examples) that the defended pipeline classifies correctly both
 * clean and after the attack (the attacker may always submit the clean input); every adversarial example is
 * re-defended here through the pipeline, independently of the attack's own success flag.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { ATTACKS, getAttack } from "../attacks/registry.ts";
import { budgetPreset, paperAttackSettings } from "../attacks/presets.ts";
import { targetFromModel } from "../attacks/target.ts";
import type { Attack, AttackBudget, AttackResult, AttackTarget, Norm } from "../attacks/types.ts";
import { adaptiveBudgets } from "../adaptive/budgets.ts";
import { inputKindOf, standardBudget } from "../attacks/presets.ts";
import { defendedTarget, type DefendedTargetOptions } from "../adaptive/defended_target.ts";
import { ala, iAla } from "../adaptive/ala.ts";
import { rAla } from "../adaptive/r_ala.ts";
import { sAla } from "../adaptive/s_ala.ts";
import { saa, type SaaResult } from "../adaptive/saa.ts";
import type { DefensePipeline } from "../stages/pipeline.ts";
import { num, pct } from "./report.ts";
import { predictLabels } from "../nip/neurons.ts";

/** What an adaptive attack runs against. */
export type AdaptiveAgainst = "defended" | "model";

/** One adaptive attack at one budget. */
export interface AdaptiveAttackSpec {
  attack: Attack;
  budget: AttackBudget;
  against: AdaptiveAgainst;
  /** Row label (default: the attack's name, plus how it reaches the pipeline). */
  label?: string;
  /**
   * For `defended` rows: also run the same attack on the bare model (bare-correct examples) to report its
   * ASR there. Default: true for white-box attacks, false for black-box ones (costly).
   */
  bareReference?: boolean;
}

/** Options of {@link evaluateAdaptive}. */
export interface AdaptiveOptions {
  batchSize?: number;
  /** Options of the defended target (strength override, EOT hook). */
  target?: Omit<DefendedTargetOptions, "differentiable">;
  onProgress?: (stage: string, done: number, total: number) => void;
}

/** The figures of one adaptive attack. Rates are fractions; NaN where not meaningful. */
export interface AdaptiveRow {
  label: string;
  attack: string;
  against: AdaptiveAgainst;
  kind: Attack["kind"];
  norm: string;
  budget: string;
  budgetSource: string;
  epsilon: number;
  /** Test examples in the evaluation. */
  examples: number;
  /** Examples attacked. */
  attacked: number;
  /** Attacked examples the attack reports as successful against its own target. */
  successRate: number;
  /**
   * ASR against the bare model: `model` rows, adversarial examples that fool the bare model / attacked
   * bare-correct examples; `defended` rows, the same attack run on the bare model (when `bareReference`).
   */
  asrBare: number;
  /** `defended` rows: attacked examples the defended pipeline misclassifies after the attack / attacked. */
  asrDefended: number;
  /**
   * `model` rows, the paper's sense (Sec. 7.1, App. B): attacked bare-correct examples the defended pipeline
   * misclassifies after the attack / those examples (SAA: over the examples attacked a second time).
   */
  asrPaper: number;
  /** 1 - asrPaper (paper App. B: "DSR = 1 - ASR"). */
  dsrPaper: number;
  /** SPEC.md section 6 DSR: adversarial examples (fooling the bare model) classified correctly after defense. */
  dsrOnAdversarial: number;
  /** Number of adversarial examples behind `dsrOnAdversarial`. */
  adversarial: number;
  /** Robust accuracy of the defended pipeline over all test examples (see the module doc). */
  robustAccuracy: number;
  robustCorrect: number;
  /** Attacked examples whose success flag disagrees with the independent re-defense (expected 0 on `defended` rows). */
  flagMismatches: number;
  /** Mean and max distance (attack's norm) of the adversarial examples from the clean inputs. */
  meanDistance: number;
  maxDistance: number;
  meanQueries: number;
  msPerExample: number;
  notes: string[];
}

/** An attack the suite wanted but could not run (e.g. not in the attack registry yet). */
export interface UnavailableAttack {
  name: string;
  reason: string;
}

/** A whole adaptive evaluation. */
export interface AdaptiveReport {
  examples: number;
  /** Clean accuracy of the bare model and of the defended pipeline (robust accuracy cannot exceed the latter). */
  cleanAccuracy: number;
  cleanAccuracyDefended: number;
  rows: AdaptiveRow[];
  unavailable: UnavailableAttack[];
  /** The defense pipeline attacked: its name and each stage's description with its settings. */
  defense: { name: string; stages: string[] };
}

type Progress = AdaptiveOptions["onProgress"];

function batches(n: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let start = 0; start < n; start += size) out.push([start, Math.min(size, n - start)]);
  return out;
}

function defendedLabels(pipeline: DefensePipeline, x: tf.Tensor): Int32Array {
  const outcome = pipeline.run(x);
  outcome.defended.dispose();
  return outcome.labelsAfter!;
}

function gatherRows(x: tf.Tensor4D, indices: ArrayLike<number>): tf.Tensor4D {
  return tf.tidy(() => tf.gather(x, tf.tensor1d(Int32Array.from(indices), "int32"))) as tf.Tensor4D;
}

function ratio(count: number, total: number): number {
  return total === 0 ? NaN : count / total;
}

function defaultLabel(spec: AdaptiveAttackSpec): string {
  if (spec.against === "model") return spec.attack.name;
  return spec.attack.kind === "white-box" ? `${spec.attack.name} + BPDA` : `${spec.attack.name} (queries)`;
}

/** Runs `attack` over `indices` of `x` in batches; calls `visit` with each batch's result and positions. */
async function runInBatches(
  attack: Attack,
  target: AttackTarget,
  x: tf.Tensor4D,
  labels: Int32Array,
  indices: number[],
  budget: AttackBudget,
  batchSize: number,
  stage: string,
  onProgress: Progress,
  visit: (result: AttackResult, positions: number[]) => void,
): Promise<void> {
  const plan = batches(indices.length, batchSize);
  for (const [k, [start, size]] of plan.entries()) {
    const positions = indices.slice(start, start + size);
    const batch = gatherRows(x, positions);
    const criterion = {
      kind: "misclassification" as const,
      labels: Int32Array.from(positions, (i) => labels[i]),
    };
    const result = await attack.run(target, batch, criterion, budget);
    batch.dispose();
    try {
      visit(result, positions);
    } finally {
      result.adversarial.dispose();
    }
    onProgress?.(stage, k + 1, plan.length);
  }
}

async function evaluateSpec(
  pipeline: DefensePipeline,
  x: tf.Tensor4D,
  labels: Int32Array,
  clean: { bare: Int32Array; defended: Int32Array },
  spec: AdaptiveAttackSpec,
  options: AdaptiveOptions,
): Promise<AdaptiveRow> {
  const n = labels.length;
  const batchSize = options.batchSize ?? 100;
  const { attack, budget, against } = spec;
  const label = spec.label ?? defaultLabel(spec);
  const bareTarget = targetFromModel(pipeline.split.model, { inputRange: pipeline.split.inputRange });
  const target = against === "defended"
    ? defendedTarget(pipeline, { ...options.target, differentiable: attack.kind === "white-box" })
    : bareTarget;
  const bareCorrect = (i: number) => clean.bare[i] === labels[i];
  const defendedCorrect = (i: number) => clean.defended[i] === labels[i];
  const attacked = Array.from({ length: n }, (_, i) => i).filter((i) =>
    against === "defended" ? defendedCorrect(i) : bareCorrect(i) || defendedCorrect(i)
  );

  const correctAfter = new Uint8Array(n);
  const bareFooled = new Uint8Array(n);
  const success = new Uint8Array(n);
  const secondStage = new Uint8Array(n);
  let flagMismatches = 0;
  let queries = 0;
  let distanceSum = 0;
  let distanceMax = 0;
  const started = performance.now();
  await runInBatches(
    attack,
    target,
    x,
    labels,
    attacked,
    budget,
    batchSize,
    label,
    options.onProgress,
    (result, positions) => {
      const afterDefense = defendedLabels(pipeline, result.adversarial);
      const afterBare = predictLabels(pipeline.split.model, result.adversarial);
      const saaResult = (result as Partial<SaaResult>).secondStage;
      const distances = result.distances[attack.norm];
      positions.forEach((i, j) => {
        correctAfter[i] = afterDefense[j] === labels[i] ? 1 : 0;
        bareFooled[i] = afterBare[j] !== labels[i] ? 1 : 0;
        success[i] = result.success[j];
        queries += result.queries[j];
        distanceSum += distances[j];
        distanceMax = Math.max(distanceMax, distances[j]);
        // The flag means "misclassified by the attack's own target": the defended pipeline for `defended`
        // rows and for SAA, the bare model for the other `model` rows.
        const fooledOwnTarget = against === "defended" || saaResult !== undefined
          ? correctAfter[i] === 0
          : bareFooled[i] === 1;
        if (success[i] === 1 && !fooledOwnTarget) flagMismatches++;
        if (against === "defended" && success[i] === 0 && fooledOwnTarget) flagMismatches++;
      });
      saaResult?.forEach((j) => secondStage[positions[j]] = 1);
    },
  );
  const elapsed = performance.now() - started;

  const notes: string[] = [];
  let asrBare = NaN;
  let asrDefended = NaN;
  let asrPaper = NaN;
  let dsrOnAdversarial = NaN;
  let adversarial = 0;
  const benignAttacked = attacked.filter(bareCorrect);
  if (against === "defended") {
    asrDefended = ratio(attacked.filter((i) => correctAfter[i] === 0).length, attacked.length);
    notes.push(
      attack.kind === "white-box"
        ? "gradients by BPDA (NIP's matched candidate held constant, transformations as the identity)"
        : "queries the deployed pipeline only",
    );
    if (spec.bareReference ?? attack.kind === "white-box") {
      let fooled = 0;
      await runInBatches(
        attack,
        bareTarget,
        x,
        labels,
        benignAttacked,
        budget,
        batchSize,
        `${label} (bare reference)`,
        options.onProgress,
        (result) => {
          fooled += result.success.reduce((a, b) => a + b, 0);
        },
      );
      asrBare = ratio(fooled, benignAttacked.length);
    }
  } else {
    asrBare = ratio(benignAttacked.filter((i) => bareFooled[i] === 1).length, benignAttacked.length);
    const adversarialIdx = benignAttacked.filter((i) => bareFooled[i] === 1);
    adversarial = adversarialIdx.length;
    if (attack.name.startsWith("saa(")) {
      const again = benignAttacked.filter((i) => secondStage[i] === 1);
      asrPaper = ratio(again.filter((i) => success[i] === 1).length, again.length);
      notes.push(
        `attacked again: ${again.length} examples NIP had defended; distances include both attacks and NIP's change`,
      );
    } else {
      asrPaper = ratio(benignAttacked.filter((i) => correctAfter[i] === 0).length, benignAttacked.length);
      dsrOnAdversarial = ratio(adversarialIdx.filter((i) => correctAfter[i] === 1).length, adversarial);
    }
  }
  const robustCorrect =
    Array.from({ length: n }, (_, i) => i).filter((i) => defendedCorrect(i) && correctAfter[i] === 1)
      .length;
  return {
    label,
    attack: attack.name,
    against,
    kind: attack.kind,
    norm: attack.norm,
    budget: budget.label ?? `${attack.norm} ${budget.epsilon}`,
    budgetSource: budget.source ?? "custom",
    epsilon: budget.epsilon,
    examples: n,
    attacked: attacked.length,
    successRate: ratio(attacked.filter((i) => success[i] === 1).length, attacked.length),
    asrBare,
    asrDefended,
    asrPaper,
    dsrPaper: 1 - asrPaper,
    dsrOnAdversarial,
    adversarial,
    robustAccuracy: ratio(robustCorrect, n),
    robustCorrect,
    flagMismatches,
    meanDistance: ratio(distanceSum, attacked.length),
    maxDistance: attacked.length === 0 ? NaN : distanceMax,
    meanQueries: ratio(queries, attacked.length),
    msPerExample: ratio(elapsed, attacked.length),
    notes,
  };
}

/**
 * Runs every adaptive attack spec against the defense `pipeline` on the test batch `x` with its true labels and reports
 * robust accuracy per attack. Frees every tensor it makes.
 */
export async function evaluateAdaptive(
  pipeline: DefensePipeline,
  x: tf.Tensor4D,
  labels: Int32Array,
  specs: AdaptiveAttackSpec[],
  options: AdaptiveOptions = {},
  unavailable: UnavailableAttack[] = [],
): Promise<AdaptiveReport> {
  const n = labels.length;
  if (x.shape[0] !== n) {
    throw new RangeError(`evaluateAdaptive: x has ${x.shape[0]} examples but labels has ${n}`);
  }
  const bare = new Int32Array(n);
  const defended = new Int32Array(n);
  for (const [start, size] of batches(n, options.batchSize ?? 100)) {
    const batch = x.slice(start, size);
    bare.set(predictLabels(pipeline.split.model, batch), start);
    defended.set(defendedLabels(pipeline, batch), start);
    batch.dispose();
  }
  const rows: AdaptiveRow[] = [];
  for (const spec of specs) {
    rows.push(await evaluateSpec(pipeline, x, labels, { bare, defended }, spec, options));
  }
  return {
    examples: n,
    cleanAccuracy: ratio(labels.filter((l, i) => bare[i] === l).length, n),
    cleanAccuracyDefended: ratio(labels.filter((l, i) => defended[i] === l).length, n),
    rows,
    unavailable,
    defense: { name: pipeline.name, stages: pipeline.stages.map((stage) => stage.description) },
  };
}

/** Names accepted by {@link adaptiveSuite} (and `runAdaptive`'s `attacks`); `all` selects every one. */
export const ADAPTIVE_ATTACKS = [
  "pgd-linf-bpda",
  "pgd-l2-bpda",
  "square",
  "boundary",
  "s-ala",
  "r-ala",
  "ala",
  "i-ala",
  "saa-fgsm",
  "saa-pgd-linf",
  "saa-pwa",
  "saa-boundary",
] as const;

/**
 * Budget choice for the suite's attacks: `standard` (the input kind's, SPEC.md section 7), `paper` (App. A
 * Table 2, for attacks that have a row there; others skip it), or a number (a custom epsilon in the
 * attack's norm). ALA and I-ALA always use the distance their paper steps reach (`adaptiveBudgets`).
 */
export type AdaptiveBudgetChoice = "standard" | "paper" | number;

function registered(name: string): boolean {
  return ATTACKS.some((a) => a.name === name);
}

function paperSetting(name: string) {
  return paperAttackSettings.find((s) => s.attack === name);
}

/** The budgets (and the paper's parameters, with the paper budget) of a library attack for each choice. */
function budgetsFor(
  attackName: string,
  norm: Norm,
  kind: ReturnType<typeof inputKindOf>,
  choices: readonly AdaptiveBudgetChoice[],
): { budget: AttackBudget; paperParams: Record<string, unknown> }[] {
  const paper = paperSetting(attackName);
  const out: { budget: AttackBudget; paperParams: Record<string, unknown> }[] = [];
  for (const choice of choices) {
    if (choice === "paper") {
      if (paper) out.push({ budget: budgetPreset(paper.budget), paperParams: { ...paper.params } });
    } else if (choice === "standard") {
      // No standard L0 budget exists (SPEC.md names none): L0 attacks (PWA) run unbounded, labelled so.
      const budget: AttackBudget = standardBudget(norm, kind) ??
        { epsilon: Infinity, label: "L0 unbounded (no standard L0 budget)", source: "custom" };
      out.push({ budget, paperParams: {} });
    } else {
      if (!(typeof choice === "number" && Number.isFinite(choice) && choice > 0)) {
        throw new RangeError(`adaptive budget ${choice}: expected "standard", "paper" or a positive number`);
      }
      out.push({
        budget: { epsilon: choice, label: `${norm} ${choice}`, source: "custom" },
        paperParams: {},
      });
    }
  }
  return out;
}

/**
 * The adaptive attack specs for `names` (see {@link ADAPTIVE_ATTACKS}) at each budget choice. Library
 * attacks that are not in the registry are listed as unavailable rather than copied here. `overrides`
 * replace attack parameters by suite name (e.g. fewer Boundary steps in a quick run).
 */
export function adaptiveSuite(
  pipeline: DefensePipeline,
  names: readonly string[] = ADAPTIVE_ATTACKS,
  budgets: readonly AdaptiveBudgetChoice[] = ["standard"],
  overrides: Record<string, Record<string, unknown>> = {},
): { specs: AdaptiveAttackSpec[]; unavailable: UnavailableAttack[] } {
  const selected = names.includes("all") ? [...ADAPTIVE_ATTACKS] : [...names];
  const kind = inputKindOf(pipeline.split.inputShape);
  const { split } = pipeline;
  const specs: AdaptiveAttackSpec[] = [];
  const unavailable: UnavailableAttack[] = [];
  const params = (name: string, base: Record<string, unknown> = {}) => ({
    ...base,
    ...(overrides[name] ?? {}),
  });
  const missing = (name: string, attack: string) =>
    unavailable.push({
      name,
      reason: `attack "${attack}" is not in the attack registry (src/attacks/registry.ts) yet`,
    });
  const libraryAttack = (
    suiteName: string,
    attackName: string,
    against: AdaptiveAgainst,
    wrap = (a: Attack) => a,
  ) => {
    if (!registered(attackName)) return missing(suiteName, attackName);
    const info = ATTACKS.find((a) => a.name === attackName)!;
    for (const { budget, paperParams } of budgetsFor(attackName, info.norm, kind, budgets)) {
      specs.push({ attack: wrap(getAttack(attackName, params(suiteName, paperParams))), budget, against });
    }
  };
  const neuronAttack = (attack: Attack) => {
    for (const { budget } of budgetsFor(attack.name, "linf", kind, budgets)) {
      specs.push({ attack, budget, against: "model" });
    }
  };
  for (const name of selected) {
    switch (name) {
      case "pgd-linf-bpda":
        libraryAttack(name, "pgd-linf", "defended");
        break;
      case "pgd-l2-bpda":
        libraryAttack(name, "pgd-l2", "defended");
        break;
      case "square": {
        const squares = ATTACKS.filter((a) => a.name.startsWith("square"));
        if (squares.length === 0) missing(name, "square");
        for (const info of squares) libraryAttack(name, info.name, "defended");
        break;
      }
      case "boundary":
        libraryAttack(name, "boundary", "defended");
        break;
      case "s-ala":
        neuronAttack(sAla(split, params(name)));
        break;
      case "r-ala": {
        // R-ALA targets the front and tail sizes of the NIP stage where the pipeline has one.
        const nip = pipeline.stages.find((stage) => stage.settings.k1 !== undefined)?.settings;
        neuronAttack(rAla(split, params(name, nip ? { k1: nip.k1, k2: nip.k2 } : {})));
        break;
      }
      case "ala":
        specs.push({
          attack: ala(split, params(name)),
          budget: adaptiveBudgets["paper-ala"],
          against: "model",
        });
        break;
      case "i-ala":
        specs.push({
          attack: iAla(split, params(name)),
          budget: adaptiveBudgets["paper-i-ala"],
          against: "model",
        });
        break;
      case "saa-fgsm":
      case "saa-pgd-linf":
      case "saa-pwa":
      case "saa-boundary":
        libraryAttack(name, name.slice("saa-".length), "model", (base) => saa(base, pipeline));
        break;
      default:
        throw new RangeError(`unknown adaptive attack "${name}"; known: ${ADAPTIVE_ATTACKS.join(", ")}, all`);
    }
  }
  return { specs, unavailable };
}

/** Renders an adaptive report as Markdown: robust accuracy first, every number with its budget. */
export function renderAdaptiveMarkdown(report: AdaptiveReport, title = "NIP under adaptive attacks"): string {
  const { defense } = report;
  const lines = [
    `## ${title}`,
    "",
    `Defense \`${defense.name}\`: ${defense.stages.join("; ") || "none"}.`,
    "",
    `Test examples: ${report.examples}; clean accuracy ${pct(report.cleanAccuracy)} bare, ` +
    `${pct(report.cleanAccuracyDefended)} defended (the ceiling of every robust accuracy below).`,
    "",
    "**Robust accuracy** = test examples the defended pipeline classifies correctly both clean and after the " +
    "attack, over all test examples. `defended` rows attack the whole pipeline (white-box: PGD with BPDA " +
    "gradients: NIP's matched candidate held constant, an input transformation's gradient the identity; " +
    "black-box: queries only); `model` rows are the paper's " +
    "adaptive attacks on the bare model's neurons, then defended. Paper ASR (model rows) = attacked " +
    "bare-correct examples misclassified after defense (SAA: over the examples attacked a second time); paper " +
    "DSR = 1 - ASR. DSR on adv. = SPEC.md section 6 DSR over the examples that fool the bare model.",
    "",
    "| attack | against | budget | attacked | robust acc. | success (own target) | ASR bare | ASR defended | " +
    "paper ASR / DSR | DSR on adv. | mean / max dist. | queries | ms/ex. |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const row of report.rows) {
    const paper = Number.isNaN(row.asrPaper) ? "–" : `${pct(row.asrPaper)} / ${pct(row.dsrPaper)}`;
    const onAdversarial = Number.isNaN(row.dsrOnAdversarial)
      ? "–"
      : `${pct(row.dsrOnAdversarial)} (${row.adversarial})`;
    lines.push(
      `| ${row.label} | ${row.against} | ${row.budget} (${row.budgetSource}) | ${row.attacked}/${row.examples} | ` +
        `**${pct(row.robustAccuracy)}** | ${pct(row.successRate)} | ${pct(row.asrBare)} | ${
          pct(row.asrDefended)
        } | ` +
        `${paper} | ${onAdversarial} | ${num(row.meanDistance, 3)} / ${
          num(row.maxDistance, 3)
        } ${row.norm} | ` +
        `${num(row.meanQueries, 0)} | ${num(row.msPerExample, 1)} |`,
    );
  }
  const notes = report.rows.filter((r) => r.notes.length > 0 || r.flagMismatches > 0);
  if (notes.length > 0) {
    lines.push("");
    for (const row of notes) {
      const mismatch = row.flagMismatches > 0
        ? [`${row.flagMismatches} success flags disagree with the independent re-defense`]
        : [];
      lines.push(`- ${row.label}: ${[...row.notes, ...mismatch].join("; ")}.`);
    }
  }
  if (report.unavailable.length > 0) {
    lines.push("", "Not run:");
    for (const u of report.unavailable) lines.push(`- ${u.name}: ${u.reason}.`);
  }
  lines.push(
    "",
    "Readings (src/adaptive/README.md): S-ALA / R-ALA take projected sign steps (the paper gives no bound); ALA " +
      "strengthens the tail and weakens the front as the paper's text says (its App. B Eq. 1 has the opposite " +
      "sign) with sign steps of s = 0.01; SAA's second attack is bounded around the defended input.",
  );
  return lines.join("\n") + "\n";
}

/** Options of {@link runAdaptive}. */
export interface RunAdaptiveOptions extends AdaptiveOptions {
  /** Suite names (default: all of {@link ADAPTIVE_ATTACKS}). */
  attacks?: readonly string[];
  /** Budget choices (default: standard); see {@link AdaptiveBudgetChoice}. */
  budgets?: readonly AdaptiveBudgetChoice[];
  /** Attack parameter overrides by suite name. */
  overrides?: Record<string, Record<string, unknown>>;
  title?: string;
}

/**
 * The entry point for `deno task eval --adaptive`: builds the suite, evaluates it, renders Markdown. The
 * caller owns `pipeline` and `x`.
 */
export async function runAdaptive(
  pipeline: DefensePipeline,
  x: tf.Tensor4D,
  labels: Int32Array,
  options: RunAdaptiveOptions = {},
): Promise<{ report: AdaptiveReport; markdown: string }> {
  const { specs, unavailable } = adaptiveSuite(pipeline, options.attacks, options.budgets, options.overrides);
  const report = await evaluateAdaptive(pipeline, x, labels, specs, options, unavailable);
  return { report, markdown: renderAdaptiveMarkdown(report, options.title) };
}
