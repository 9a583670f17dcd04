/**
 * The certification report as Markdown: per noise level, certified accuracy against L2 radius for each
 * variant beside the bare model and the random-noise control, PREDICT's abstention, the cost in forwards,
 * the SmoothAdv check and the L_inf budget each radius covers.
 *
 * @module
 */
import type { EmpiricalAtRadius, VariantCertification } from "./certification.ts";
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

const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

/**
 * The certified-accuracy curves as an SVG (Cohen et al.'s figure): one panel per sigma, certified accuracy
 * (0-100%) against L2 radius, one line per variant, each stopped at the largest radius it can certify.
 */
export function renderCertificationSvg(report: CertificationReport): string {
  const panelWidth = 320;
  const panelHeight = 220;
  const margin = { left: 44, right: 12, top: 28, bottom: 36 };
  const plotWidth = panelWidth - margin.left - margin.right;
  const plotHeight = panelHeight - margin.top - margin.bottom;
  const maxRadius = Math.max(...report.radii);
  const names = [...new Set(report.bySigma.flatMap((s) => s.variants.map((v) => v.name)))];
  const legendHeight = 18 * names.length + 10;
  const width = panelWidth * Math.max(1, report.bySigma.length);
  const height = panelHeight + legendHeight;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  report.bySigma.forEach(({ sigma, variants }, k) => {
    const x0 = k * panelWidth + margin.left;
    const y0 = margin.top;
    const x = (r: number) => x0 + (r / maxRadius) * plotWidth;
    const y = (a: number) => y0 + (1 - a) * plotHeight;
    parts.push(`<text x="${x0 + plotWidth / 2}" y="16" text-anchor="middle">sigma = ${sigma}</text>`);
    parts.push(
      `<rect x="${x0}" y="${y0}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#999"/>`,
    );
    for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
      parts.push(`<text x="${x0 - 4}" y="${y(tick) + 4}" text-anchor="end">${tick * 100}%</text>`);
      parts.push(`<line x1="${x0}" x2="${x0 + plotWidth}" y1="${y(tick)}" y2="${y(tick)}" stroke="#eee"/>`);
    }
    for (const r of report.radii) {
      parts.push(`<text x="${x(r)}" y="${y0 + plotHeight + 14}" text-anchor="middle">${r}</text>`);
    }
    parts.push(
      `<text x="${x0 + plotWidth / 2}" y="${y0 + plotHeight + 30}" text-anchor="middle">L2 radius</text>`,
    );
    for (const v of variants) {
      const points = v.certified.filter((c) => c.radius <= v.maxRadius)
        .map((c) => `${x(c.radius).toFixed(1)},${y(c.accuracy).toFixed(1)}`);
      const colour = COLOURS[names.indexOf(v.name) % COLOURS.length];
      parts.push(`<polyline points="${points.join(" ")}" fill="none" stroke="${colour}" stroke-width="2"/>`);
    }
  });
  names.forEach((name, i) => {
    const y = panelHeight + 14 + 18 * i;
    const colour = COLOURS[i % COLOURS.length];
    parts.push(
      `<line x1="${margin.left}" x2="${
        margin.left + 24
      }" y1="${y}" y2="${y}" stroke="${colour}" stroke-width="2"/>`,
    );
    parts.push(`<text x="${margin.left + 30}" y="${y + 4}">${escapeXml(name)}</text>`);
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}
