/**
 * Readable reports of an evaluation: a Markdown table whose every DSR stands beside benign accuracy after
 * defense and both controls, plus a one-line verdict per row.
 *
 * @module
 */
import type { AttackRow, EvalReport } from "./harness.ts";

/** A rate as a percentage with one decimal; "–" when missing or NaN. */
export function pct(value: number | undefined): string {
  return value === undefined || Number.isNaN(value) ? "–" : `${(value * 100).toFixed(1)}%`;
}

/** A number with `digits` decimals; "–" when not finite. */
export function num(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : "–";
}

/** Percentage points by which the honest DSR exceeds the better of the two controls. */
export function marginOverControls(row: AttackRow): number {
  const honest = row.dsr.honest ?? NaN;
  return (honest - Math.max(row.controls.randomNoise, row.controls.randomCandidate)) * 100;
}

/** "beats controls" when the honest DSR is at least `minPoints` above both controls. */
export function verdict(row: AttackRow, minPoints = 2): string {
  if (row.adversarial === 0) return "no adversarial examples";
  const margin = marginOverControls(row);
  if (!Number.isFinite(margin)) return "–";
  if (margin >= minPoints) return `beats controls by ${margin.toFixed(1)} pp`;
  if (margin <= -minPoints) return `WORSE than a control by ${(-margin).toFixed(1)} pp`;
  return "no better than the controls";
}

/** Renders the report as Markdown. */
export function renderMarkdown(report: EvalReport, title = "NIP evaluation"): string {
  const { benign, profile } = report;
  const hasOracle = report.rows.some((r) => r.dsr["paper-oracle"] !== undefined);
  const lines = [
    `## ${title}`,
    "",
    `Profile: layer \`${profile.layer}\`, ${profile.candidates} candidates, key \`${profile.keyMode}\`, ` +
    `scale \`${profile.scaleRule}\` with strength ${profile.strength}.`,
    "",
    `Benign test examples: ${benign.examples}; accuracy ${pct(benign.accuracy)} bare, ` +
    `**${pct(benign.accuracyAfterDefense)} after defense** (labels flipped by the defense: ${
      pct(benign.labelFlips)
    }); ` +
    `${num(benign.msPerExampleDefense, 3)} ms/example defended vs ${
      num(benign.msPerExampleBare, 3)
    } ms bare.`,
    "",
    "DSR = adversarial examples classified correctly after defense / adversarial examples. The `honest` protocol " +
    "uses no label and no benign twin; controls use the same protocol and the same examples.",
    "",
    `| attack | budget | ASR | DSR honest | ${hasOracle ? "DSR paper-oracle (uses true labels) | " : ""}` +
    "random-noise control | random-candidate control | benign acc. after defense | DSR NIP_n | PSNR dB | TKNC | " +
    "change L2 / L_inf | verdict |",
    `|---|---|---|---|${hasOracle ? "---|" : ""}---|---|---|---|---|---|---|---|`,
  ];
  for (const row of report.rows) {
    lines.push(
      `| ${row.attack} | ${row.budget} (${row.budgetSource}) | ${
        pct(row.asr)
      } (${row.adversarial}/${row.attacked}) | ` +
        `**${pct(row.dsr.honest)}** | ${hasOracle ? `${pct(row.dsr["paper-oracle"])} | ` : ""}` +
        `${pct(row.controls.randomNoise)} | ${pct(row.controls.randomCandidate)} | ${
          pct(benign.accuracyAfterDefense)
        } | ` +
        `${pct(row.dsrNipN)} | ${num(row.psnr, 1)} | ${num(row.tknc, 2)} | ` +
        `${num(row.defenseChange.l2, 2)} / ${num(row.defenseChange.linf, 2)} | ${verdict(row)} |`,
    );
  }
  return lines.join("\n") + "\n";
}
