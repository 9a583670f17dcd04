/**
 * The detection evaluation (SPEC.md section 8; `deno task eval --detect`): for a pipeline whose detection
 * stage was calibrated on benign examples, the measured false-positive rate at `alpha` on the benign test
 * split (with its exact binomial interval) and on corrupted benign inputs; per attack and budget the
 * detection rate at `alpha` and the ROC AUC, per detector, combined, and for Bonferroni's combination of
 * the members' own p-values (the reference any combination must beat); and the **rejected-or-correct** rate on attacked inputs (flagged, or accepted and classified correctly by the model) beside the benign
 * accepted-and-correct rate. No true label reaches the detectors; labels only score the outcome.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { DefensePipeline } from "../stages/pipeline.ts";
import { mulberry32 } from "../random.ts";
import { clopperPearson } from "../stats/binomial.ts";
import type { Corruption } from "./corruptions.ts";
import { concatArrays } from "../arrays.ts";
import { agreement } from "./controls.ts";
import { attackAll, type AttackSpec, type EvalSet, MODEL_INPUT_DOMAIN } from "./harness.ts";
import { rocAuc } from "./metrics.ts";
import { bonferroni } from "../stages/conformal.ts";
import type { ImageShape } from "../stages/image/image_stage.ts";

/** A measured rate with its count, sample size and 95% Clopper-Pearson interval. */
export interface MeasuredRate {
  rate: number;
  count: number;
  n: number;
  interval: [number, number];
}

/** One attack at one budget, for detection. */
export interface DetectionRow {
  attack: string;
  domain: string;
  budget: string;
  budgetSource: string;
  attacked: number;
  adversarial: number;
  asr: number;
  /** Flagged adversarial examples / adversarial examples, per detector and `combined`. */
  detection: Record<string, MeasuredRate>;
  /** ROC AUC of adversarial vs benign test scores, per detector and `combined`. */
  auc: Record<string, number>;
  /** Attacked inputs flagged, or not flagged and classified correctly by the model, over attacked inputs. */
  rejectedOrCorrect: number;
}

/** A whole detection evaluation. */
export interface DetectionReport {
  alpha: number;
  detectors: string[];
  description: string;
  benign: {
    examples: number;
    bareAccuracy: number;
    /** Flagged benign test inputs, per detector and `combined`. */
    falsePositive: Record<string, MeasuredRate>;
    /** Benign test inputs not flagged and classified correctly, over benign test inputs. */
    acceptedAndCorrect: number;
  };
  corruptions: { name: string; falsePositive: Record<string, MeasuredRate> }[];
  rows: DetectionRow[];
}

/** Options of {@link evaluateDetection}. */
export interface DetectionOptions {
  alpha: number;
  corruptions?: readonly Corruption[];
  batchSize?: number;
  seed?: number;
  onProgress?: (stage: string, done: number, total: number) => void;
}

/** Per-example detection outputs: each detector's score and p-value, the combination's, the model's labels. */
interface Detected {
  scores: Record<string, Float32Array>;
  pValues: Record<string, Float32Array>;
  labels: Int32Array;
}

function measured(count: number, n: number): MeasuredRate {
  return {
    rate: n === 0 ? NaN : count / n,
    count,
    n,
    interval: n === 0 ? [NaN, NaN] : clopperPearson(count, n),
  };
}

/** The column of the Bonferroni reference in reports. */
const BONFERRONI = "bonferroni";

const joined = (parts: Float32Array[]) => concatArrays(parts, (n) => new Float32Array(n));

/** Runs the pipeline's detection stage over `x` in batches (no verdict after defense). */
function detect(
  pipeline: DefensePipeline,
  stageName: string,
  detectors: string[],
  x: tf.Tensor,
  batchSize: number,
): Detected {
  const parts: Detected[] = [];
  for (let start = 0; start < x.shape[0]; start += batchSize) {
    const batch = x.slice(start, Math.min(batchSize, x.shape[0] - start));
    const outcome = pipeline.run(batch, { verdictAfter: false, transforms: false });
    tf.dispose([batch, outcome.defended]);
    const details = outcome.details[stageName];
    parts.push({
      labels: outcome.labelsBefore,
      scores: {
        combined: outcome.scores[stageName],
        ...Object.fromEntries(detectors.map((d) => [d, details[`${d}.score`] as Float32Array])),
      },
      pValues: {
        combined: details.pValue as Float32Array,
        ...Object.fromEntries(detectors.map((d) => [d, details[`${d}.pValue`] as Float32Array])),
      },
    });
  }
  const names = ["combined", ...detectors];
  const scores = Object.fromEntries(names.map((d) => [d, joined(parts.map((p) => p.scores[d]))]));
  const pValues = Object.fromEntries(names.map((d) => [d, joined(parts.map((p) => p.pValues[d]))]));
  // The reference every combination is judged against: Bonferroni over the members' own p-values.
  pValues[BONFERRONI] = bonferroni(detectors.map((d) => pValues[d]));
  scores[BONFERRONI] = pValues[BONFERRONI].map((p) => -Math.log(p));
  return { scores, pValues, labels: concatArrays(parts.map((p) => p.labels), (n) => new Int32Array(n)) };
}

function flaggedRates(pValues: Record<string, Float32Array>, alpha: number): Record<string, MeasuredRate> {
  return Object.fromEntries(
    Object.entries(pValues).map(([d, p]) => [d, measured(p.filter((v) => v <= alpha).length, p.length)]),
  );
}

/**
 * Evaluates the detection stage of `pipeline` (the one scoring stage that reports a combined `pValue`) on
 * the benign test set, its corruptions and every attack spec.
 */
export async function evaluateDetection(
  pipeline: DefensePipeline,
  set: EvalSet,
  specs: AttackSpec[],
  options: DetectionOptions,
): Promise<DetectionReport> {
  if (!pipeline.detection) {
    throw new RangeError(`pipeline ${pipeline.name} has no calibrated detection stage`);
  }
  const { stage, members: detectors } = pipeline.detection;
  const batchSize = options.batchSize ?? 100;
  const { split } = pipeline;
  const n = set.labels.length;
  const benign = detect(pipeline, stage.name, detectors, set.x, batchSize);
  // The model's own labels, read from the same runs: the verdict before defense.
  const bare = benign.labels;
  const benignFlagged = benign.pValues.combined.map((p) => (p <= options.alpha ? 1 : 0));
  const acceptedAndCorrect = set.labels.filter((l, i) => benignFlagged[i] === 0 && bare[i] === l).length / n;

  const corruptions: DetectionReport["corruptions"] = [];
  const random = mulberry32(options.seed ?? 1);
  const values = set.x.dataSync() as Float32Array;
  for (const corruption of options.corruptions ?? []) {
    const corrupted = tf.tensor(
      corruption.apply(values, set.x.shape as ImageShape, split.inputRange, random),
      set.x.shape,
    );
    corruptions.push({
      name: corruption.name,
      falsePositive: flaggedRates(
        detect(pipeline, stage.name, detectors, corrupted, batchSize).pValues,
        options.alpha,
      ),
    });
    corrupted.dispose();
    options.onProgress?.("corruptions", corruptions.length, options.corruptions!.length);
  }

  const pool = Array.from(set.labels.keys()).filter((i) => bare[i] === set.labels[i]);
  const rows: DetectionRow[] = [];
  for (const spec of specs) {
    const adversarial = await attackAll(split, set, pool, spec, {
      batchSize,
      onProgress: options.onProgress,
    });
    try {
      const m = adversarial.labels.length;
      const row: DetectionRow = {
        attack: spec.attack.name,
        domain: (spec.domain ?? MODEL_INPUT_DOMAIN).name,
        budget: spec.budget.label ?? `${spec.attack.norm} ${spec.budget.epsilon}`,
        budgetSource: spec.budget.source ?? "custom",
        attacked: pool.length,
        adversarial: m,
        asr: pool.length === 0 ? NaN : m / pool.length,
        detection: {},
        auc: {},
        // Failed attacks leave a correctly classified input: accepted and correct, or rejected.
        rejectedOrCorrect: pool.length === 0 ? NaN : (pool.length - m) / pool.length,
      };
      if (m > 0) {
        const found = detect(pipeline, stage.name, detectors, adversarial.x, batchSize);
        row.detection = flaggedRates(found.pValues, options.alpha);
        row.auc = Object.fromEntries(
          Object.keys(found.scores).map((d) => [d, rocAuc(benign.scores[d], found.scores[d])]),
        );
        row.rejectedOrCorrect += row.detection.combined.count / pool.length;
      }
      rows.push(row);
    } finally {
      adversarial.x.dispose();
    }
  }
  return {
    alpha: options.alpha,
    detectors,
    description: stage.description,
    benign: {
      examples: n,
      bareAccuracy: agreement(bare, set.labels),
      falsePositive: flaggedRates(benign.pValues, options.alpha),
      acceptedAndCorrect,
    },
    corruptions,
    rows,
  };
}

function rate(r: MeasuredRate | undefined, interval = false): string {
  if (!r || Number.isNaN(r.rate)) return "–";
  const text = `${(r.rate * 100).toFixed(1)}%`;
  return interval
    ? `${text} [${(r.interval[0] * 100).toFixed(1)}, ${(r.interval[1] * 100).toFixed(1)}]`
    : text;
}

/** Renders the detection report as Markdown: false positives first, then detection per attack. */
export function renderDetectionMarkdown(report: DetectionReport, title = "Detection"): string {
  const names = ["combined", BONFERRONI, ...report.detectors];
  const lines = [
    `## ${title}`,
    "",
    `${report.description}. Flagged when the conformal p-value is <= alpha = ${report.alpha}. Rates with their ` +
    "95% Clopper-Pearson interval where a bound is claimed.",
    "",
    `Benign test inputs: ${report.benign.examples}; bare accuracy ${
      (report.benign.bareAccuracy * 100).toFixed(1)
    }%, ` +
    `accepted and correct ${(report.benign.acceptedAndCorrect * 100).toFixed(1)}%.`,
    "",
    `| false-positive rate | ${names.join(" | ")} |`,
    `|---|${names.map(() => "---").join("|")}|`,
    `| benign test split | ${names.map((d) => rate(report.benign.falsePositive[d], true)).join(" | ")} |`,
    ...report.corruptions.map((c) =>
      `| ${c.name} | ${names.map((d) => rate(c.falsePositive[d], true)).join(" | ")} |`
    ),
    "",
    `| attack | domain | budget | ASR | ${
      names.map((d) => `${d} detected / AUC`).join(" | ")
    } | rejected-or-correct |`,
    `|---|---|---|---|${names.map(() => "---").join("|")}|---|`,
  ];
  for (const row of report.rows) {
    const cells = names.map((d) =>
      row.detection[d] ? `${rate(row.detection[d])} / ${row.auc[d]?.toFixed(3) ?? "–"}` : "–"
    );
    lines.push(
      `| ${row.attack} | ${row.domain} | ${row.budget} (${row.budgetSource}) | ${
        (row.asr * 100).toFixed(1)
      }% ` +
        `(${row.adversarial}/${row.attacked}) | ${cells.join(" | ")} | **${
          (row.rejectedOrCorrect * 100).toFixed(1)
        }%** |`,
    );
  }
  return lines.join("\n") + "\n";
}
