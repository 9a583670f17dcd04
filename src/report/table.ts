/**
 * A table rendered the same way into HTML and Markdown: a caption, a header row and rows of plain-text
 * cells (escaped for each format).
 *
 * @module
 */
import { escapeXml } from "./svg.ts";

/** A table of plain-text cells. */
export interface Table {
  caption: string;
  header: string[];
  rows: string[][];
}

/** The table as an HTML `<table>` with its `<caption>`; cells that read as numbers are right-aligned. */
export function renderHtmlTable(table: Table): string {
  const cell = (tag: string, text: string) =>
    `<${tag}${/^[-\d.,%/ –]+$/.test(text) ? ` class="num"` : ""}>${escapeXml(text)}</${tag}>`;
  return [
    "<table>",
    `<caption>${escapeXml(table.caption)}</caption>`,
    `<thead><tr>${table.header.map((h) => cell("th", h)).join("")}</tr></thead>`,
    "<tbody>",
    ...table.rows.map((row) => `<tr>${row.map((c) => cell("td", c)).join("")}</tr>`),
    "</tbody>",
    "</table>",
  ].join("\n");
}

/** The table as Markdown: the caption as a paragraph, then a pipe table (`|` and newlines escaped). */
export function renderMarkdownTable(table: Table): string {
  const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");
  const line = (cells: string[]) => `| ${cells.map(cell).join(" | ")} |`;
  return [
    table.caption,
    "",
    line(table.header),
    `|${table.header.map(() => "---").join("|")}|`,
    ...table.rows.map(line),
  ].join("\n");
}
