/**
 * The report page: sections of figures (inline SVG with a numbered caption) and tables, assembled into one
 * self-contained HTML file (inline CSS, no scripts, no external resources) and into Markdown that links
 * each chart's SVG file, written beside it.
 *
 * @module
 */
import { escapeXml } from "./svg.ts";
import { renderHtmlTable, renderMarkdownTable, type Table } from "./table.ts";

/** One chart with its caption. */
export interface Figure {
  /** A short name for the chart's file, e.g. `dsr-honest-image-defenses`. */
  key: string;
  title: string;
  svg: string;
  caption: string;
}

/** What one input contributes to a section. */
export interface Block {
  /** The input it comes from (a heading when several inputs contribute). */
  source: string;
  figures: Figure[];
  tables: Table[];
}

/** A section of the report. */
export interface Section {
  id: string;
  heading: string;
  /** What the section's numbers mean. */
  intro: string;
  blocks: Block[];
}

/** A chart's SVG file, named as the Markdown links it. */
export interface ChartFile {
  file: string;
  svg: string;
}

/** The whole report: HTML, Markdown and the SVG files the Markdown links. */
export interface RenderedReport {
  html: string;
  markdown: string;
  charts: ChartFile[];
}

const CSS = `
body { font-family: system-ui, sans-serif; color: #1a1a1a; background: #fafafa; margin: 0; line-height: 1.45; }
main { max-width: 1200px; margin: 0 auto; padding: 1.5rem 2rem 3rem; background: white; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2.5rem; }
h3 { font-size: 1.05rem; color: #333; }
figure { margin: 1.5rem 0; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: .9rem; color: #333; max-width: 70rem; }
table { border-collapse: collapse; margin: 1rem 0 2rem; font-size: .85rem; }
caption { caption-side: top; text-align: left; font-size: .9rem; padding: .3rem 0; max-width: 70rem; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
nav ol { columns: 2; } .meta { color: #555; font-size: .9rem; }
`;

function slug(text: string): string {
  return text.replace(/\.json\b/g, "").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(
    0,
    60,
  );
}

/** An SVG document as an element inside HTML (the HTML parser supplies the namespace). */
function inlineSvg(svg: string): string {
  return svg.replace(/ xmlns="[^"]*"/, "").trim();
}

/**
 * Renders `sections` (empty ones left out) under `title`, after the `preface` paragraphs; figures are
 * numbered in order and their files named `figNN-<key>.svg`.
 */
export function renderPage(title: string, preface: string[], sections: Section[]): RenderedReport {
  const shown = sections.filter((s) => s.blocks.some((b) => b.figures.length + b.tables.length > 0));
  const charts: ChartFile[] = [];
  const html = [
    "<!DOCTYPE html>",
    `<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">`,
    `<title>${escapeXml(title)}</title><style>${CSS}</style></head>`,
    `<body><main>`,
    `<h1>${escapeXml(title)}</h1>`,
    ...preface.map((p) => `<p class="meta">${escapeXml(p)}</p>`),
    `<nav><h2>Contents</h2><ol>${
      shown.map((s) => `<li><a href="#${s.id}">${escapeXml(s.heading)}</a></li>`).join("")
    }</ol></nav>`,
  ];
  const markdown = [`# ${title}`, "", ...preface.flatMap((p) => [p, ""])];
  for (const section of shown) {
    html.push(`<section id="${section.id}">`, `<h2>${escapeXml(section.heading)}</h2>`);
    html.push(`<p>${escapeXml(section.intro)}</p>`);
    markdown.push(`## ${section.heading}`, "", section.intro, "");
    const headed = section.blocks.length > 1;
    for (const block of section.blocks) {
      if (headed) {
        html.push(`<h3>${escapeXml(block.source)}</h3>`);
        markdown.push(`### ${block.source}`, "");
      }
      for (const figure of block.figures) {
        const number = charts.length + 1;
        const file = `fig${String(number).padStart(2, "0")}-${slug(figure.key)}.svg`;
        charts.push({ file, svg: figure.svg });
        html.push(
          `<figure id="figure-${number}">`,
          inlineSvg(figure.svg),
          `<figcaption><strong>Figure ${number}.</strong> ${escapeXml(figure.caption)}</figcaption>`,
          "</figure>",
        );
        markdown.push(
          `![Figure ${number}: ${figure.title.replace(/[[\]]/g, "")}](${file})`,
          "",
          `*Figure ${number}.* ${figure.caption}`,
          "",
        );
      }
      for (const table of block.tables) {
        html.push(renderHtmlTable(table));
        markdown.push(renderMarkdownTable(table), "");
      }
    }
    html.push("</section>");
  }
  html.push("</main></body></html>");
  return { html: html.join("\n") + "\n", markdown: markdown.join("\n").trimEnd() + "\n", charts };
}
