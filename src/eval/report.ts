/**
 * Readable reports of an evaluation: one Markdown table with a column group per defense (DSR, its
 * random-noise control, its own control where it has one, benign accuracy after defense, ms per example),
 * a benign summary, and a verdict per attack saying which defenses beat their controls.
 *
 * @module
 */
import type { AttackRow, DefenseScore, EvalReport } from "./harness.ts";

/** A rate as a percentage with one decimal; "–" when missing or NaN. */
export function pct(value: number | undefined): string {
  return value === undefined || Number.isNaN(value) ? "–" : `${(value * 100).toFixed(1)}%`;
}

/** A number with `digits` decimals; "–" when not finite. */
export function num(value: number | undefined, digits: number): string {
  return value !== undefined && Number.isFinite(value) ? value.toFixed(digits) : "–";
}

/** Percentage points by which a defense's DSR exceeds the better of its controls. */
export function marginOverControls(score: DefenseScore): number {
  const control = Math.max(score.randomNoise, score.ownControl ?? -Infinity);
  return (score.dsr - control) * 100;
}

/** "beats controls" when the DSR is at least `minPoints` above every control of the defense. */
export function verdict(score: DefenseScore | undefined, minPoints = 2): string {
  if (score === undefined) return "no adversarial examples";
  const margin = marginOverControls(score);
  if (!Number.isFinite(margin)) return "–";
  if (margin >= minPoints) return `beats controls by ${margin.toFixed(1)} pp`;
  if (margin <= -minPoints) return `WORSE than a control by ${(-margin).toFixed(1)} pp`;
  return "no better than the controls";
}

function rowVerdict(row: AttackRow, names: string[]): string {
  if (row.adversarial === 0) return "no adversarial examples";
  const winners = names.filter((n) => row.defenses[n] && marginOverControls(row.defenses[n]) >= 2);
  if (winners.length === 0) return "none beats its controls";
  return winners.length === 1
    ? `${winners[0]} beats its controls`
    : `${winners.join(", ")} beat their controls`;
}

function perturbation(row: AttackRow): string {
  const entries = Object.entries(row.perturbation);
  return entries.length === 0 ? "" : ` [${entries.map(([k, v]) => `${k} ${num(v, 1)}`).join(", ")}]`;
}

/** Renders the report as Markdown. */
export function renderMarkdown(report: EvalReport, title = "Defense evaluation"): string {
  const { benign } = report;
  const names = report.defenses.map((d) => d.name);
  const info = (name: string) => report.defenses.find((d) => d.name === name)!;
  // A protocol gets a column only where it was run (paper-oracle only when asked for).
  const shownProtocols = (name: string) =>
    info(name).protocols.filter((p) =>
      report.rows.some((r) => r.defenses[name]?.protocols[p.name] !== undefined)
    );
  const group = (name: string) => {
    const shown = shownProtocols(name);
    return [
      `${name} DSR`,
      `${name} noise ctrl`,
      ...(info(name).control ? [`${name} own ctrl`] : []),
      ...shown.map((p) => `${name} ${p.name}${p.usesTruth ? " (uses true labels)" : ""}`),
      `${name} benign acc.`,
      `${name} ms`,
    ];
  };
  const header = ["attack", "domain", "budget", "ASR", ...names.flatMap(group), "verdict"];
  const lines = [
    `## ${title}`,
    "",
    "DSR = adversarial examples classified correctly after defense / adversarial examples, `honest` protocol " +
    "(no true label, no benign twin). Beside each DSR: the random-noise control (Gaussian noise of the same L2 " +
    "norm as that defense's own change, same examples), the defense's own control where it makes a choice " +
    "(drawn at random instead), benign accuracy after that defense, and its ms per adversarial example.",
    "",
    `Benign examples: ${benign.examples}; bare accuracy **${pct(benign.accuracy)}**, ` +
    `${num(benign.msPerExampleBare, 3)} ms per example.`,
    "",
    "| defense | benign acc. after defense | labels flipped | ms per example | settings |",
    "|---|---|---|---|---|",
    `| none | ${pct(benign.accuracy)} | 0.0% | ${num(benign.msPerExampleBare, 3)} | – |`,
    ...report.defenses.map((d) => {
      const b = benign.defenses[d.name];
      const settings = d.stages.map((s) => s.description).join("; ");
      return `| ${d.name} | ${pct(b.accuracy)} | ${pct(b.labelFlips)} | ${
        num(b.msPerExample, 3)
      } | ${settings} |`;
    }),
    "",
    `| ${header.join(" | ")} |`,
    `|${header.map(() => "---").join("|")}|`,
  ];
  for (const row of report.rows) {
    const cells = names.flatMap((name) => {
      const score = row.defenses[name];
      return [
        `**${pct(score?.dsr)}**`,
        pct(score?.randomNoise),
        ...(info(name).control ? [pct(score?.ownControl)] : []),
        ...shownProtocols(name).map((p) => pct(score?.protocols[p.name])),
        pct(benign.defenses[name].accuracy),
        num(score?.msPerExample, 3),
      ];
    });
    lines.push(
      `| ${row.attack} | ${row.domain} | ${row.budget} (${row.budgetSource})${perturbation(row)} | ${
        pct(row.asr)
      } (${row.adversarial}/${row.attacked}) | ${cells.join(" | ")} | ${rowVerdict(row, names)} |`,
    );
  }
  const controls = report.defenses.filter((d) => d.control).map((d) => `${d.name}: ${d.control}`);
  const protocols = report.defenses.flatMap((d) =>
    d.protocols.map((p) => `${d.name} ${p.name}: ${p.description}`)
  );
  if (controls.length > 0) lines.push("", `Own controls: ${controls.join("; ")}.`);
  if (protocols.length > 0) lines.push("", `Other protocols: ${protocols.join("; ")}.`);
  return lines.join("\n") + "\n";
}
