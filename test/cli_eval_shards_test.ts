import assert from "node:assert/strict";
import { join } from "node:path";
import { runTask } from "./task_runner.ts";

const COMMON = [
  "--n",
  "30",
  "--block-size",
  "10",
  "--defenses",
  "nip,ss",
  "--attacks",
  "fgsm",
  "--budgets",
  "0.1",
];

function withoutTimes(json: unknown): string {
  return JSON.stringify(json, (key, value) => key.startsWith("ms") ? undefined : value);
}

Deno.test("eval --shard K/S run for every K and --merge-shards give the unsharded report; a shard repeats exactly", async () => {
  const dir = await Deno.makeTempDir();
  const whole = await runTask("eval", [...COMMON, "--out", join(dir, "whole")]);
  assert.equal(whole.code, 0, whole.stderr);
  for (const shard of ["0/2", "1/2"]) {
    const result = await runTask("eval", [...COMMON, "--shard", shard, "--out", join(dir, "shards")]);
    assert.equal(result.code, 0, result.stderr);
  }
  const first = await Deno.readTextFile(join(dir, "shards", "shard-1-of-2.json"));
  const again = await runTask("eval", [...COMMON, "--shard", "1/2", "--out", join(dir, "shards")]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(await Deno.readTextFile(join(dir, "shards", "shard-1-of-2.json")), first);

  const merged = await runTask("eval", ["--merge-shards", join(dir, "shards"), "--out", join(dir, "merged")]);
  assert.equal(merged.code, 0, merged.stderr);
  const wholeReport = JSON.parse(await Deno.readTextFile(join(dir, "whole", "eval.json"))).report;
  const mergedReport = JSON.parse(await Deno.readTextFile(join(dir, "merged", "eval.json"))).report;
  assert.equal(withoutTimes(mergedReport), withoutTimes(wholeReport));
  assert.ok(mergedReport.benign.msPerExampleBare > 0);

  const missing = await runTask("eval", [
    "--merge-shards",
    join(dir, "shards", "shard-0-of-2.json"),
    "--out",
    join(dir, "partial"),
  ]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /missing: 1/);
  const bad = await runTask("eval", [...COMMON, "--shard", "2/2"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--shard: shard "2\/2"/);
  await Deno.remove(dir, { recursive: true });
});
