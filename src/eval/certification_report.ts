/**
 * The certification report as Markdown: per noise level, certified accuracy against L2 radius for each
 * variant beside the bare model and the random-noise control, PREDICT's abstention, the cost in forwards,
 * the SmoothAdv check and the L_inf budget each radius covers.
 *
 * @module
 */
import type { VariantCertification } from "./certification.ts";
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
        "SmoothAdv (PGD on the smoothed classifier, EOT over the noise; the weaker / stronger run) against the",
        "certified accuracy on the same examples; `violations`: examples certified at a radius >= epsilon that the",
        "attack moved (must be 0 up to alpha and sampling error); `bare`: the model without smoothing under L2 PGD.",
        "",
        "| variant | L2 epsilon | certified | empirical (weak / strong) | PREDICT under attack | violations | bare under PGD |",
        "|---|---|---|---|---|---|---|",
      );
      for (const v of withEmpirical) {
        for (const e of v.empirical!) {
          lines.push(
            `| ${v.name} | ${e.epsilon} | ${pct(e.certifiedAccuracy)} | ${pct(e.empiricalAccuracy)} / ${
              pct(e.strongerEmpiricalAccuracy)
            } | ${pct(e.predictAccuracy)} | ${e.violations} | ${pct(e.bareAccuracy)} |`,
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
