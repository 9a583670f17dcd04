/**
 * Adaptive attacks on the detection (SPEC.md section 8; `deno task eval --detect --detect-adaptive`),
 * after Carlini & Wagner 2017 and Tramer 2022: per L_inf budget, the detecting pipeline's
 * **rejected-or-correct** rate on attacked inputs (flagged by the deployed detection, or accepted and
 * classified correctly) under
 *
 * - `pgd-unaware`: PGD on the classification loss alone (the detection is ignored): the non-adaptive
 *   reference, which the adaptive attack must never do worse than;
 * - `pgd-detect`: PGD on the loss that also keeps the combined p-value above alpha ({@link detectionPgd});
 * - `square`: Square (L_inf, score-based) against the deployed decision, a rejection counting as a failed
 *   query ({@link rejectingTarget});
 * - `boundary`: the Boundary attack (L2, decision-based) against the same deployed decision, one example at
 *   a time, at the L2 radius `boundaryEpsilon`, on the first `boundaryN` inputs (its queries cost one
 *   pipeline run each).
 *
 * Every attack is repeated `runs` times with fresh seeds (the detection is randomised: NIP-response draws
 * noise), and each attacked input is judged by the deployed pipeline with yet another fresh seed. The
 * reported rate is the per-example worst case: an input counts as defended only when it was defended in
 * every run. Each run's own rate is listed too. The attacked inputs are the benign test inputs the model
 * classifies correctly and the detection accepts (those it already rejects need no attack).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { deployedDecision, detectionPgd } from "../adaptive/detection_pgd.ts";
import { rejectingTarget } from "../adaptive/rejecting_target.ts";
import { getAttack } from "../attacks/registry.ts";
import type { DefensePipeline } from "../stages/pipeline.ts";
import type { EvalSet } from "./harness.ts";
import { finiteMean } from "./metrics.ts";

/** The attacks of this evaluation, in report order. */
export const ADAPTIVE_DETECTION_ATTACKS = ["pgd-unaware", "pgd-detect", "square", "boundary"] as const;
/** One of {@link ADAPTIVE_DETECTION_ATTACKS}. */
export type AdaptiveDetectionAttack = typeof ADAPTIVE_DETECTION_ATTACKS[number];

/** Options of {@link evaluateAdaptiveDetection}. */
export interface AdaptiveDetectionOptions {
  /** L_inf radii. */
  epsilons: readonly number[];
  /** Repetitions with fresh seeds (default 5). */
  runs?: number;
  /** At most this many inputs attacked (default 100). */
  n?: number;
  /** PGD steps per weight (default 100). */
  steps?: number;
  /** Square iterations (default 1000). */
  squareSteps?: number;
  /** EOT draws per PGD step (default 1). */
  eotSamples?: number;
  /** L2 radius of the Boundary attack (default 2, the DeepFool budget of the detection table); 0: skip it. */
  boundaryEpsilon?: number;
  /** Boundary iterations, two queries each (default 500). */
  boundarySteps?: number;
  /** At most this many inputs for the Boundary attack (default 20). */
  boundaryN?: number;
  batchSize?: number;
  seed?: number;
  onProgress?: (stage: string, done: number, total: number) => void;
}

/** One attack at one budget. */
export interface AdaptiveDetectionRow {
  attack: AdaptiveDetectionAttack;
  /** Norm of the budget: L_inf, or L2 for the Boundary attack. */
  norm: "linf" | "l2";
  epsilon: number;
  attacked: number;
  /** Rejected-or-correct of each run. */
  perRun: number[];
  /** Per-example worst case over the runs: defended in every run. */
  worst: number;
  /** Of the attacked inputs, misclassified and accepted in at least one run. */
  evaded: number;
  /** Mean seconds per run. */
  seconds: number;
}

/** The whole adaptive detection evaluation. */
export interface AdaptiveDetectionReport {
  alpha: number;
  description: string;
  runs: number;
  settings: {
    steps: number;
    squareSteps: number;
    eotSamples: number;
    weights: number[];
    boundarySteps: number;
  };
  /** Benign test inputs, those correct and accepted (the attacked pool before the cap). */
  benign: { examples: number; acceptedAndCorrect: number };
  rows: AdaptiveDetectionRow[];
  /** Rows where the adaptive PGD left more defended than the unaware one: a broken attack. */
  warnings: string[];
}

/** PGD weights of the detection term; 0 is the unaware attack. */
const AWARE_WEIGHTS = [1, 10];

/** Defended flags (flagged, or accepted and correct) of a batch under the deployed pipeline. */
function defendedFlags(
  pipeline: DefensePipeline,
  x: tf.Tensor,
  labels: Int32Array,
  seed: number,
): Uint8Array {
  const decision = deployedDecision(pipeline, x, seed);
  return Uint8Array.from(labels, (l, i) => (decision.flagged[i] === 1 || decision.labels[i] === l ? 1 : 0));
}

/** Runs one attack on one batch; returns the adversarial batch (the caller disposes it). */
async function attackBatch(
  attack: AdaptiveDetectionAttack,
  pipeline: DefensePipeline,
  x: tf.Tensor,
  labels: Int32Array,
  epsilon: number,
  options: Required<Pick<AdaptiveDetectionOptions, "steps" | "squareSteps" | "eotSamples" | "boundarySteps">>,
  seed: number,
): Promise<tf.Tensor> {
  if (attack === "boundary") {
    // One example at a time: the target then knows whose query it scores (see rejectingTarget).
    const parts: tf.Tensor[] = [];
    for (let i = 0; i < labels.length; i++) {
      const one = x.slice(i, 1);
      const label = labels.slice(i, i + 1);
      const target = rejectingTarget(pipeline, one, label, epsilon, seed + i);
      const result = await getAttack("boundary", { steps: options.boundarySteps, seed: seed + i }).run(
        target,
        one as tf.Tensor4D,
        { kind: "misclassification", labels: label },
        { epsilon, label: `L2 ${epsilon}`, source: "custom" },
      );
      // A search that found nothing within the radius leaves the input itself.
      parts.push(result.success[0] === 1 ? result.adversarial : one.clone());
      if (result.success[0] !== 1) result.adversarial.dispose();
      one.dispose();
    }
    const batch = tf.concat(parts);
    tf.dispose(parts);
    return batch;
  }
  if (attack === "square") {
    const target = rejectingTarget(pipeline, x, labels, epsilon, seed);
    const result = await getAttack("square-linf", { steps: options.squareSteps, seed }).run(
      target,
      x as tf.Tensor4D,
      { kind: "misclassification", labels },
      { epsilon, label: `L_inf ${epsilon}`, source: "custom" },
    );
    return result.adversarial;
  }
  return detectionPgd(pipeline, x, labels, {
    epsilon,
    steps: options.steps,
    weights: attack === "pgd-unaware" ? [0] : AWARE_WEIGHTS,
    eotSamples: options.eotSamples,
    seed,
  }).adversarial;
}

/** Evaluates the pipeline's detection under the adaptive attacks. */
export async function evaluateAdaptiveDetection(
  pipeline: DefensePipeline,
  set: EvalSet,
  options: AdaptiveDetectionOptions,
): Promise<AdaptiveDetectionReport> {
  if (!pipeline.detection) {
    throw new RangeError(`pipeline ${pipeline.name} has no calibrated detection stage`);
  }
  const runs = options.runs ?? 5;
  const batchSize = options.batchSize ?? 100;
  const settings = {
    steps: options.steps ?? 100,
    squareSteps: options.squareSteps ?? 1000,
    eotSamples: options.eotSamples ?? 1,
    boundarySteps: options.boundarySteps ?? 500,
  };
  const boundaryEpsilon = options.boundaryEpsilon ?? 2;
  const seed = options.seed ?? 1;
  const decision = deployedDecision(pipeline, set.x, seed);
  const accepted = Array.from(set.labels.keys()).filter((i) =>
    decision.flagged[i] === 0 && decision.labels[i] === set.labels[i]
  );
  const pool = accepted.slice(0, options.n ?? 100);
  const rows: AdaptiveDetectionRow[] = [];
  const warnings: string[] = [];
  const plans: { attack: AdaptiveDetectionAttack; norm: "linf" | "l2"; epsilon: number; pool: number[] }[] =
    [];
  for (const epsilon of options.epsilons) {
    for (const attack of ["pgd-unaware", "pgd-detect", "square"] as const) {
      plans.push({ attack, norm: "linf", epsilon, pool });
    }
  }
  if (boundaryEpsilon > 0) {
    plans.push({
      attack: "boundary",
      norm: "l2",
      epsilon: boundaryEpsilon,
      pool: pool.slice(0, options.boundaryN ?? 20),
    });
  }
  for (const { attack, norm, epsilon, pool } of plans) {
    const defendedAll = new Uint8Array(pool.length).fill(1);
    const perRun: number[] = [];
    const started = performance.now();
    for (let run = 0; run < runs; run++) {
      const defended = new Uint8Array(pool.length);
      for (let start = 0; start < pool.length; start += batchSize) {
        const rowsOf = pool.slice(start, start + batchSize);
        const labels = Int32Array.from(rowsOf, (i) => set.labels[i]);
        const index = tf.tensor1d(Int32Array.from(rowsOf), "int32");
        const x = tf.gather(set.x, index);
        index.dispose();
        const runSeed = seed + 1000 * (run + 1) + start;
        try {
          const adversarial = await attackBatch(attack, pipeline, x, labels, epsilon, settings, runSeed);
          defended.set(defendedFlags(pipeline, adversarial, labels, runSeed + 7), start);
          adversarial.dispose();
        } finally {
          x.dispose();
        }
        options.onProgress?.(
          `adaptive detection ${attack} ${norm} ${epsilon} run ${run + 1}`,
          Math.min(start + batchSize, pool.length),
          pool.length,
        );
      }
      defended.forEach((v, i) => defendedAll[i] &= v);
      perRun.push(finiteMean(defended));
    }
    rows.push({
      attack,
      norm,
      epsilon,
      attacked: pool.length,
      perRun,
      worst: finiteMean(defendedAll),
      evaded: pool.length - defendedAll.reduce((a, b) => a + b, 0),
      seconds: (performance.now() - started) / 1000 / runs,
    });
  }
  for (const epsilon of options.epsilons) {
    const unaware = rows.find((r) => r.epsilon === epsilon && r.attack === "pgd-unaware")!;
    const aware = rows.find((r) => r.epsilon === epsilon && r.attack === "pgd-detect")!;
    if (aware.worst > unaware.worst) {
      warnings.push(
        `eps ${epsilon}: the detection-aware PGD left ${
          (aware.worst * 100).toFixed(1)
        }% defended, more than ` +
          `the unaware PGD's ${
            (unaware.worst * 100).toFixed(1)
          }%: the adaptive attack is not at full strength`,
      );
    }
  }
  return {
    alpha: pipeline.alpha,
    description: pipeline.detection.stage.description,
    runs,
    settings: { ...settings, weights: AWARE_WEIGHTS },
    benign: { examples: set.labels.length, acceptedAndCorrect: accepted.length / set.labels.length },
    rows,
    warnings,
  };
}

/** Renders the adaptive detection report as Markdown. */
export function renderAdaptiveDetectionMarkdown(report: AdaptiveDetectionReport): string {
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  const lines = [
    "## Adaptive attacks on the detection",
    "",
    `${report.description}; flagged at alpha = ${report.alpha}. Attacked: benign test inputs the model ` +
    `classifies correctly and the detection accepts (${pct(report.benign.acceptedAndCorrect)} of ` +
    `${report.benign.examples}). Cell: **rejected-or-correct**, per-example worst case over ${report.runs} ` +
    `runs with fresh seeds (each run's rate after it). PGD: ${report.settings.steps} steps per weight ` +
    `(weights ${
      report.settings.weights.join(", ")
    } of the detection term), ${report.settings.eotSamples} EOT ` +
    `draw(s) per step; Square: ${report.settings.squareSteps} iterations against the deployed decision, a ` +
    `rejected query counting as failed; Boundary: ${report.settings.boundarySteps} iterations (L2), one input ` +
    "at a time, on the same decision.",
    "",
    "| attack | budget | attacked | rejected-or-correct (worst) | per run | evaded at least once | s per run |",
    "|---|---|---|---|---|---|---|",
    ...report.rows.map((r) =>
      `| ${r.attack} | ${r.norm === "l2" ? "L2" : "L_inf"} ${r.epsilon} | ${r.attacked} | **${
        pct(r.worst)
      }** | ${r.perRun.map(pct).join(", ")} | ` +
      `${r.evaded} | ${r.seconds.toFixed(1)} |`
    ),
  ];
  if (report.warnings.length > 0) lines.push("", ...report.warnings.map((w) => `- Warning: ${w}`));
  return lines.join("\n") + "\n";
}
