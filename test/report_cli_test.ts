import assert from "node:assert/strict";
import { join } from "node:path";
import { runTask } from "./task_runner.ts";

const report = (args: string[]) => runTask("report", args);

Deno.test("report writes the HTML, the Markdown and every chart from files and folders", async () => {
  const dir = await Deno.makeTempDir();
  // A folder of runs: the eval.json and certify.json inside are read, other JSON files are not.
  await Deno.mkdir(join(dir, "runs", "run1"), { recursive: true });
  await Deno.copyFile("docs/results/speaker-defenses.json", join(dir, "runs", "run1", "eval.json"));
  await Deno.writeTextFile(join(dir, "runs", "notes.json"), "not read");
  const out = join(dir, "report");
  const result = await report([
    "--in",
    `docs/results/image-defenses.json,${join(dir, "runs")},docs/results/certify-speaker`,
    "--out",
    out,
    "--title",
    "CLI report",
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(
    result.stdout,
    /read: docs\/results\/image-defenses\.json, .*run1\/eval\.json, docs\/results\/certify-speaker\/certify\.json/,
  );
  const files = [...Deno.readDirSync(out)].map((e) => e.name).sort();
  const svgs = files.filter((f) => f.endsWith(".svg"));
  assert.deepEqual(files.filter((f) => !f.endsWith(".svg")), ["report.html", "report.md"]);
  assert.ok(svgs.length >= 8, svgs.join(", "));
  for (const file of files) assert.ok(result.stdout.includes(join(out, file)), `${file} printed`);
  const html = await Deno.readTextFile(join(out, "report.html"));
  assert.match(html, /<h1>CLI report<\/h1>/);
  assert.match(html, /<h3>run1\/eval\.json<\/h3>/);
  assert.equal([...html.matchAll(/<svg /g)].length, svgs.length);
  const markdown = await Deno.readTextFile(join(out, "report.md"));
  for (const svg of svgs) assert.ok(markdown.includes(`](${svg})`), svg);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("report --help prints the usage and exits 0", async () => {
  const result = await report(["--help"]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^`deno task report`/);
  assert.match(
    result.stdout,
    /deno task report --in a\.json\[,b\.json,DIR\] \[--out out\/report\] \[--title T\]/,
  );
});

Deno.test("report names the file it cannot use", async () => {
  const dir = await Deno.makeTempDir();
  const missing = join(dir, "absent.json");
  const gone = await report([
    "--in",
    `docs/results/image-defenses.json,${missing}`,
    "--out",
    join(dir, "out"),
  ]);
  assert.equal(gone.code, 2);
  assert.match(gone.stderr, new RegExp(`usage error: --in: ${missing}: no such file or folder`));
  const empty = await report(["--in", dir]);
  assert.equal(empty.code, 2);
  assert.ok(empty.stderr.includes(`${dir}: no eval.json or certify.json inside`), empty.stderr);
  const broken = join(dir, "broken.json");
  await Deno.writeTextFile(broken, "{ not json");
  const notJson = await report(["--in", broken, "--out", join(dir, "out")]);
  assert.equal(notJson.code, 1);
  assert.ok(notJson.stderr.includes(`error: ${broken}: not JSON`), notJson.stderr);
  const other = join(dir, "other.json");
  await Deno.writeTextFile(other, JSON.stringify({ meta: {} }));
  const unknown = await report(["--in", other, "--out", join(dir, "out")]);
  assert.equal(unknown.code, 1);
  assert.ok(unknown.stderr.includes(`${other}: neither an evaluation`), unknown.stderr);
  assert.equal((await report([])).code, 2);
  await Deno.remove(dir, { recursive: true });
});
