import assert from "node:assert/strict";
import { renderBarChart } from "../src/report/bar_chart.ts";
import { renderLineChart } from "../src/report/line_chart.ts";
import { axisMax, escapeXml, linearScale, niceTicks, wrapText } from "../src/report/svg.ts";
import { renderHtmlTable, renderMarkdownTable } from "../src/report/table.ts";
import { assertWellFormedXml } from "./report_fixture.ts";

const rate = (v: number) => `${(v * 100).toFixed(1)}%`;
const count = (text: string, pattern: RegExp) => [...text.matchAll(pattern)].length;

Deno.test("a grouped bar chart draws one bar per present value, labelled, and marks missing ones", () => {
  const svg = renderBarChart({
    title: "DSR <per> attack & defense",
    description: "test chart",
    yLabel: "DSR",
    xLabel: "attack",
    series: [
      { name: "nip", colour: "#0072b2" },
      { name: "nip noise", colour: "#0072b2", mark: "light" },
      { name: "a<b & c", colour: "#d55e00", mark: "outline" },
    ],
    groups: [
      { label: "fgsm <eps> & more\npaper", values: [0.5, 0.25, null] },
      { label: "pgd", values: [1, NaN, 0.125] },
    ],
    format: rate,
  });
  const elements = assertWellFormedXml(svg);
  assert.equal(elements[0], "svg");
  assert.equal(elements[1], "title");
  assert.match(
    svg,
    /^<svg [^>]*role="img"[^>]*>\n<title>DSR &lt;per&gt; attack &amp; defense<\/title>\n<desc>test chart<\/desc>/,
  );
  assert.equal(count(svg, /<rect class="bar"/g), 4);
  assert.equal(count(svg, /class="missing"/g), 2);
  for (const value of ["50.0%", "25.0%", "100.0%", "12.5%"]) {
    assert.match(svg, new RegExp(`>${value}</text>`));
  }
  assert.match(svg, /<title>nip, pgd: 100\.0%<\/title>/);
  assert.match(svg, /fgsm &lt;eps&gt; &amp; more/);
  assert.match(svg, /a&lt;b &amp; c/);
  assert.ok(!svg.includes("a<b") && !svg.includes("<eps>"));
  // The legend names every series; the axis carries its labels and ticks up to 100%.
  for (const label of ["nip", "nip noise", "attack", "DSR", "0.0%", "100.0%"]) {
    assert.match(svg, new RegExp(`>${label}</text>`));
  }
  // A bar's height is its value: 1 fills the plot, 0.5 half of it.
  const heights = [...svg.matchAll(/class="bar"[^>]* height="([\d.]+)"/g)].map((m) => Number(m[1]));
  assert.deepEqual(heights, [100, 50, 200, 25]);
});

Deno.test("bar heights above 1 get a round axis; values are clamped into it", () => {
  assert.equal(axisMax(0.3), 1);
  assert.equal(axisMax(7.3), 8);
  assert.equal(axisMax(23), 25);
  const svg = renderBarChart({
    title: "ms",
    yLabel: "ms",
    series: [{ name: "ms", colour: "#000" }],
    groups: [{ label: "a", values: [7.3] }, { label: "b", values: [-1] }],
    format: (v) => v.toFixed(1),
  });
  assertWellFormedXml(svg);
  assert.match(svg, />8\.0<\/text>/);
  const heights = [...svg.matchAll(/class="bar"[^>]* height="([\d.]+)"/g)].map((m) => Number(m[1]));
  assert.deepEqual(heights, [182.5, 0]);
});

Deno.test("a line chart draws a marker per present point and breaks the line at a missing one", () => {
  const svg = renderLineChart({
    title: "DSR against budget",
    xLabel: "epsilon",
    yLabel: "DSR",
    panels: [
      {
        title: "sigma = 0.25",
        series: [
          {
            name: "nip",
            colour: "#0072b2",
            points: [0, 0.1, 0.2, 0.3].map((x, i) => ({ x, y: [0.9, 0.5, null, 0.1][i] })),
          },
          {
            name: "noise <ctrl>",
            colour: "#0072b2",
            dashed: true,
            points: [{ x: 0, y: 0.8 }, { x: 0.3, y: NaN }],
          },
        ],
      },
      {
        title: "sigma = 0.5",
        series: [{ name: "nip", colour: "#0072b2", points: [{ x: 0, y: 0.7 }, { x: 0.2, y: 0.3 }] }],
      },
    ],
    xTicks: [0, 0.1, 0.2, 0.3],
    format: rate,
  });
  assertWellFormedXml(svg);
  assert.equal(count(svg, /<circle class="point"/g), 3 + 1 + 2);
  const lines = [...svg.matchAll(/<polyline points="([\d., ]+)"[^>]*\/>/g)];
  assert.deepEqual(lines.map((l) => l[1].split(" ").length), [2, 2]);
  assert.equal(
    count(svg, /stroke-dasharray/g),
    1,
    "the dashed series' legend key only (its line has one point)",
  );
  assert.match(svg, /<title>nip: 0\.1, 50\.0%<\/title>/);
  assert.match(svg, />sigma = 0\.5<\/text>/);
  assert.match(svg, /noise &lt;ctrl&gt;/);
  // The legend names "nip" once though it appears in both panels; each panel labels its axes.
  assert.equal(count(svg, />nip<\/text>/g), 1);
  assert.equal(count(svg, />epsilon<\/text>/g), 2);
  assert.equal(count(svg, />DSR<\/text>/g), 2);
});

Deno.test("a chart with no data is still a well-formed document", () => {
  assertWellFormedXml(
    renderLineChart({ title: "empty", xLabel: "x", yLabel: "y", panels: [], format: rate }),
  );
  assertWellFormedXml(renderBarChart({ title: "empty", yLabel: "y", series: [], groups: [], format: rate }));
});

Deno.test("scales, ticks, wrapping and escaping", () => {
  assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0, 2, 4), [0, 0.5, 1, 1.5, 2]);
  assert.deepEqual(niceTicks(3, 3), [3]);
  assert.equal(linearScale(0, 2, 100, 0)(0.5), 75);
  assert.equal(linearScale(1, 1, 0, 10)(1), 5);
  assert.deepEqual(wrapText("pgd-linf paper App. A\nL_inf 0.3", 12), [
    "pgd-linf",
    "paper App. A",
    "L_inf 0.3",
  ]);
  assert.equal(escapeXml(`a<b & "c" 'd'>`), "a&lt;b &amp; &quot;c&quot; 'd'&gt;");
});

Deno.test("a table renders the same cells into HTML and Markdown, each escaped for its format", () => {
  const table = { caption: "DSR <honest> & more", header: ["attack", "DSR"], rows: [["a|b <c>", "50.0%"]] };
  const html = renderHtmlTable(table);
  assertWellFormedXml(html);
  assert.match(html, /<caption>DSR &lt;honest&gt; &amp; more<\/caption>/);
  assert.match(html, /<td>a\|b &lt;c&gt;<\/td><td class="num">50\.0%<\/td>/);
  assert.equal(
    renderMarkdownTable(table),
    "DSR <honest> & more\n\n| attack | DSR |\n|---|---|\n| a\\|b <c> | 50.0% |",
  );
});
