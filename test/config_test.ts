import assert from "node:assert/strict";
import {
  ConfigError,
  defaultConfig,
  helpText,
  loadConfig,
  OPTIONS,
  parseFlags,
} from "../src/server/config.ts";

const noFile = (path: string): string => {
  throw new Error(`unexpected read of ${path}`);
};

Deno.test("defaults: loopback bind, embedded model, profile under the model dir, batching on", () => {
  const c = loadConfig({ args: [], env: {}, readTextFile: noFile });
  assert.equal(c.bind, "127.0.0.1:50051");
  assert.equal(c.modelDir, "models/fashion-lenet");
  assert.equal(c.profileDir, "models/fashion-lenet/profile");
  assert.equal(c.batching.enabled, true);
  assert.equal(c.upstream.kind, "none");
  assert.equal(c.computeWorker, true);
  assert.equal(c.maxCallsPerConnection, 50);
});

Deno.test("precedence is flags > env > file > defaults, per option", () => {
  const file = JSON.stringify({
    bind: "127.0.0.1:1111",
    metricsBind: "127.0.0.1:2222",
    batching: { maxBatchSize: 8, maxQueueDelayMicros: 500 },
    upstream: { kind: "oip", address: "127.0.0.1:8001", headers: { a: "b" } },
  });
  const c = loadConfig({
    args: ["--config", "sidecar.json", "--bind=0.0.0.0:3333", "--no-batching"],
    env: { NIP_BIND: "127.0.0.1:4444", NIP_METRICS_BIND: "127.0.0.1:5555", NIP_MAX_BATCH_SIZE: "16" },
    readTextFile: (p) => (p === "sidecar.json" ? file : noFile(p)),
  });
  assert.equal(c.bind, "0.0.0.0:3333"); // flag beats env and file
  assert.equal(c.metricsBind, "127.0.0.1:5555"); // env beats file
  assert.equal(c.batching.maxBatchSize, 16); // env beats file
  assert.equal(c.batching.maxQueueDelayMicros, 500); // file beats default
  assert.equal(c.batching.maxQueueSize, defaultConfig().batching.maxQueueSize); // default
  assert.equal(c.batching.enabled, false);
  assert.equal(c.upstream.kind, "oip");
  assert.deepEqual(c.upstream.headers, { a: "b" });
});

Deno.test("NIP_CONFIG names the file; booleans and JSON objects parse from env", () => {
  const c = loadConfig({
    args: [],
    env: {
      NIP_CONFIG: "f.json",
      NIP_BATCHING: "off",
      NIP_UPSTREAM_HEADERS: '{"authorization":"Bearer x"}',
      NIP_UPSTREAM: "http",
      NIP_UPSTREAM_URL: "http://127.0.0.1:9/v1/classify",
      NIP_UPSTREAM_ANSWER_PATH: "$.label",
    },
    readTextFile: () => '{"logLevel": "debug"}',
  });
  assert.equal(c.logLevel, "debug");
  assert.equal(c.batching.enabled, false);
  assert.deepEqual(c.upstream.headers, { authorization: "Bearer x" });
  assert.equal(loadConfig({ args: [], env: { NIP_COMPUTE_WORKER: "false" } }).computeWorker, false);
  assert.equal(loadConfig({ args: ["--no-compute-worker"], env: {} }).computeWorker, false);
});

Deno.test("bad values fail naming the option and its source", () => {
  const load = (args: string[], env: Record<string, string> = {}, file = "{}") =>
    loadConfig({ args, env, readTextFile: () => file });
  assert.throws(() => load(["--max-batch-size", "lots"]), /batching.maxBatchSize \(flag --max-batch-size\)/);
  assert.throws(() => load([], { NIP_BACKEND: "gpu" }), /backend \(env NIP_BACKEND\): "gpu" is not one of/);
  assert.throws(
    () => load(["--config", "x.json"], {}, '{"batching": {"maxBatchSise": 3}}'),
    /unknown option "batching.maxBatchSise"/,
  );
  assert.throws(() => load(["--config", "x.json"], {}, "{not json"), /config file x.json/);
  assert.throws(() => load(["--bogus"]), /unknown flag --bogus/);
  assert.throws(
    () => load(["--max-calls-per-connection", "-1"]),
    /maxCallsPerConnection \(flag --max-calls-per-connection\): expected a non-negative integer, got "-1"/,
  );
  assert.throws(() => load([], { NIP_COMPUTE_WORKER: "maybe" }), /computeWorker \(env NIP_COMPUTE_WORKER\)/);
  assert.throws(() => load(["--bind"]), /--bind needs a value/);
  assert.throws(() => load(["--bind", "nowhere"]), /bind: "nowhere" is not host:port/);
  assert.throws(() => load(["--upstream", "oip"]), /upstream.address/);
  assert.throws(() => load(["--upstream", "http", "--upstream-url", "http://x/"]), /answerPath/);
  assert.throws(() => load(["--tls-cert", "c.pem"]), /must be given together/);
  assert.throws(
    () => load(["--tls-cert", "c", "--tls-key", "k", "--tls-require-client-cert"]),
    /clientCaFile/,
  );
  // A client CA without "require" used to accept clients without a trusted certificate, silently.
  assert.throws(
    () => load(["--tls-cert", "c", "--tls-key", "k", "--tls-client-ca", "ca"]),
    /add --tls-require-client-cert/,
  );
  assert.equal(
    load(["--tls-cert", "c", "--tls-key", "k", "--tls-client-ca", "ca", "--tls-require-client-cert"]).tls
      .requireClientCert,
    true,
  );
  assert.throws(() => load(["positional"]), ConfigError);
  assert.throws(
    () => load(["--alpha", "2"]),
    /alpha \(flag --alpha\): expected a number in \(0, 1\), got "2"/,
  );
  assert.throws(() => load([], { NIP_POLICY: "block" }), /policy \(env NIP_POLICY\): "block" is not one of/);
  assert.throws(() => load(["--defense", "jc nip"]), /defense: "jc nip" must be stage names joined by \+/);
  const detecting = load(["--policy", "reject", "--alpha", "0.01", "--defense", "detect+nip"]);
  assert.deepEqual([detecting.policy, detecting.alpha, detecting.defense], ["reject", 0.01, "detect+nip"]);
  assert.throws(() => load(["--stage-settings", "sigma=0.5"]), /stageSettings: expected stage.setting=value/);
  const smoothing = load(["--defense", "smooth", "--policy", "smoothed-reject"], {
    NIP_STAGE_SETTINGS: "smooth.sigma=0.5,smooth.n=10000",
  });
  assert.deepEqual([smoothing.policy, smoothing.stageSettings], [
    "smoothed-reject",
    "smooth.sigma=0.5,smooth.n=10000",
  ]);
});

Deno.test("every option has a unique flag and env name and appears in --help", () => {
  const flags = new Set(OPTIONS.map((o) => o.flag));
  const envs = new Set(OPTIONS.map((o) => o.env));
  assert.equal(flags.size, OPTIONS.length);
  assert.equal(envs.size, OPTIONS.length);
  const help = helpText();
  for (const o of OPTIONS) assert.ok(help.includes(`--${o.flag}`) && help.includes(o.env), o.flag);
  assert.deepEqual([...parseFlags(["--batching", "false"]).values], [["batching.enabled", "false"]]);
});
