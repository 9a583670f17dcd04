/**
 * `buildReport`: evaluation and certification JSON in, one self-contained HTML page and its Markdown twin
 * out, with the charts as SVG files for the Markdown. Sections come in a fixed order, each only when some
 * input has its data: DSR per attack (Fig. 4), detection, DSR against budget (Fig. 5), benign accuracy
 * (Table 4), time per example (Table 5), adaptive attacks, certified accuracy, sensitivity sweeps.
 *
 * @module
 */
import {
  adaptiveSection,
  benignSection,
  certifiedSection,
  sweepSection,
  timeSection,
} from "./summary_sections.ts";
import { budgetSection, detectionSection, dsrSection } from "./attack_sections.ts";
import { sourceName } from "./captions.ts";
import { type CertifyInput, type EvalInput, recogniseInput } from "./inputs.ts";
import { type RenderedReport, renderPage } from "./page.ts";

/** One input file: where it came from (named in captions and errors) and its parsed JSON. */
export interface ReportSource {
  path: string;
  json: unknown;
}

/** Options of {@link buildReport}. */
export interface BuildOptions {
  title: string;
}

/**
 * Builds the report from `inputs`, recognising each by its fields (see `recogniseInput`; an unrecognised or
 * malformed input is an error naming its file). Returns the HTML, the Markdown and the SVG files it links.
 */
export function buildReport(inputs: readonly ReportSource[], options: BuildOptions): RenderedReport {
  const recognised = inputs.flatMap((i) => recogniseInput(i.path, i.json));
  const evals = recognised.filter((i): i is EvalInput => i.kind === "eval");
  const certs = recognised.filter((i): i is CertifyInput => i.kind === "certify");
  const preface = [
    `Inputs: ${
      recognised.map((i) => `${sourceName(i.path)} (${i.kind === "eval" ? "evaluation" : "certification"})`)
        .join(", ")
    }.`,
    "Every figure is captioned with its protocol, budget, model, n and the controls drawn beside it; the tables " +
    "give the same numbers.",
  ];
  return renderPage(options.title, preface, [
    dsrSection(evals),
    detectionSection(evals),
    budgetSection(evals),
    benignSection(evals),
    timeSection(evals),
    adaptiveSection(evals),
    certifiedSection(certs),
    sweepSection(evals),
  ]);
}
