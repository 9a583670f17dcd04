import assert from "node:assert/strict";
import { join } from "node:path";
import { findChromium, runChromium } from "../scripts/screenshot.ts";
import { buildReport } from "../src/report/build.ts";
import { readResults } from "./report_fixture.ts";

// Needs headless Chromium (Debian: apt-get install chromium, or $CHROMIUM); skipped without it.
const ignore = findChromium() === undefined;

Deno.test({
  name: "the report renders in headless Chromium with every chart and no console message",
  ignore,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const { html, charts } = buildReport(await readResults(), { title: "Rendered report" });
    const page = join(dir, "report.html");
    await Deno.writeTextFile(page, html);
    const rendered = await runChromium(page, { dumpDom: true });
    assert.deepEqual(rendered.console, []);
    const dom = rendered.stdout;
    assert.match(dom, /<h1>Rendered report<\/h1>/);
    // Every chart is in the rendered DOM as an SVG element with its accessible title, bars and points intact.
    const svgs = [...dom.matchAll(/<svg [\s\S]*?<\/svg>/g)].map((m) => m[0]);
    assert.equal(svgs.length, charts.length);
    svgs.forEach((svg, i) => {
      const title = charts[i].svg.match(/<title>([^<]*)<\/title>/)![1];
      assert.ok(svg.includes(`<title>${title}</title>`), title);
      for (const mark of [/<rect class="bar"/g, /<circle class="point"/g, /<polyline /g]) {
        assert.equal(
          [...svg.matchAll(mark)].length,
          [...charts[i].svg.matchAll(mark)].length,
          `${title}: ${mark}`,
        );
      }
    });
    const png = join(dir, "report.png");
    const shot = await runChromium(page, { screenshot: png, width: 1280, height: 2400 });
    assert.deepEqual(shot.console, []);
    const bytes = await Deno.readFile(png);
    assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.ok(bytes.length > 20_000, `a screenshot of a page full of charts (${bytes.length} bytes)`);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "a page's console errors are collected (the check above can fail)",
  ignore,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const page = join(dir, "broken.html");
    await Deno.writeTextFile(page, `<!DOCTYPE html><p>x</p><script>throw new Error("boom")</script>`);
    const rendered = await runChromium(page, { dumpDom: true });
    assert.ok(
      rendered.console.some((line) => line.includes("Uncaught Error: boom")),
      rendered.console.join("\n"),
    );
    await Deno.remove(dir, { recursive: true });
  },
});
