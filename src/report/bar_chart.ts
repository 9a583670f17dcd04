/**
 * A grouped bar chart as SVG: groups along the x axis (e.g. attacks), one bar per series in each group (e.g.
 * a defense's DSR with its random-noise control beside it), each bar labelled with its value and carrying a
 * `<title>` with series, group and value. A missing value (null, NaN) draws "n/a" instead of a bar.
 *
 * @module
 */
import {
  axisMax,
  coord,
  escapeXml,
  isValue,
  legend,
  type LegendItem,
  linearScale,
  markStyle,
  niceTicks,
  svgDocument,
  titleWidth,
  valueAxis,
  wrapText,
} from "./svg.ts";

/** One series: a bar in every group. */
export interface BarSeries {
  name: string;
  colour: string;
  /** `bar` (solid, default), `light` (a control beside the measured value) or `outline` (own control). */
  mark?: "bar" | "light" | "outline";
}

/** One group of bars; `values[i]` belongs to series `i` (null, undefined or NaN: missing). */
export interface BarGroup {
  label: string;
  values: readonly (number | null | undefined)[];
}

/** What {@link renderBarChart} draws. */
export interface BarChartSpec {
  title: string;
  description?: string;
  yLabel: string;
  xLabel?: string;
  series: BarSeries[];
  groups: BarGroup[];
  /** The legend's entries (default: one per series). */
  legend?: LegendItem[];
  /** Top of the value axis (default: 1 when every value is at most 1, else a round number above the largest). */
  max?: number;
  /** How values and ticks are written. */
  format: (value: number) => string;
}

const MARGIN = { left: 58, right: 16, top: 70 };
const PLOT_HEIGHT = 200;
const GROUP_GAP = 22;

/** The grouped bar chart of `spec` as a standalone SVG document. */
export function renderBarChart(spec: BarChartSpec): string {
  const { series, groups, format } = spec;
  const barWidth = series.length * groups.length > 40 ? 12 : 18;
  const groupWidth = Math.max(1, series.length) * barWidth;
  const plotWidth = Math.max(
    300,
    groups.length * (groupWidth + GROUP_GAP) + GROUP_GAP,
    titleWidth(spec.title) - MARGIN.left - MARGIN.right,
  );
  const width = MARGIN.left + plotWidth + MARGIN.right;
  const values = groups.flatMap((g) => g.values.filter(isValue));
  const largest = Math.max(0, ...values);
  const max = spec.max ?? axisMax(largest);
  const y = linearScale(0, max, MARGIN.top + PLOT_HEIGHT, MARGIN.top);
  const plot = { x0: MARGIN.left, y0: MARGIN.top, width: plotWidth, height: PLOT_HEIGHT, y };
  const body = valueAxis(plot, niceTicks(0, max), format, spec.yLabel);
  const base = MARGIN.top + PLOT_HEIGHT;
  const step = (plotWidth - GROUP_GAP) / Math.max(1, groups.length);
  const chars = Math.max(10, Math.floor((step - 4) / 6));
  let labelLines = 1;
  groups.forEach((group, g) => {
    const left = MARGIN.left + GROUP_GAP + g * step + (step - GROUP_GAP - groupWidth) / 2;
    series.forEach((s, i) => {
      const x = left + i * barWidth;
      const centre = x + barWidth / 2;
      const value = group.values[i];
      const name = `${s.name}, ${group.label.replaceAll("\n", " ")}`;
      if (!isValue(value)) {
        body.push(rotated(centre, base - 3, "n/a", `class="missing" fill="#777"`, `${name}: no value`));
        return;
      }
      const top = y(Math.min(Math.max(value, 0), max));
      body.push(
        `<rect class="bar" x="${coord(x + 1)}" y="${coord(top)}" width="${coord(barWidth - 2)}" height="${
          coord(base - top)
        }" ${markStyle(s.colour, s.mark ?? "bar")}><title>${
          escapeXml(`${name}: ${format(value)}`)
        }</title></rect>`,
      );
      body.push(rotated(centre, top - 3, format(value), `class="value"`));
    });
    const lines = wrapText(group.label, chars);
    labelLines = Math.max(labelLines, lines.length);
    lines.forEach((line, k) => {
      body.push(
        `<text x="${coord(left + groupWidth / 2)}" y="${coord(base + 14 + 13 * k)}" text-anchor="middle">${
          escapeXml(line)
        }</text>`,
      );
    });
  });
  let bottom = base + 8 + 13 * labelLines;
  if (spec.xLabel) {
    bottom += 16;
    body.push(
      `<text x="${coord(MARGIN.left + plotWidth / 2)}" y="${coord(bottom)}" text-anchor="middle">${
        escapeXml(spec.xLabel)
      }</text>`,
    );
  }
  const items = spec.legend ??
    series.map((s) => ({ label: s.name, colour: s.colour, mark: s.mark ?? "bar" }));
  const key = legend(items, MARGIN.left, bottom + 8, plotWidth);
  body.push(...key.parts);
  const height = Math.ceil(bottom + 8 + key.height + 6);
  return svgDocument(
    { width: Math.ceil(width), height, title: spec.title, description: spec.description },
    body,
  );
}

/** Text rotated to read upwards from (x, y), small enough to sit on a bar. */
function rotated(x: number, y: number, text: string, attributes: string, title?: string): string {
  const [cx, cy] = [coord(x + 3), coord(y)];
  const tip = title ? `<title>${escapeXml(title)}</title>` : "";
  return `<text ${attributes} x="${cx}" y="${cy}" font-size="9" transform="rotate(-90 ${cx} ${cy})">${tip}${
    escapeXml(text)
  }</text>`;
}
