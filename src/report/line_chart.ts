/**
 * A line chart as SVG: a numeric x axis, several series per panel (solid or dashed), panels side by side
 * sharing both axes, one legend below. Every point is a marker with a `<title>` giving its values; a missing
 * value (null, NaN) breaks the line there.
 *
 * @module
 */
import {
  axisMax,
  coord,
  DASH,
  escapeXml,
  isValue,
  legend,
  type LegendItem,
  linearScale,
  niceTicks,
  shortNumber,
  svgDocument,
  titleWidth,
  valueAxis,
} from "./svg.ts";

/** One point; `y` null, undefined or NaN is missing. */
export interface LinePoint {
  x: number;
  y: number | null | undefined;
}

/** One line. */
export interface LineSeries {
  name: string;
  colour: string;
  dashed?: boolean;
  points: LinePoint[];
}

/** One panel of lines. */
export interface LinePanel {
  title?: string;
  series: LineSeries[];
}

/** What {@link renderLineChart} draws. */
export interface LineChartSpec {
  title: string;
  description?: string;
  xLabel: string;
  yLabel: string;
  panels: LinePanel[];
  /** The x axis's range (default: the points' range). */
  xDomain?: [number, number];
  /** Tick values on the x axis (default: round values over the range). */
  xTicks?: number[];
  /** Top of the value axis (default: 1 when every value is at most 1, else a round number above). */
  max?: number;
  /** How y values and ticks are written. */
  format: (value: number) => string;
  /** The legend's entries (default: one per distinct series name). */
  legend?: LegendItem[];
}

const PANEL = { width: 340, height: 240 };
const MARGIN = { left: 58, right: 14, top: 46, bottom: 42 };

/** The line chart of `spec` as a standalone SVG document. */
export function renderLineChart(spec: LineChartSpec): string {
  const plotWidth = PANEL.width - MARGIN.left - MARGIN.right;
  const plotHeight = PANEL.height - MARGIN.top - MARGIN.bottom;
  const points = spec.panels.flatMap((p) => p.series.flatMap((s) => s.points));
  const xs = points.map((p) => p.x).filter(isValue);
  const [xMin, xMax] = spec.xDomain ?? [Math.min(...xs, Infinity), Math.max(...xs, -Infinity)];
  const [lo, hi] = Number.isFinite(xMin) ? [xMin, xMax] : [0, 1];
  const largest = Math.max(0, ...points.map((p) => p.y).filter(isValue));
  const max = spec.max ?? axisMax(largest);
  const width = Math.ceil(Math.max(PANEL.width * Math.max(1, spec.panels.length), titleWidth(spec.title)));
  const body: string[] = [];
  spec.panels.forEach((panel, k) => {
    const x0 = k * PANEL.width + MARGIN.left;
    const x = linearScale(lo, hi, x0, x0 + plotWidth);
    const y = linearScale(0, max, MARGIN.top + plotHeight, MARGIN.top);
    if (panel.title) {
      body.push(
        `<text x="${coord(x0 + plotWidth / 2)}" y="36" text-anchor="middle">${escapeXml(panel.title)}</text>`,
      );
    }
    body.push(
      ...valueAxis(
        { x0, y0: MARGIN.top, width: plotWidth, height: plotHeight, y },
        niceTicks(0, max),
        spec.format,
        spec.yLabel,
      ),
    );
    const base = MARGIN.top + plotHeight;
    for (const tick of spec.xTicks ?? niceTicks(lo, hi)) {
      body.push(
        `<text x="${coord(x(tick))}" y="${coord(base + 14)}" text-anchor="middle">${
          shortNumber(tick)
        }</text>`,
      );
    }
    body.push(
      `<text x="${coord(x0 + plotWidth / 2)}" y="${coord(base + 32)}" text-anchor="middle">${
        escapeXml(spec.xLabel)
      }</text>`,
    );
    for (const series of panel.series) body.push(...line(series, x, y, spec.format));
  });
  const names = new Map<string, LegendItem>();
  for (const s of spec.panels.flatMap((p) => p.series)) {
    if (!names.has(s.name)) {
      names.set(s.name, { label: s.name, colour: s.colour, mark: s.dashed ? "dashed" : "line" });
    }
  }
  const key = legend(
    spec.legend ?? [...names.values()],
    MARGIN.left,
    PANEL.height,
    width - MARGIN.left - MARGIN.right,
  );
  body.push(...key.parts);
  const height = Math.ceil(PANEL.height + key.height + 6);
  return svgDocument({ width, height, title: spec.title, description: spec.description }, body);
}

/** A series' polylines (one per run of present values) and its point markers. */
function line(
  series: LineSeries,
  x: (v: number) => number,
  y: (v: number) => number,
  format: (v: number) => string,
): string[] {
  const runs: string[][] = [[]];
  const markers: string[] = [];
  for (const point of series.points) {
    if (!isValue(point.y) || !isValue(point.x)) {
      runs.push([]);
      continue;
    }
    const [cx, cy] = [coord(x(point.x)), coord(y(point.y))];
    runs.at(-1)!.push(`${cx},${cy}`);
    const tip = `${series.name}: ${shortNumber(point.x)}, ${format(point.y)}`;
    markers.push(
      `<circle class="point" cx="${cx}" cy="${cy}" r="3" fill="${series.colour}"><title>${
        escapeXml(tip)
      }</title></circle>`,
    );
  }
  const dash = series.dashed ? ` ${DASH}` : "";
  return [
    ...runs.filter((r) => r.length > 1).map((r) =>
      `<polyline points="${r.join(" ")}" fill="none" stroke="${series.colour}" stroke-width="2"${dash}/>`
    ),
    ...markers,
  ];
}
