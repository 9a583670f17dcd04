import assert from "node:assert/strict";
import { join } from "node:path";
import { encodePng } from "../src/image/codec.ts";

async function runTask(
  script: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `src/cli/${script}.ts`, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

Deno.test("defend on image files writes defended PNGs and a JSON report", async () => {
  const dir = await Deno.makeTempDir();
  const pixels = new Uint8Array(28 * 28).map((_, i) => (i * 7) % 256);
  await Deno.writeFile(
    join(dir, "shirt.png"),
    encodePng({ width: 28, height: 28, channels: 1, data: pixels }),
  );
  const out = join(dir, "out");
  const result = await runTask("defend", [join(dir, "shirt.png"), "--out", out]);
  assert.equal(result.code, 0, result.stderr);
  const report = JSON.parse(await Deno.readTextFile(join(out, "defend.json")));
  assert.equal(report.length, 1);
  assert.ok(report[0].labelBefore >= 0 && report[0].labelBefore < 10);
  assert.ok((await Deno.stat(join(out, "shirt.defended.png"))).size > 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("defend on a split reports accuracy before and after", async () => {
  const out = await Deno.makeTempDir();
  const result = await runTask("defend", ["--split", "test", "--n", "100", "--out", out]);
  assert.equal(result.code, 0, result.stderr);
  const summary = JSON.parse(await Deno.readTextFile(join(out, "defend.json")));
  assert.equal(summary.examples, 100);
  assert.ok(summary.accuracyBefore > 0.8 && summary.accuracyAfter > 0.8, JSON.stringify(summary));
  await Deno.remove(out, { recursive: true });
});

Deno.test("CLI mistakes name the flag or the file and exit non-zero", async () => {
  const badNumber = await runTask("eval", ["--n", "many"]);
  assert.equal(badNumber.code, 2);
  assert.match(badNumber.stderr, /--n: expected a number/);
  const badChoice = await runTask("calibrate", ["--key", "nearest"]);
  assert.equal(badChoice.code, 2);
  assert.match(badChoice.stderr, /--key: expected one of knn, paper/);
  const missing = await runTask("defend", ["/nonexistent/cat.png"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /\/nonexistent\/cat\.png: cannot read/);
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(join(dir, "not-an-image.png"), "hello");
  const undecodable = await runTask("defend", [join(dir, "not-an-image.png")]);
  assert.equal(undecodable.code, 2);
  assert.match(undecodable.stderr, /not-an-image\.png: /);
  const wrongProfile = await runTask("defend", [
    "--split",
    "test",
    "--profile",
    "models/fsdd-speaker/profile",
  ]);
  assert.equal(wrongProfile.code, 1);
  assert.match(wrongProfile.stderr, /calibrated on model/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("eval writes JSON and Markdown with the controls beside every DSR", async () => {
  const out = await Deno.makeTempDir();
  const result = await runTask("eval", [
    "--n",
    "40",
    "--attacks",
    "fgsm",
    "--budgets",
    "0.1",
    "--protocol",
    "honest",
    "--out",
    out,
  ]);
  assert.equal(result.code, 0, result.stderr);
  const { report, meta } = JSON.parse(await Deno.readTextFile(join(out, "eval.json")));
  assert.equal(meta.n, 40);
  assert.equal(report.rows.length, 1);
  assert.ok("randomNoise" in report.rows[0].controls && "randomCandidate" in report.rows[0].controls);
  const markdown = await Deno.readTextFile(join(out, "eval.md"));
  assert.match(markdown, /\| fgsm \| l_?inf 0\.1/i);
  assert.match(result.stdout, /random-noise control/);
  await Deno.remove(out, { recursive: true });
});
