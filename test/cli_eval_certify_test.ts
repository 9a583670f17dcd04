import assert from "node:assert/strict";
import { join } from "node:path";
import { runTask } from "./task_runner.ts";

function evalTask(args: string[]) {
  return runTask("eval", ["--certify", ...args]);
}

/** A small certification run (`n` images, 100 samples, no SmoothAdv) at `sigma` into `out`. */
function smallRun(out: string, n: number, sigma: number, more: string[] = []) {
  const flags = {
    "--n": n,
    "--sigmas": sigma,
    "--samples": 100,
    "--n0": 10,
    "--adaptive-n": 0,
    "--out": out,
  };
  return evalTask([...Object.entries(flags).flatMap(([k, v]) => [k, String(v)]), ...more]);
}

Deno.test("eval --certify writes the certification report as JSON, Markdown and SVG; runs merge", async () => {
  const out = await Deno.makeTempDir();
  const result = await smallRun(out, 6, 0.25, [
    "--variants",
    "frozen,noise-trained",
    "--noise-models",
    join(out, "absent-{sigma}"),
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /skipped: noise-trained model \(reference\) at sigma 0.25 \(not trained\)/);
  const report = JSON.parse(await Deno.readTextFile(join(out, "certify.json")));
  assert.equal(report.examples, 6);
  assert.equal(report.bySigma[0].variants.length, 1);
  assert.equal(report.bySigma[0].variants[0].name, "frozen model alone");
  assert.match(await Deno.readTextFile(join(out, "certify.md")), /## sigma = 0.25/);
  const svg = await Deno.readTextFile(join(out, "certify.svg"));
  assert.match(svg, /^<svg [^>]*>/);
  assert.match(svg, /<polyline points="[\d., ]+"/);
  assert.match(svg, /frozen model alone/);
  // A second run at another sigma merges with the first into one report; a run of other size does not.
  const second = join(out, "second");
  assert.equal((await smallRun(second, 6, 0.5, ["--variants", "frozen"])).code, 0);
  const merged = join(out, "merged");
  const merging = await evalTask(["--merge", `${out},${second}`, "--out", merged]);
  assert.equal(merging.code, 0, merging.stderr);
  const joined = JSON.parse(await Deno.readTextFile(join(merged, "certify.json")));
  assert.deepEqual(joined.bySigma.map((s: { sigma: number }) => s.sigma), [0.25, 0.5]);
  const unlike = join(out, "unlike");
  assert.equal((await smallRun(unlike, 3, 0.5, ["--variants", "frozen"])).code, 0);
  const refused = await evalTask(["--merge", `${out},${unlike}`, "--out", merged]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /--merge: runs differ in examples, n0, n, alpha or radii/);
  await Deno.remove(out, { recursive: true });
});

Deno.test("eval --certify names a bad flag", async () => {
  const variants = await evalTask(["--variants", "frozen,magic"]);
  assert.equal(variants.code, 2);
  assert.match(
    variants.stderr,
    /--variants: expected one of frozen, mse, stability, noise-trained, got "magic"/,
  );
  const sigma = await evalTask(["--sigmas=-1"]);
  assert.equal(sigma.code, 2);
  assert.match(sigma.stderr, /--sigmas: expected a number/);
});
