/**
 * The supervisor with real child processes: a child that aborts (SIGABRT, as nghttp2's assertion does) is
 * started again, SIGTERM reaches the running child and ends supervision with its code, a child's own exit
 * code passes through without a restart, and a crash loop ends in exit 1.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseSupervisorArgs, supervise } from "../src/server/supervisor.ts";

const CHILD = join(import.meta.dirname!, "fixtures", "supervisor", "child.ts");

function childCommand(mode: string, file: string): string[] {
  return [Deno.execPath(), "run", `--allow-read=${file}`, `--allow-write=${file}`, CHILD, mode, file];
}

async function lines(file: string): Promise<string[]> {
  return (await Deno.readTextFile(file).catch(() => "")).split("\n").filter(Boolean);
}

async function waitFor(condition: () => Promise<boolean>, what: string) {
  const until = Date.now() + 30_000;
  while (!await condition()) {
    assert.ok(Date.now() < until, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("a child that aborts is started again; SIGTERM reaches the new one and ends supervision with 0", async () => {
  const file = await Deno.makeTempFile();
  const events: string[] = [];
  const supervision = supervise({
    command: childCommand("crash-once", file),
    maxRestarts: 5,
    windowMs: 60_000,
    log: (message, fields) => events.push(`${message} ${fields.signal ?? ""}`.trim()),
  });
  await waitFor(async () => (await lines(file)).includes("ready"), "the restarted child");
  supervision.stop("SIGTERM");
  assert.equal(await supervision.done, 0);
  assert.deepEqual(await lines(file), ["start 1", "start 2", "ready", "sigterm"]);
  assert.deepEqual(events, ["started", "died SIGABRT", "started"]);
  assert.equal(supervision.starts, 2);
  await Deno.remove(file);
});

Deno.test("a child's own exit code passes through without a restart", async () => {
  const file = await Deno.makeTempFile();
  const supervision = supervise({
    command: childCommand("exit-3", file),
    maxRestarts: 5,
    windowMs: 60_000,
    log: () => {},
  });
  assert.equal(await supervision.done, 3);
  assert.deepEqual(await lines(file), ["start 1"]);
  await Deno.remove(file);
});

Deno.test("more crashes than the budget within the window: supervision gives up with 1", async () => {
  const file = await Deno.makeTempFile();
  const events: string[] = [];
  const supervision = supervise({
    command: childCommand("crash-always", file),
    maxRestarts: 2,
    windowMs: 60_000,
    log: (message) => events.push(message),
  });
  assert.equal(await supervision.done, 1);
  assert.equal((await lines(file)).length, 3);
  assert.equal(events.at(-1), "giving up");
  await Deno.remove(file);
});

Deno.test("arguments: flags before --, the command after; bad values and a missing command are named", () => {
  assert.deepEqual(parseSupervisorArgs(["--max-restarts", "3", "--", "deno", "run", "x.ts"]), {
    command: ["deno", "run", "x.ts"],
    maxRestarts: 3,
    windowMs: 60_000,
  });
  assert.throws(() => parseSupervisorArgs(["deno", "run"]), /usage: supervisor\.ts/);
  assert.throws(() => parseSupervisorArgs(["--window-ms", "-1", "--", "deno"]), /--window-ms: -1/);
  assert.throws(() => parseSupervisorArgs(["--restarts", "1", "--", "deno"]), /unknown flag --restarts/);
});
