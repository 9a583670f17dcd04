/**
 * The pieces every hand-built SVG chart shares: escaping, a colour-blind-safe palette, linear scales with
 * round ticks, the document frame with its accessible `<title>` and `<desc>`, a value axis and a legend.
 * Plain strings only; no dependencies.
 *
 * @module
 */

/** Series colours (Okabe-Ito, distinguishable with the common colour-vision deficiencies). */
export const PALETTE = [
  "#0072b2",
  "#d55e00",
  "#009e73",
  "#cc79a7",
  "#e69f00",
  "#56b4e9",
  "#555555",
  "#000000",
];

/** The palette colour of series `i`, cycling. */
export function colourAt(i: number): string {
  return PALETTE[i % PALETTE.length];
}

/** Text made safe for XML/HTML content and double-quoted attribute values. */
export function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll(
    '"',
    "&quot;",
  );
}

/** True for a finite number; `null` (NaN in JSON), `undefined` and NaN are missing values. */
export function isValue(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

/** A coordinate with one decimal, as SVG attributes carry it. */
export function coord(value: number): string {
  return String(Math.round(value * 10) / 10);
}

/** A number with three significant digits (tick labels, budgets); "–" when missing. */
export function shortNumber(value: unknown): string {
  return isValue(value) ? String(Number(value.toPrecision(3))) : "–";
}

/** Maps [d0, d1] linearly onto [r0, r1]; a zero-width domain maps to the middle of the range. */
export function linearScale(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  const span = d1 - d0;
  return (v) => span === 0 ? (r0 + r1) / 2 : r0 + ((v - d0) / span) * (r1 - r0);
}

/** About `count` round tick values (1, 2 or 5 times a power of ten apart) covering [min, max]. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step) {
    ticks.push(Number(t.toPrecision(12)));
  }
  return ticks;
}

/** The top of a value axis for values up to `largest`: 1 for rates (at most 1), else the next round tick. */
export function axisMax(largest: number): number {
  if (largest <= 1) return 1;
  const [first, second] = niceTicks(0, largest);
  const step = second - first;
  return Math.ceil(largest / step) * step;
}

/** The outer frame of a chart. */
export interface Frame {
  width: number;
  height: number;
  /** The chart's accessible name, also drawn at the top. */
  title: string;
  /** A longer text description for assistive technology. */
  description?: string;
}

/** A complete SVG document: `<title>`, `<desc>`, a white background, the title drawn, then `body`. */
export function svgDocument(frame: Frame, body: string[]): string {
  const { width, height } = frame;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `role="img" font-family="sans-serif" font-size="11">`,
    `<title>${escapeXml(frame.title)}</title>`,
    ...(frame.description ? [`<desc>${escapeXml(frame.description)}</desc>`] : []),
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${coord(width / 2)}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${
      escapeXml(frame.title)
    }</text>`,
    ...body,
    "</svg>",
  ].join("\n") + "\n";
}

/** Where a plot area sits and how its values map onto it. */
export interface Plot {
  x0: number;
  y0: number;
  width: number;
  height: number;
  /** Value -> y coordinate. */
  y: (v: number) => number;
}

/** Grid lines, tick labels and the rotated label of the value (y) axis of `plot`. */
export function valueAxis(
  plot: Plot,
  ticks: number[],
  format: (v: number) => string,
  label: string,
): string[] {
  const { x0, y0, width, height } = plot;
  const parts = [
    `<rect x="${coord(x0)}" y="${coord(y0)}" width="${coord(width)}" height="${
      coord(height)
    }" fill="none" stroke="#999"/>`,
  ];
  for (const tick of ticks) {
    const y = coord(plot.y(tick));
    parts.push(`<line x1="${coord(x0)}" x2="${coord(x0 + width)}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    parts.push(
      `<text x="${coord(x0 - 4)}" y="${coord(plot.y(tick) + 4)}" text-anchor="end">${
        escapeXml(format(tick))
      }</text>`,
    );
  }
  const cx = coord(x0 - 38);
  const cy = coord(y0 + height / 2);
  parts.push(
    `<text x="${cx}" y="${cy}" text-anchor="middle" transform="rotate(-90 ${cx} ${cy})">${
      escapeXml(label)
    }</text>`,
  );
  return parts;
}

/** How a legend entry draws its key. */
export type LegendMark = "bar" | "light" | "outline" | "line" | "dashed";

/** One legend entry. */
export interface LegendItem {
  label: string;
  colour: string;
  mark: LegendMark;
}

/** A bar's fill and stroke for `mark` ("light": the control beside a measured value; "outline": own control). */
export function markStyle(colour: string, mark: LegendMark): string {
  if (mark === "light") return `fill="${colour}" fill-opacity="0.35" stroke="${colour}"`;
  if (mark === "outline") return `fill="white" stroke="${colour}" stroke-width="1.5"`;
  return `fill="${colour}"`;
}

/** The dash pattern of a dashed line. */
export const DASH = `stroke-dasharray="6 3"`;

/** Approximate width in pixels of `text` at the chart's 11 px font. */
export function textWidth(text: string): number {
  return text.length * 6.2;
}

/** The width a chart needs to show `title` in its 13 px bold heading. */
export function titleWidth(title: string): number {
  return textWidth(title) * 1.25 + 24;
}

/** A legend wrapped into rows within `width`, from (x, y); returns its elements and its height. */
export function legend(
  items: LegendItem[],
  x: number,
  y: number,
  width: number,
): { parts: string[]; height: number } {
  const parts: string[] = [];
  let cx = x;
  let cy = y + 8;
  for (const item of items) {
    const itemWidth = 30 + textWidth(item.label) + 14;
    if (cx > x && cx + itemWidth > x + width) {
      cx = x;
      cy += 18;
    }
    if (item.mark === "line" || item.mark === "dashed") {
      parts.push(
        `<line x1="${coord(cx)}" x2="${coord(cx + 24)}" y1="${coord(cy)}" y2="${
          coord(cy)
        }" stroke="${item.colour}" ` +
          `stroke-width="2"${item.mark === "dashed" ? ` ${DASH}` : ""}/>`,
      );
    } else {
      parts.push(
        `<rect x="${coord(cx + 6)}" y="${coord(cy - 6)}" width="12" height="12" ${
          markStyle(item.colour, item.mark)
        }/>`,
      );
    }
    parts.push(`<text x="${coord(cx + 30)}" y="${coord(cy + 4)}">${escapeXml(item.label)}</text>`);
    cx += itemWidth;
  }
  return { parts, height: items.length === 0 ? 0 : cy - y + 14 };
}

/** The lines of `text` wrapped at about `chars` characters (explicit newlines kept). */
export function wrapText(text: string, chars: number): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split("\n")) {
    let line = "";
    for (const word of paragraph.split(" ")) {
      if (line && (line + " " + word).length > chars) {
        lines.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    lines.push(line);
  }
  return lines;
}
