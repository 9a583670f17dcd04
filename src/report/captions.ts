/**
 * The wording the report's captions and tables share: where a figure comes from (file, model, data, n),
 * how an attack's budget is named, rates written the same everywhere, and the colour of each defense.
 *
 * @module
 */
import { basename } from "node:path";
import type { AttackRow } from "../eval/harness.ts";
import { pct } from "../eval/report.ts";
import type { EvalMeta } from "./inputs.ts";
import { isValue, type LegendItem } from "./svg.ts";

/** A rate as a percentage with one decimal; "–" when missing (null in JSON, NaN, undefined). */
export function percent(value: unknown): string {
  return isValue(value) ? pct(value) : "–";
}

/** The file an input came from, as captions name it (`eval.json` keeps its folder: `run1/eval.json`). */
export function sourceName(path: string): string {
  const parts = path.split(/[\\/]/).filter((p) => p.length > 0);
  return /^(eval|certify)\.json/.test(basename(path)) ? parts.slice(-2).join("/") : parts.at(-1) ?? path;
}

/** What an evaluation ran on, from its `meta`, as a sentence: model (and hash), data, n, seed, backend. */
export function describeRun(meta: EvalMeta): string {
  const parts = [
    meta.modelDir ? `model ${meta.modelDir}${meta.modelHash ? ` (${meta.modelHash.slice(0, 12)})` : ""}` : "",
    meta.data ? `data ${meta.data}` : "",
    meta.n !== undefined ? `n = ${meta.n} test examples` : "",
    meta.seed !== undefined ? `seed ${meta.seed}` : "",
    meta.backend ? `backend ${meta.backend}` : "",
  ];
  const text = parts.filter((p) => p.length > 0).join(", ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A budget short enough for an axis label: parentheticals dropped, a long source reference cut to its value. */
export function budgetShort(row: Pick<AttackRow, "budget" | "budgetSource">): string {
  const plain = row.budget.replace(/\s*\([^)]*\)/g, "").trim();
  const colon = plain.lastIndexOf(":");
  return colon < 0 ? plain : `${row.budgetSource} ${plain.slice(colon + 1).trim()}`;
}

/** An attack row's label: the attack (and its domain when not the model input), the budget below. */
export function attackLabel(row: Pick<AttackRow, "attack" | "domain" | "budget" | "budgetSource">): string {
  const domain = row.domain === "input" ? "" : ` (${row.domain})`;
  return `${row.attack}${domain}\n${budgetShort(row)}`;
}

/** Every row's full budget with its source and how many adversarial examples it made of how many attacked. */
export function budgetList(rows: readonly AttackRow[]): string {
  return rows.map((r) =>
    `${r.attack}${r.domain === "input" ? "" : ` (${r.domain})`} at ${r.budget} (${r.budgetSource}): ` +
    `${r.adversarial} adversarial of ${r.attacked} attacked`
  ).join("; ");
}

/** What the honest protocol means, in every caption that shows it. */
export const HONEST =
  "Protocol honest: the defense sees the input only (no true label, no benign twin); candidates and " +
  "strength come from the calibration split, disjoint from the test split.";

const KEY_COLOUR = "#999999";

/** The legend keys telling a measured bar from its controls. */
export function controlKeys(own: boolean): LegendItem[] {
  return [
    { label: "measured (solid)", colour: KEY_COLOUR, mark: "bar" },
    { label: "random-noise control (light)", colour: KEY_COLOUR, mark: "light" },
    ...(own ? [{ label: "own control (outlined)", colour: KEY_COLOUR, mark: "outline" as const }] : []),
  ];
}

/** The legend keys telling a measured line from its random-noise control. */
export function lineKeys(): LegendItem[] {
  return [
    { label: "DSR (solid)", colour: KEY_COLOUR, mark: "line" },
    { label: "random-noise control (dashed)", colour: KEY_COLOUR, mark: "dashed" },
  ];
}
