/**
 * An HTTP upstream's credentials (a query parameter, a header) never leave the sidecar: not in
 * `Describe`, not in `Classify` errors (upstream down; upstream answering 401 and quoting them back), not in
 * the log lines, not in `/metrics`. Real gRPC and HTTP on loopback.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { initBackend } from "../src/engine/backend.ts";
import { DefenseClient, float32Input } from "../src/server/client.ts";
import { defaultConfig, type SidecarConfig } from "../src/server/config.ts";
import { trainDemoPipeline } from "../src/server/demo_pipeline.ts";
import { ServingEngine } from "../src/server/engine.ts";
import { createLogger } from "../src/server/log.ts";
import { REDACTED } from "../src/server/redact.ts";
import { startSidecar } from "../src/server/server.ts";
import { createUpstream } from "../src/server/upstream_factory.ts";

await initBackend("wasm");
const pipeline = await trainDemoPipeline({ seed: 3 });
const engine = new ServingEngine(pipeline);
const request = { input: float32Input(pipeline.test.images.slice(0, 28 * 28), [28, 28, 1]) };

const QUERY_SECRET = "qs-7f3a9c2e51";
const HEADER_SECRET = "hs-b41d08e6aa";
const SECRETS = [QUERY_SECRET, HEADER_SECRET];

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function httpConfig(url: string): SidecarConfig {
  const config = defaultConfig();
  config.bind = "127.0.0.1:0";
  config.metricsBind = "127.0.0.1:0";
  config.logLevel = "debug";
  config.upstream = {
    ...config.upstream,
    kind: "http",
    url: `${url}?api_key=${QUERY_SECRET}&model=fashion`,
    // PUT is idempotent, so a refused connection is retried and the retries are logged too.
    method: "PUT",
    headers: { Authorization: `Bearer ${HEADER_SECRET}` },
    bodyTemplate: '{"instances": [{{tensor}}]}',
    answerPath: "$.label",
    retries: 1,
    timeoutMs: 2000,
  };
  return config;
}

function assertNoSecret(where: string, text: string) {
  for (const secret of SECRETS) assert.ok(!text.includes(secret), `${where} shows ${secret}: ${text}`);
}

/** Describe, one failing Classify, the log lines and /metrics of a sidecar forwarding to `url`. */
async function exposedText(url: string, code: grpc.status) {
  const lines: string[] = [];
  const log = createLogger("debug", (line) => lines.push(line));
  const config = httpConfig(url);
  const sidecar = await startSidecar({
    config,
    engines: [engine],
    upstream: createUpstream(config, engine.name, log),
    logger: log,
  });
  const client = new DefenseClient(`127.0.0.1:${sidecar.port}`);
  try {
    const described = await client.describe({});
    assert.match(described.upstream, new RegExp(`api_key=${REDACTED}`));
    const error = await client.classify(request, { timeoutMs: 10_000 }).then(
      () => assert.fail("Classify succeeded against a failing upstream"),
      (e: grpc.ServiceError) => e,
    );
    assert.equal(grpc.status[error.code], grpc.status[code], error.details);
    const metrics = await (await fetch(`http://127.0.0.1:${sidecar.metricsPort}/metrics`)).text();
    assert.match(metrics, /nip_upstream_errors_total/);
    return { describe: described.upstream, error: error.details, logs: lines.join("\n"), metrics };
  } finally {
    client.close();
    await sidecar.shutdown();
  }
}

Deno.test("upstream down: the secret query parameter and header appear nowhere", async () => {
  const seen = await exposedText(`http://127.0.0.1:${freePort()}/predict`, grpc.status.UNAVAILABLE);
  assert.match(seen.error, /unavailable/);
  assert.match(seen.logs, /retrying upstream call/);
  for (const [where, text] of Object.entries(seen)) assertNoSecret(where, text);
});

Deno.test("upstream 401 quoting the credentials back: they appear nowhere", async () => {
  // An API that echoes what it was sent, as some do in their error bodies.
  const api = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) =>
    new Response(
      JSON.stringify({ error: "bad key", url: req.url, authorization: req.headers.get("authorization") }),
      { status: 401 },
    ));
  try {
    const seen = await exposedText(`http://127.0.0.1:${api.addr.port}/predict`, grpc.status.UNAUTHENTICATED);
    assert.match(seen.error, /HTTP 401: .*bad key/);
    assert.match(seen.error, new RegExp(REDACTED));
    for (const [where, text] of Object.entries(seen)) assertNoSecret(where, text);
  } finally {
    await api.shutdown();
  }
});
