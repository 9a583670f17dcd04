/**
 * `deno task start` end to end (src/server/main.ts as a child process on a model saved to disk):
 * config from flags/env/file, graceful shutdown on SIGTERM and SIGINT with a call in flight (the call
 * completes, the process exits 0). TLS and mTLS: server_tls_test.ts.
 */
import type { LayersModel } from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../src/engine/backend.ts";
import { modelHash, saveModel } from "../src/engine/model_io.ts";
import { saveProfile } from "../src/profile_io.ts";
import { DefenseClient, float32Input } from "../src/server/client.ts";
import { trainDemoPipeline } from "../src/server/demo_pipeline.ts";
import { startOipServer } from "../src/upstream/oip_server.ts";

await initBackend("wasm");
const pipeline = await trainDemoPipeline({ seed: 4 });
const tmp = await Deno.makeTempDir({ prefix: "nip-sidecar-test-" });
const modelDir = join(tmp, "fashion-lenet");
await saveModel(pipeline.split.model as LayersModel, modelDir);
await saveProfile({ ...pipeline.profile, modelHash: await modelHash(modelDir) }, join(modelDir, "profile"));
const PIXELS = 28 * 28;
const one = { input: float32Input(pipeline.test.images.slice(0, PIXELS), [28, 28, 1]) };

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Starts main.ts and resolves when it logs "listening"; collects its JSON log lines. */
async function startMain(args: string[], env: Record<string, string> = {}) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/server/main.ts", ...args],
    env,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      const parts = buffer.split("\n");
      buffer = parts.pop()!;
      lines.push(...parts);
    }
  })();
  const deadline = Date.now() + 30_000;
  while (!lines.some((l) => l.includes('"listening"'))) {
    if (Date.now() > deadline) throw new Error(`main.ts did not start:\n${lines.join("\n")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, lines, pump };
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`main.ts serves the model from disk and on ${signal} finishes the call in flight, then exits 0`, async () => {
    const slow = await startOipServer({
      model: pipeline.split.model,
      modelName: "fashion-lenet",
      delayMs: 700,
    });
    const port = freePort();
    const configFile = join(tmp, "sidecar.json");
    await Deno.writeTextFile(
      configFile,
      JSON.stringify({ bind: "127.0.0.1:1", logLevel: "info", upstream: { kind: "oip" } }),
    );
    const main = await startMain(
      ["--config", configFile, "--bind", `127.0.0.1:${port}`, "--metrics-bind", ""],
      { NIP_MODEL_DIR: modelDir, NIP_UPSTREAM_ADDRESS: slow.address, NIP_BATCHING: "off" },
    );
    const client = new DefenseClient(`127.0.0.1:${port}`);
    try {
      const info = await client.describe({});
      assert.equal(info.modelInfo.name, "fashion-lenet");
      assert.equal(info.modelInfo.candidateCount, pipeline.profile.candidateCount);
      const inFlight = client.classify(one, { timeoutMs: 10_000 });
      // Signal only once the call is in flight (the upstream holds it for 700 ms), however loaded the machine.
      const reached = Date.now() + 10_000;
      while (slow.receivedCalls === 0 && Date.now() < reached) await new Promise((r) => setTimeout(r, 10));
      assert.equal(slow.receivedCalls, 1, "the call never reached the upstream");
      main.child.kill(signal);
      const answer = await inFlight;
      assert.equal(answer.answers.length, 1);
      const status = await main.child.status;
      assert.equal(status.code, 0);
      await main.pump;
      const messages = main.lines.map((l) => JSON.parse(l).msg);
      assert.ok(messages.includes("shutting down") && messages.includes("stopped"), messages.join(","));
      const listening = JSON.parse(main.lines.find((l) => l.includes('"listening"'))!);
      assert.equal(listening.grpc, `127.0.0.1:${port}`);
      assert.equal(listening.batching.enabled, false);
    } finally {
      client.close();
      await slow.close();
    }
  });
}

Deno.test("main.ts exits 2 with the reason on a bad flag, 1 when the model is missing", async () => {
  const bad = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/server/main.ts", "--max-batch-size", "x"],
    stderr: "piped",
  })
    .output();
  assert.equal(bad.code, 2);
  assert.match(new TextDecoder().decode(bad.stderr), /batching.maxBatchSize \(flag --max-batch-size\)/);
  const missing = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "src/server/main.ts",
      "--model",
      join(tmp, "nope"),
      "--bind",
      "127.0.0.1:0",
      "--metrics-bind",
      "",
    ],
    stderr: "piped",
  }).output();
  assert.equal(missing.code, 1);
  assert.match(new TextDecoder().decode(missing.stderr), /startup failed/);
});

Deno.test("cleanup", async () => {
  await Deno.remove(tmp, { recursive: true });
  assert.equal(await Deno.stat(tmp).then(() => true, () => false), false);
});
