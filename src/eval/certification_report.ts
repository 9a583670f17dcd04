/**
 * The certification report as Markdown: per noise level, certified accuracy against L2 radius for each
 * variant beside the bare model and the random-noise control, PREDICT's abstention, the cost in forwards,
 * the SmoothAdv check and the L_inf budget each radius covers; and its curves as a chart
 * (`src/report/line_chart.ts`).
 *
 * @module
 */
import type { EmpiricalAtRadius, VariantCertification } from "./certification.ts";
import { type LineChartSpec, renderLineChart } from "../report/line_chart.ts";
import { colourAt } from "../report/svg.ts";
import { pct } from "./report.ts";

/** A whole certification run. */
export interface CertificationReport {
  title: string;
  data: string;
  examples: number;
  n0: number;
  n: number;
  alpha: number;
  /** Values per input, for the L_inf equivalent of a radius (r / sqrt(d)). */
  inputValues: number;
  radii: number[];
  /** Variants per sigma, in order. */
  bySigma: { sigma: number; variants: VariantCertification[] }[];
  seconds: number;
  createdAt: string;
}

/**
 * Several runs' reports as one (runs split by sigma or by variant): the variants of a sigma are joined in
 * the order given. The runs must share the data, the examples, n0, n, alpha and the radii.
 */
export function mergeCertificationReports(reports: readonly CertificationReport[]): CertificationReport {
  if (reports.length === 0) throw new RangeError("nothing to merge");
  const [first] = reports;
  const key = (r: CertificationReport) =>
    JSON.stringify([r.examples, r.n0, r.n, r.alpha, r.radii, r.inputValues]);
  const other = reports.find((r) => key(r) !== key(first));
  if (other) {
    throw new RangeError(
      `runs differ in examples, n0, n, alpha or radii: ${key(first)} vs ${key(other)}; merge like with like`,
    );
  }
  const bySigma = new Map<number, CertificationReport["bySigma"][number]["variants"]>();
  for (const report of reports) {
    for (const { sigma, variants } of report.bySigma) {
      bySigma.set(sigma, [...(bySigma.get(sigma) ?? []), ...variants]);
    }
  }
  return {
    ...first,
    data: [...new Set(reports.map((r) => r.data))].join("; "),
    bySigma: [...bySigma.entries()].sort((a, b) => a[0] - b[0]).map(([sigma, variants]) => ({
      sigma,
      variants,
    })),
    seconds: reports.reduce((sum, r) => sum + r.seconds, 0),
    createdAt: reports.map((r) => r.createdAt).sort().at(-1)!,
  };
}

/** The worst case of SmoothAdv's two runs: per example when the run recorded it, else the worse run. */
export function worstEmpirical(e: EmpiricalAtRadius): number {
  return e.worstEmpiricalAccuracy ?? Math.min(e.empiricalAccuracy, e.strongerEmpiricalAccuracy);
}

/** Renders {@link CertificationReport} as Markdown. */
export function renderCertificationMarkdown(report: CertificationReport): string {
  const lines = [
    `# ${report.title}`,
    "",
    `${report.data}, ${report.examples} test examples; CERTIFY with n0 = ${report.n0}, n = ${report.n}, ` +
    `alpha = ${report.alpha} (Cohen et al. 2019). Certified accuracy at r: the smoothed classifier answers the ` +
    `true class with a certified L2 radius >= r. "bare" is the same model without smoothing on clean inputs; ` +
    `"noise control" the base classifier on one noisy copy at sigma. ${report.seconds.toFixed(0)} s.`,
    "",
  ];
  for (const { sigma, variants } of report.bySigma) {
    lines.push(`## sigma = ${sigma}`, "");
    lines.push(
      `| variant | bare | noise control | PREDICT acc. / abstain | ${
        report.radii.map((r) => `r = ${r}`).join(" | ")
      } | CERTIFY abstain | max r | s per CERTIFY |`,
      `|---|---|---|---|${report.radii.map(() => "---|").join("")}---|---|---|`,
    );
    for (const v of variants) {
      lines.push(
        `| ${v.name} | ${pct(v.bareAccuracy)} | ${pct(v.noisyBaseAccuracy)} | ${pct(v.predictAccuracy)} / ${
          pct(v.predictAbstentionRate)
        } | ${v.certified.map((c) => c.radius <= v.maxRadius ? pct(c.accuracy) : "–").join(" | ")} | ${
          pct(v.abstentionRate)
        } | ${v.maxRadius.toFixed(2)} | ${v.certifySecondsPerExample.toFixed(2)} |`,
      );
    }
    lines.push("");
    const withEmpirical = variants.filter((v) => v.empirical?.length);
    if (withEmpirical.length > 0) {
      lines.push(
        "SmoothAdv (PGD on the smoothed classifier, EOT over the noise) against the certified accuracy on the same",
        "examples: the weaker run, the stronger run (twice the steps and noise draws) and the worst case (per",
        "example where recorded, else the worse run), which must not fall below the certified figure;",
        "`violations`: examples certified at a radius >= epsilon that an attack moved (0 up to alpha and the",
        "Monte Carlo error of PREDICT's plurality); `bare`: the model without smoothing under L2 PGD (50 steps).",
        "",
        "| variant | L2 epsilon | certified | empirical: weak / strong / worst | PREDICT under attack | violations | bare under PGD |",
        "|---|---|---|---|---|---|---|",
      );
      for (const v of withEmpirical) {
        for (const e of v.empirical!) {
          lines.push(
            `| ${v.name} | ${e.epsilon} | ${pct(e.certifiedAccuracy)} | ${pct(e.empiricalAccuracy)} / ${
              pct(e.strongerEmpiricalAccuracy)
            } / **${pct(worstEmpirical(e))}** | ${pct(e.predictAccuracy)} | ${e.violations} | ${
              pct(e.bareAccuracy)
            } |`,
          );
        }
      }
      lines.push("");
    }
    for (const v of variants) for (const w of v.warnings) lines.push(`- warning (${v.name}): ${w}`);
  }
  const d = report.inputValues;
  lines.push(
    "## What an L2 radius covers in L_inf",
    "",
    `An L_inf perturbation of size e has L2 norm at most e * sqrt(d), d = ${d}; so a certified L2 radius r covers ` +
      `every L_inf perturbation up to r / sqrt(d):`,
    "",
    `| L2 radius | ${report.radii.filter((r) => r > 0).join(" | ")} |`,
    `|---|${report.radii.filter((r) => r > 0).map(() => "---|").join("")}`,
    `| L_inf covered | ${
      report.radii.filter((r) => r > 0).map((r) => (r / Math.sqrt(d)).toFixed(4)).join(" | ")
    } |`,
    "",
  );
  return lines.join("\n");
}

/**
 * The certified-accuracy curves as a line chart (Cohen et al.'s figure): one panel per sigma, certified
 * accuracy (0-100%) against L2 radius, one line per variant (the same colour in every panel), each stopped
 * at the largest radius it can certify.
 */
export function certificationChart(report: CertificationReport): LineChartSpec {
  const names = [...new Set(report.bySigma.flatMap((s) => s.variants.map((v) => v.name)))];
  return {
    title: report.title,
    description: `Certified accuracy against L2 radius, one panel per sigma; ${report.data}.`,
    xLabel: "L2 radius",
    yLabel: "certified accuracy",
    panels: report.bySigma.map(({ sigma, variants }) => ({
      title: `sigma = ${sigma}`,
      series: variants.map((v) => ({
        name: v.name,
        colour: colourAt(names.indexOf(v.name)),
        points: v.certified.filter((c) => c.radius <= v.maxRadius).map((c) => ({
          x: c.radius,
          y: c.accuracy,
        })),
      })),
    })),
    xDomain: [Math.min(0, ...report.radii), Math.max(...report.radii)],
    xTicks: report.radii,
    max: 1,
    format: pct,
  };
}

/** The certified-accuracy curves ({@link certificationChart}) as an SVG document. */
export function renderCertificationSvg(report: CertificationReport): string {
  return renderLineChart(certificationChart(report));
}
