/**
 * `deno task start` as deno.json defines it: the same explicit permissions as the Dockerfile's entry point
 * (no `-A`), enough to serve the embedded model (image decoding in workers included) and its metrics; SIGTERM or SIGINT sent to the spawned
 * process (`deno task`, which runs the server as its child) reaches the server, which shuts down within
 * its grace period, leaving no process and no open port behind.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { encodeImage } from "../src/image/codec.ts";
import { DefenseClient, float32Input, imagesInput } from "../src/server/client.ts";
import { freePort, hasProc, portOpen, processAlive, ROOT, startTask } from "./task_start_fixture.ts";

const GRACE_MS = 5000;

Deno.test("deno task start runs with the Dockerfile's permissions, not -A", async () => {
  const task: string = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).tasks.start;
  const dockerfile = await Deno.readTextFile(join(ROOT, "Dockerfile"));
  const words: string[] = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)![1]);
  // The image runs the supervisor, which may run `deno` and nothing else, with the server as its child.
  const supervisor = words.slice(0, words.indexOf("--"));
  const entrypoint = words.slice(words.indexOf("--") + 1);
  const permissions = (words: string[]) => words.filter((w) => /^--allow-/.test(w) || w === "-A").sort();
  assert.deepEqual(permissions(supervisor), ["--allow-run=deno"]);
  assert.equal(supervisor.at(-1), "src/server/supervisor.ts");
  assert.deepEqual(permissions(task.split(/\s+/)), permissions(entrypoint));
  assert.ok(!permissions(entrypoint).includes("-A") && !permissions(entrypoint).includes("--allow-all"));
  assert.ok(task.endsWith("src/server/main.ts") && entrypoint.at(-1) === "src/server/main.ts");
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test({
    name: `deno task start serves with its permissions, and ${signal} to it stops the server`,
    ignore: !hasProc,
  }, async () => {
    const port = freePort();
    const metricsPort = freePort();
    const started = await startTask([
      "--bind",
      `127.0.0.1:${port}`,
      "--metrics-bind",
      `127.0.0.1:${metricsPort}`,
      "--shutdown-grace-ms",
      String(GRACE_MS),
    ]);
    const client = new DefenseClient(`127.0.0.1:${port}`);
    try {
      assert.notEqual(started.serverPid, started.task.pid, "deno task runs the server as a child process");
      assert.equal((await client.describe({})).modelInfo.name, "fashion-lenet");
      const answer = await client.defend({ input: float32Input(new Float32Array(28 * 28), [28, 28, 1]) });
      assert.equal(answer.verdicts.length, 1);
      // A PNG goes through the decode workers, which run with the same permissions.
      const png = encodeImage({ width: 28, height: 28, channels: 1, data: new Uint8Array(28 * 28) }, "png");
      assert.equal((await client.defend({ input: imagesInput([png]) })).verdicts.length, 1);
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      assert.match(metrics, /nip_requests_total\{code="OK",method="Defend"\} 2/);
    } finally {
      client.close();
    }
    started.task.kill(signal);
    // Nothing is in flight: the server stops well within the grace period; the bound only keeps a broken
    // forwarding from hanging the test.
    let timer: number | undefined;
    const status = await Promise.race([
      started.task.status,
      new Promise<undefined>((resolve) => timer = setTimeout(resolve, GRACE_MS + 30_000)),
    ]);
    clearTimeout(timer);
    if (!status) {
      Deno.kill(started.serverPid, "SIGKILL");
      assert.fail(`${signal} to deno task did not stop the server`);
    }
    await started.drained;
    assert.equal(status.code, 0, started.lines.join("\n"));
    assert.equal(processAlive(started.serverPid), false, "the server process is still running");
    assert.equal(await portOpen(port), false, "the gRPC port is still open");
    assert.equal(await portOpen(metricsPort), false, "the metrics port is still open");
    const messages = started.lines.map((l) => JSON.parse(l).msg);
    assert.ok(messages.includes("stopped"), messages.join(","));
    assert.ok(!messages.some((m) => m.startsWith("grace period over")), messages.join(","));
  });
}
