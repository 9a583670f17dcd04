import assert from "node:assert/strict";
import { join } from "node:path";
import { runTask } from "./task_runner.ts";

Deno.test("eval --sweep: one point per value beside its noise control; strength 0 defends nothing; report charts it", async () => {
  const dir = await Deno.makeTempDir();
  const out = join(dir, "strength");
  const swept = await runTask("eval", [
    "--sweep",
    "strength=0,1",
    "--n",
    "40",
    "--budgets",
    "0.1",
    "--out",
    out,
  ]);
  assert.equal(swept.code, 0, swept.stderr);
  const { sweep } = JSON.parse(await Deno.readTextFile(join(out, "eval.json")));
  assert.equal(sweep[0].parameter, "strength");
  assert.deepEqual(sweep[0].points.map((p: { value: number }) => p.value), [0, 1]);
  const [zero, one] = sweep[0].points;
  assert.equal(zero.dsr, 0);
  assert.ok(zero.adversarial > 0 && zero.adversarial === one.adversarial);
  assert.ok(one.benignAccuracy > 0.7 && one.randomNoise >= 0);

  const k1 = await runTask("eval", [
    "--sweep",
    "k1=3",
    "--n",
    "20",
    "--budgets",
    "0.1",
    "--out",
    join(dir, "k1"),
  ]);
  assert.equal(k1.code, 0, k1.stderr);
  assert.match(await Deno.readTextFile(join(dir, "k1", "eval.md")), /\| 3 \| \d+\.\d% \|/);

  const report = await runTask("report", ["--in", join(out, "eval.json"), "--out", join(dir, "report")]);
  assert.equal(report.code, 0, report.stderr);
  assert.match(await Deno.readTextFile(join(dir, "report", "report.html")), /Sensitivity to strength/);

  const bad = await runTask("eval", ["--sweep", "depth=1,2"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--sweep: expected one of strength, k1, k2, layer/);
  await Deno.remove(dir, { recursive: true });
});
