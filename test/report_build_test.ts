import assert from "node:assert/strict";
import { renderCertificationSvg } from "../src/eval/certification_report.ts";
import { buildReport } from "../src/report/build.ts";
import type { SensitivitySweep } from "../src/report/inputs.ts";
import { assertWellFormedXml, readResults } from "./report_fixture.ts";

const sections = (html: string) => [...html.matchAll(/<section id="([^"]+)">/g)].map((m) => m[1]);
const captions = (html: string) =>
  [...html.matchAll(/<figcaption>([\s\S]*?)<\/figcaption>/g)].map((m) => m[1]);

Deno.test("the report from the committed results has every section in order, captioned with its controls", async () => {
  const { html, markdown, charts } = buildReport(await readResults(), { title: "Results <all> & more" });
  assert.deepEqual(sections(html), ["dsr", "detection", "budget", "benign", "time", "adaptive", "certified"]);
  assert.match(html, /<title>Results &lt;all&gt; &amp; more<\/title>/);
  // Fig. 4: honest and paper-oracle are separate charts, for images and for speech.
  const titles = charts.map((c) => c.svg.match(/<title>([^<]*)<\/title>/)![1]);
  assert.equal(titles.filter((t) => t === "DSR per attack per defense, honest protocol").length, 2);
  assert.equal(
    titles.filter((t) => t === "DSR per attack per defense, paper-oracle protocol (oracle, uses true labels)")
      .length,
    2,
  );
  assert.ok(titles.includes("Inputs flagged per attack (detection at alpha = 0.05)"));
  // Fig. 5 for FGSM at 0.2 and 0.3 on images; the PGD rows share one budget and make no curve.
  assert.ok(titles.includes("DSR against perturbation size: fgsm (model input, linf)"));
  assert.ok(!titles.some((t) => t.startsWith("DSR against perturbation size: pgd-linf (model input")));
  for (const title of ["Benign accuracy after each defense", "Robust accuracy under adaptive attacks"]) {
    assert.ok(titles.includes(title), title);
  }
  assert.equal(titles.filter((t) => t.startsWith("Certified accuracy against L2 radius")).length, 2);
  // Every caption names its source, n and controls; the evaluation ones their protocol and budgets.
  const all = captions(html);
  assert.equal(all.length, charts.length);
  for (const caption of all) {
    assert.match(caption, /Source: [\w./-]+/);
    assert.match(caption, /n = \d+|\d+ test examples/);
    assert.match(caption, /[Cc]ontrol/);
    assert.match(caption, /Protocol (honest|paper-oracle|NIP_n)|CERTIFY with n0/);
  }
  const honest = all.find((c) => c.includes("Protocol honest") && c.includes("DSR = "))!;
  assert.match(honest, /random-noise control/);
  assert.match(honest, /nip: nip-random-candidate/);
  assert.match(honest, /Model models\/fashion-lenet \(f22cdbd673a8\)/);
  assert.match(
    honest,
    /fgsm at paper App\. A Table 2: FGSM L_inf 0\.2 \(paper\): 261 adversarial of 263 attacked/,
  );
  assert.ok(all.some((c) => /Protocol paper-oracle: .*an oracle, not a deployable defense/.test(c)));
  // Self-contained: inline SVG and CSS, no script, no external resource, no link out of the page.
  assert.ok(!/<script/i.test(html));
  assert.ok(!/https?:|url\(|@import|\bsrc=/i.test(html));
  for (const href of html.matchAll(/href="([^"]*)"/g)) assert.match(href[1], /^#[\w-]+$/);
  const inline = [...html.matchAll(/<svg[\s\S]*?<\/svg>/g)].map((m) => m[0]);
  assert.equal(inline.length, charts.length);
  inline.forEach((svg) => assertWellFormedXml(svg));
  // The SVG files are standalone documents the Markdown links, in order, with the same tables as the HTML.
  charts.forEach((chart, i) => {
    assert.match(chart.file, new RegExp(`^fig${String(i + 1).padStart(2, "0")}-[a-z0-9-]+\\.svg$`));
    assert.match(chart.svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" /);
    assertWellFormedXml(chart.svg);
    assert.ok(markdown.includes(`](${chart.file})`), chart.file);
  });
  const htmlTables = [...html.matchAll(/<caption>([^<]*)<\/caption>/g)].map((m) =>
    m[1].replaceAll("&amp;", "&")
  );
  assert.ok(htmlTables.length >= 10);
  assert.equal([...markdown.matchAll(/^\|(---\|)+$/gm)].length, htmlTables.length);
  for (const caption of htmlTables) assert.ok(markdown.includes(caption), caption);
  assert.match(
    markdown,
    /\| fgsm \| paper App\. A Table 2: FGSM L_inf 0\.2 \(paper\) \| 99\.2% \(261\/263\) \| nip \| 82\.8% \|/,
  );
});

Deno.test("a sweep renders a line chart per setting; sections without data are left out", async () => {
  const [evaluation] = await readResults(["docs/results/image-defenses.json"]);
  const sweep: SensitivitySweep[] = [
    {
      parameter: "k1",
      attack: "fgsm",
      budget: "L_inf 0.1",
      points: [3, 1, 5, 7].map((value, i) => ({
        value,
        dsr: 0.1 * i,
        randomNoise: 0.05 * i,
        benignAccuracy: 0.9 - 0.01 * i,
        adversarial: 50,
      })),
    },
    {
      parameter: "eta",
      attack: "fgsm",
      budget: "L_inf 0.1",
      points: [{ value: 0.1, dsr: 0.5, randomNoise: 0.4, benignAccuracy: NaN, adversarial: 50 }],
    },
  ];
  const json = { ...(evaluation.json as object), sweep };
  const { html, charts } = buildReport([{ path: "out/sweep/eval.json", json }], { title: "Sweep" });
  assert.deepEqual(sections(html), ["dsr", "budget", "benign", "time", "sweeps"]);
  const k1 = charts.find((c) => c.svg.includes("<title>Sensitivity to k1</title>"))!;
  // DSR, its random-noise control and benign accuracy, 4 settings each.
  assert.equal([...k1.svg.matchAll(/<circle class="point"/g)].length, 12);
  const [dsr] = [...k1.svg.matchAll(/<polyline points="([^"]+)"/g)].map((m) =>
    m[1].split(" ").map((p) => Number(p.split(",")[0]))
  );
  assert.deepEqual(dsr, [...dsr].sort((a, b) => a - b), "points in increasing k1");
  const eta = charts.find((c) => c.svg.includes("<title>Sensitivity to eta</title>"))!;
  assert.equal(
    [...eta.svg.matchAll(/<circle class="point"/g)].length,
    2,
    "DSR and noise control drawn; the NaN benign accuracy is missing",
  );
  assert.match(captions(html).at(-1)!, /Source: sweep\/eval\.json/);
  assert.match(html, /<td class="num">10\.0%<\/td>/);
});

Deno.test("inputs that are not evaluation results are refused, naming the file and field", async () => {
  assert.throws(
    () => buildReport([{ path: "a/b.json", json: { hello: 1 } }], { title: "t" }),
    /^TypeError: a\/b\.json: neither/,
  );
  const [evaluation] = await readResults(["docs/results/image-defenses.json"]);
  const broken = structuredClone(evaluation.json) as { report: { rows: unknown } };
  broken.report.rows = "many";
  assert.throws(
    () => buildReport([{ path: "x.json", json: broken }], { title: "t" }),
    /x\.json: report\.rows: expected an array/,
  );
  const certify = { radii: [0, 1], bySigma: [{ sigma: 0.25, variants: [{ name: "v" }] }] };
  assert.throws(
    () => buildReport([{ path: "c.json", json: certify }], { title: "t" }),
    /c\.json: bySigma\[0\]\.variants\[0\]\.certified: expected an array/,
  );
});

Deno.test("the certification SVG is the shared line chart: one panel per sigma, one line per variant", async () => {
  const [certify] = await readResults(["docs/results/certify/certify.json"]);
  const report = certify.json as Parameters<typeof renderCertificationSvg>[0];
  const svg = renderCertificationSvg(report);
  assertWellFormedXml(svg);
  assert.match(svg, /^<svg [^>]*>/);
  const variants = report.bySigma.reduce((sum, s) => sum + s.variants.length, 0);
  assert.equal([...svg.matchAll(/<polyline points="[\d., ]+"/g)].length, variants);
  for (const { sigma } of report.bySigma) assert.match(svg, new RegExp(`>sigma = ${sigma}</text>`));
  assert.match(svg, /frozen model alone/);
});
