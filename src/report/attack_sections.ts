/**
 * The report's sections on attacks against the defenses: DSR per attack per defense (the paper's Fig. 4),
 * one chart per protocol (honest, then each labelled alternative such as paper-oracle), the detection
 * rate per attack, and DSR against the perturbation size where one attack ran at several budgets (Fig. 5).
 * Every defense's bar or line stands beside its random-noise control (and its own control where it has one).
 *
 * @module
 */
import type { DetectionReport } from "../eval/detection.ts";
import type { AttackRow, DefenseInfo, EvalReport } from "../eval/harness.ts";
import { verdict } from "../eval/report.ts";
import { type BarSeries, renderBarChart } from "./bar_chart.ts";
import {
  attackLabel,
  budgetList,
  controlKeys,
  describeRun,
  HONEST,
  lineKeys,
  percent,
  sourceName,
} from "./captions.ts";
import type { EvalInput } from "./inputs.ts";
import { type LineSeries, renderLineChart } from "./line_chart.ts";
import type { Block, Figure, Section } from "./page.ts";
import { colourAt, isValue, shortNumber } from "./svg.ts";
import type { Table } from "./table.ts";

type Protocol = DefenseInfo["protocols"][number];

/** The labelled alternative protocols that some row of `report` has a value for, in order of appearance. */
function alternativeProtocols(report: EvalReport): Protocol[] {
  const all = new Map<string, Protocol>();
  for (const d of report.defenses) for (const p of d.protocols) if (!all.has(p.name)) all.set(p.name, p);
  return [...all.values()].filter((p) =>
    report.rows.some((r) => Object.values(r.defenses).some((s) => isValue(s?.protocols?.[p.name])))
  );
}

function protocolText(protocol: Protocol | undefined): string {
  if (!protocol) return HONEST;
  const oracle = protocol.usesTruth
    ? " It reads true labels and benign twins: an oracle, not a deployable defense."
    : "";
  return `Protocol ${protocol.name}: ${protocol.description}.${oracle} Controls are those of the honest protocol.`;
}

function controlText(defenses: DefenseInfo[], report: EvalReport): string {
  const own = defenses.filter((d) => d.control).map((d) => `${d.name}: ${d.control}`);
  return "Controls beside each defense: the random-noise control (light bar: Gaussian noise of the same L2 norm " +
    "as that defense's change, same examples)" +
    (own.length ? `; its own control (outlined bar; ${own.join(", ")})` : "") +
    `; the bare model, whose DSR is 0 by construction and whose benign accuracy is ${
      percent(report.benign.accuracy)
    }.`;
}

function dsrFigure(input: EvalInput, report: EvalReport, protocol?: Protocol): Figure | undefined {
  const defenses = protocol
    ? report.defenses.filter((d) => d.protocols.some((p) => p.name === protocol.name))
    : report.defenses;
  if (defenses.length === 0 || report.rows.length === 0) return undefined;
  const measured = protocol ? protocol.name : "DSR";
  const series: BarSeries[] = defenses.flatMap((d) => {
    const colour = colourAt(report.defenses.indexOf(d));
    return [
      { name: `${d.name} ${measured}`, colour },
      { name: `${d.name} random-noise control`, colour, mark: "light" as const },
      ...(d.control ? [{ name: `${d.name} own control`, colour, mark: "outline" as const }] : []),
    ];
  });
  const groups = report.rows.map((row) => ({
    label: attackLabel(row),
    values: defenses.flatMap((d) => {
      const score = row.defenses[d.name];
      const value = protocol ? score?.protocols?.[protocol.name] : score?.dsr;
      return [value, score?.randomNoise, ...(d.control ? [score?.ownControl] : [])];
    }),
  }));
  const name = protocol
    ? `${protocol.name} protocol${protocol.usesTruth ? " (oracle, uses true labels)" : ""}`
    : "honest protocol";
  const title = `DSR per attack per defense, ${name}`;
  const source = sourceName(input.path);
  return {
    key: `dsr-${protocol?.name ?? "honest"}-${source}`,
    title,
    svg: renderBarChart({
      title,
      description:
        `Grouped bars: for each attack and budget, each defense's DSR beside its controls. ${source}.`,
      yLabel: `DSR (${measured})`,
      xLabel: "attack and budget",
      series,
      groups,
      legend: [
        ...defenses.map((d) => ({
          label: d.name,
          colour: colourAt(report.defenses.indexOf(d)),
          mark: "bar" as const,
        })),
        ...controlKeys(defenses.some((d) => d.control)),
      ],
      max: 1,
      format: percent,
    }),
    caption:
      `${
        protocolText(protocol)
      } DSR = adversarial examples classified correctly after defense / adversarial ` +
      `examples. ${describeRun(input.meta)}. Budgets: ${budgetList(report.rows)}. ${
        controlText(defenses, report)
      } ` +
      `Source: ${source}.`,
  };
}

function dsrTable(input: EvalInput, report: EvalReport): Table {
  const protocols = alternativeProtocols(report);
  return {
    caption:
      `DSR per attack and defense with its controls (${sourceName(input.path)}). Verdict: the DSR's margin ` +
      "over the better of its controls (2 points needed).",
    header: [
      "attack",
      "budget",
      "ASR (adversarial / attacked)",
      "defense",
      "DSR (honest)",
      "random-noise control",
      "own control",
      ...protocols.map((p) => `${p.name}${p.usesTruth ? " (oracle)" : ""}`),
      "verdict",
    ],
    rows: report.rows.flatMap((row) =>
      report.defenses.map((d) => {
        const score = row.defenses[d.name];
        return [
          row.domain === "input" ? row.attack : `${row.attack} (${row.domain})`,
          `${row.budget} (${row.budgetSource})`,
          `${percent(row.asr)} (${row.adversarial}/${row.attacked})`,
          d.name,
          percent(score?.dsr),
          percent(score?.randomNoise),
          percent(score?.ownControl),
          ...protocols.map((p) => percent(score?.protocols?.[p.name])),
          verdict(score),
        ];
      })
    ),
  };
}

/** Section "DSR per attack per defense" (Fig. 4): per evaluation, a chart per protocol and the table. */
export function dsrSection(inputs: readonly EvalInput[]): Section {
  const blocks: Block[] = [];
  for (const input of inputs) {
    const report = input.report;
    if (!report || report.rows.length === 0) continue;
    const figures = [undefined, ...alternativeProtocols(report)].map((p) => dsrFigure(input, report, p));
    blocks.push({
      source: sourceName(input.path),
      figures: figures.filter((f): f is Figure => f !== undefined),
      tables: [dsrTable(input, report)],
    });
  }
  return {
    id: "dsr",
    heading: "Defense success rate per attack (Fig. 4)",
    intro:
      "DSR = adversarial examples (those that fool the bare model) classified correctly after defense / " +
      "adversarial examples. Every defense is drawn beside its controls: it is only worth its margin over them. " +
      "Honest and labelled alternative protocols are separate charts.",
    blocks,
  };
}

function detectionNames(report: DetectionReport): string[] {
  return [...new Set(["combined", ...Object.keys(report.benign.falsePositive), ...report.detectors])];
}

function detectionBlock(input: EvalInput, report: DetectionReport): Block {
  const names = detectionNames(report);
  const source = sourceName(input.path);
  const title = `Inputs flagged per attack (detection at alpha = ${report.alpha})`;
  const groups = [
    {
      label: "benign test inputs\n(false positives)",
      values: names.map((n) => report.benign.falsePositive[n]?.rate),
    },
    ...report.corruptions.map((c) => ({
      label: `${c.name}\n(false positives)`,
      values: names.map((n) => c.falsePositive[n]?.rate),
    })),
    ...report.rows.map((row) => ({
      label: attackLabel(row),
      values: names.map((n) => row.detection[n]?.rate),
    })),
  ];
  const rows = report.rows.map((r) =>
    `${r.attack} at ${r.budget} (${r.budgetSource}): ${r.adversarial} adversarial of ${r.attacked} attacked`
  );
  const figure: Figure = {
    key: `detection-${source}`,
    title,
    svg: renderBarChart({
      title,
      description:
        `Grouped bars: the fraction of inputs each detector flags, benign controls first. ${source}.`,
      yLabel: "inputs flagged",
      xLabel: "benign controls, then attack and budget",
      series: names.map((name, i) => ({ name, colour: colourAt(i) })),
      groups,
      max: 1,
      format: percent,
    }),
    caption:
      `${report.description}; flagged when the conformal p-value is <= alpha = ${report.alpha}. ${HONEST} ` +
      `${
        describeRun(input.meta)
      }; benign test inputs: ${report.benign.examples}. Controls: the first groups are ` +
      `benign and corrupted inputs (their flagged rate is the false-positive rate, expected near alpha); bare ` +
      `accuracy ${percent(report.benign.bareAccuracy)}, benign accepted-and-correct ` +
      `${percent(report.benign.acceptedAndCorrect)}. Budgets: ${
        rows.join("; ") || "no attacks in this run"
      }. ` +
      `Source: ${source}.`,
  };
  const table: Table = {
    caption:
      `Detection per attack (${source}): detected rate with its 95% Clopper-Pearson interval, ROC AUC ` +
      "against benign scores, and rejected-or-correct (flagged, or accepted and classified correctly).",
    header: [
      "attack",
      "budget",
      "ASR (adversarial / attacked)",
      ...names.map((n) => `${n} detected / AUC`),
      "rejected-or-correct",
    ],
    rows: report.rows.map((row) => [
      row.domain === "input" ? row.attack : `${row.attack} (${row.domain})`,
      `${row.budget} (${row.budgetSource})`,
      `${percent(row.asr)} (${row.adversarial}/${row.attacked})`,
      ...names.map((n) => {
        const rate = row.detection[n];
        if (!rate) return "–";
        return `${percent(rate.rate)} [${percent(rate.interval[0])}, ${percent(rate.interval[1])}] / ${
          shortNumber(row.auc[n])
        }`;
      }),
      percent(row.rejectedOrCorrect),
    ]),
  };
  return { source, figures: [figure], tables: report.rows.length > 0 ? [table] : [] };
}

/** Section "Detection rate per attack": per evaluation with a detection report, its chart and table. */
export function detectionSection(inputs: readonly EvalInput[]): Section {
  return {
    id: "detection",
    heading: "Detection rate per attack",
    intro: "Inputs the calibrated detection flags: benign and corrupted inputs first (false positives, the " +
      "control), then the adversarial examples of each attack.",
    blocks: inputs.flatMap((input) => input.detection ? [detectionBlock(input, input.detection)] : []),
  };
}

/** Rows of one attack in one domain and norm, one per distinct numeric budget, in increasing budget. */
function budgetSeries(rows: readonly AttackRow[]): AttackRow[][] {
  const byAttack = new Map<string, Map<number, AttackRow>>();
  for (const row of rows.filter((r) => isValue(r.epsilon))) {
    const key = `${row.attack}|${row.domain}|${row.norm}`;
    const budgets = byAttack.get(key) ?? new Map<number, AttackRow>();
    if (!budgets.has(row.epsilon)) budgets.set(row.epsilon, row);
    byAttack.set(key, budgets);
  }
  return [...byAttack.values()].filter((b) => b.size > 1).map((b) =>
    [...b.values()].sort((x, y) => x.epsilon - y.epsilon)
  );
}

function budgetFigure(input: EvalInput, report: EvalReport, rows: AttackRow[]): Figure {
  const [first] = rows;
  const where = first.domain === "input" ? "model input" : first.domain;
  const title = `DSR against perturbation size: ${first.attack} (${where}, ${first.norm})`;
  const source = sourceName(input.path);
  const series: LineSeries[] = report.defenses.flatMap((d, i) => [
    {
      name: `${d.name} DSR`,
      colour: colourAt(i),
      points: rows.map((r) => ({ x: r.epsilon, y: r.defenses[d.name]?.dsr })),
    },
    {
      name: `${d.name} random-noise control`,
      colour: colourAt(i),
      dashed: true,
      points: rows.map((r) => ({ x: r.epsilon, y: r.defenses[d.name]?.randomNoise })),
    },
  ]);
  return {
    key: `budget-${first.attack}-${first.domain}-${source}`,
    title,
    svg: renderLineChart({
      title,
      description:
        `Lines: each defense's DSR (solid) and random-noise control (dashed) at each budget. ${source}.`,
      xLabel: `budget epsilon (${first.norm}, ${where})`,
      yLabel: "DSR (honest)",
      panels: [{ series }],
      legend: [
        ...report.defenses.map((d, i) => ({ label: d.name, colour: colourAt(i), mark: "line" as const })),
        ...lineKeys(),
      ],
      xTicks: rows.map((r) => r.epsilon),
      max: 1,
      format: percent,
    }),
    caption:
      `${HONEST} ${describeRun(input.meta)}. Budgets: ${
        budgetList(rows)
      }. Controls: each defense's random-noise control (dashed, same colour); the bare model's ` +
      `DSR is 0 by construction. Source: ${source}.`,
  };
}

/** Section "DSR against perturbation size" (Fig. 5): per attack run at several numeric budgets. */
export function budgetSection(inputs: readonly EvalInput[]): Section {
  const blocks: Block[] = [];
  for (const input of inputs) {
    const report = input.report;
    const figures = report ? budgetSeries(report.rows).map((rows) => budgetFigure(input, report, rows)) : [];
    if (figures.length > 0) blocks.push({ source: sourceName(input.path), figures, tables: [] });
  }
  return {
    id: "budget",
    heading: "DSR against perturbation size (Fig. 5)",
    intro:
      "DSR (honest protocol) as the attack's budget grows, for each attack evaluated at several numeric " +
      "budgets; the dashed line of the same colour is that defense's random-noise control.",
    blocks,
  };
}
