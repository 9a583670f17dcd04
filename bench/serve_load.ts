/**
 * `deno task bench:serve`: a load generator over loopback gRPC. Starts an OIP model server and the
 * sidecar (`src/server/main.ts`: batching on, then off; then batching on with the model computing in the
 * server's thread instead of its worker) as child processes, and measures p50/p99 latency
 * and throughput at concurrency 1, 16 and 64 for Defend, a bare prediction through the same server
 * (Predict), Classify against the OIP upstream, and the same upstream called directly (ModelInfer).
 * One 28x28 example per request. Writes a JSON report and prints a Markdown table.
 *
 * Flags: --seconds S (per cell, default 3), --concurrency 1,16,64, --out FILE
 * (default bench/serve_load.results.json), --model DIR (default models/fashion-lenet; when it has no
 * model.json, a small demo model is trained and calibrated into a temp dir and the report says so).
 *
 * @module
 */
import type { LayersModel } from "@tensorflow/tfjs";
import { join } from "node:path";
import { initBackend } from "../src/engine/backend.ts";
import { modelHash, saveModel } from "../src/engine/model_io.ts";
import { saveProfile } from "../src/profile_io.ts";
import { DefenseClient, float32Input } from "../src/server/client.ts";
import { trainDemoPipeline } from "../src/server/demo_pipeline.ts";
import { loadFashionMnist } from "../src/data/fashion_mnist.ts";
import { OipUpstream } from "../src/upstream/oip_client.ts";

const flag = (name: string, fallback: string) => {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && Deno.args[i + 1] !== undefined ? Deno.args[i + 1] : fallback;
};
const SECONDS = Number(flag("seconds", "3"));
const CONCURRENCY = flag("concurrency", "1,16,64").split(",").map(Number);
const OUT = flag("out", "bench/serve_load.results.json");
let modelDir = flag("model", "models/fashion-lenet");
let modelSource = modelDir;

/** Latency percentiles and throughput of one cell. */
interface Cell {
  scenario: string;
  /** "on (delay N µs)", "off" or "n/a" (the upstream called directly). */
  batching: string;
  concurrency: number;
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  throughput: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Runs `call` from `concurrency` workers for `seconds` after a short warm-up. */
async function measure(
  scenario: string,
  batching: Cell["batching"],
  concurrency: number,
  call: (i: number) => Promise<unknown>,
): Promise<Cell> {
  const warmUntil = performance.now() + 300;
  await Promise.all(Array.from({ length: concurrency }, async (_, w) => {
    while (performance.now() < warmUntil) await call(w).catch(() => {});
  }));
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const end = start + SECONDS * 1000;
  let counter = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      const t = performance.now();
      try {
        await call(counter++);
        latencies.push(performance.now() - t);
      } catch {
        errors++;
      }
    }
  }));
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const cell = {
    scenario,
    batching,
    concurrency,
    requests: latencies.length,
    errors,
    p50Ms: +percentile(latencies, 50).toFixed(2),
    p99Ms: +percentile(latencies, 99).toFixed(2),
    throughput: +(latencies.length / elapsed).toFixed(1),
  };
  console.error(JSON.stringify(cell));
  return cell;
}

async function spawnUntil(args: string[], ready: RegExp, env: Record<string, string> = {}) {
  const child = new Deno.Command(Deno.execPath(), { args, env, stdout: "piped", stderr: "piped" }).spawn();
  const lines: string[] = [];
  const collect = async (stream: ReadableStream<Uint8Array<ArrayBuffer>>) => {
    let buffer = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      const parts = buffer.split("\n");
      buffer = parts.pop()!;
      lines.push(...parts);
    }
  };
  const done = Promise.all([collect(child.stdout), collect(child.stderr)]);
  const deadline = Date.now() + 60_000;
  while (!lines.some((l) => ready.test(l))) {
    if (Date.now() > deadline) throw new Error(`${args.join(" ")} did not start:\n${lines.join("\n")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    line: lines.find((l) => ready.test(l))!,
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
      await done;
    },
  };
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

const loadBefore = Deno.loadavg();
await initBackend("wasm");
if (!(await Deno.stat(join(modelDir, "model.json")).then(() => true, () => false))) {
  console.error(
    `${modelDir}/model.json not found: training the demo model (LeNet, 2 epochs on 2,000 images)`,
  );
  const demo = await trainDemoPipeline();
  modelDir = join(await Deno.makeTempDir({ prefix: "nip-bench-" }), "fashion-lenet");
  await saveModel(demo.split.model as LayersModel, modelDir);
  await saveProfile({ ...demo.profile, modelHash: await modelHash(modelDir) }, join(modelDir, "profile"));
  modelSource = "demo model (trained by the benchmark: LeNet, 2 epochs on 2,000 Fashion-MNIST images)";
}

const fashion = await loadFashionMnist();
const PIXELS = 28 * 28;
const inputs = Array.from({ length: 256 }, (_, i) => {
  const index = (i * 271) % fashion.count;
  return fashion.images.slice(index * PIXELS, (index + 1) * PIXELS);
});
const requests = inputs.map((x) => ({ input: float32Input(x, [28, 28, 1]) }));

const oipPort = freePort();
const oip = await spawnUntil(
  [
    "run",
    "-A",
    "src/upstream/oip_server.ts",
    "--model",
    modelDir,
    "--model-name",
    "fashion-lenet",
    "--bind",
    `127.0.0.1:${oipPort}`,
  ],
  /"listening"/,
);
const direct = new OipUpstream({
  address: `127.0.0.1:${oipPort}`,
  model: "fashion-lenet",
  inputName: "input",
  timeoutMs: 30_000,
  retries: 0,
});
const cells: Cell[] = [];
for (const c of CONCURRENCY) {
  cells.push(
    await measure(
      "OIP upstream direct (ModelInfer)",
      "n/a",
      c,
      (i) => direct.classify({ rows: inputs[i % inputs.length], n: 1, shape: [28, 28, 1], range: [0, 1] }),
    ),
  );
}

// The model computes in its worker (the default) but in the last mode, which measures what the worker costs.
const MODES = [
  {
    label: "on (delay 0)",
    env: { NIP_BATCHING: "on", NIP_MAX_QUEUE_DELAY_US: "0", NIP_COMPUTE_WORKER: "true" },
  },
  {
    label: "on (delay 2000 µs)",
    env: { NIP_BATCHING: "on", NIP_MAX_QUEUE_DELAY_US: "2000", NIP_COMPUTE_WORKER: "true" },
  },
  { label: "off", env: { NIP_BATCHING: "off", NIP_MAX_QUEUE_DELAY_US: "0", NIP_COMPUTE_WORKER: "true" } },
  {
    label: "on (delay 0), no compute worker",
    env: { NIP_BATCHING: "on", NIP_MAX_QUEUE_DELAY_US: "0", NIP_COMPUTE_WORKER: "false" },
  },
];
for (const mode of MODES) {
  const batching = mode.label;
  const port = freePort();
  const sidecar = await spawnUntil(
    ["run", "-A", "src/server/main.ts", "--bind", `127.0.0.1:${port}`, "--metrics-bind", ""],
    /listening|Listening/,
    {
      NIP_MODEL_DIR: modelDir,
      ...mode.env,
      NIP_UPSTREAM: "oip",
      NIP_UPSTREAM_ADDRESS: `127.0.0.1:${oipPort}`,
      NIP_UPSTREAM_MODEL: "fashion-lenet",
      NIP_LOG_LEVEL: "info",
      NIP_MAX_QUEUE_SIZE: "4096",
    },
  );
  const client = new DefenseClient(`127.0.0.1:${port}`);
  for (const c of CONCURRENCY) {
    cells.push(
      await measure(
        "Defend",
        batching,
        c,
        (i) => client.defend({ ...requests[i % requests.length], outputFormat: "OUTPUT_FORMAT_TENSOR" }),
      ),
    );
    cells.push(
      await measure(
        "Predict (bare, same server)",
        batching,
        c,
        (i) => client.predict(requests[i % requests.length]),
      ),
    );
    cells.push(
      await measure(
        "Classify (defend + OIP upstream)",
        batching,
        c,
        (i) => client.classify(requests[i % requests.length]),
      ),
    );
  }
  client.close();
  await sidecar.stop();
}
direct.close();
await oip.stop();

const find = (scenario: string, batching: string, c: number) =>
  cells.find((x) => x.scenario === scenario && x.batching === batching && x.concurrency === c)!;
const ratios = CONCURRENCY.flatMap((c) =>
  MODES.map(({ label: b }) => ({
    concurrency: c,
    batching: b,
    defendOverBareP50: +(find("Defend", b, c).p50Ms / find("Predict (bare, same server)", b, c).p50Ms)
      .toFixed(2),
    bareOverDefendThroughput:
      +(find("Predict (bare, same server)", b, c).throughput / find("Defend", b, c).throughput).toFixed(2),
    classifyOverDirectP50: +(find("Classify (defend + OIP upstream)", b, c).p50Ms /
      find("OIP upstream direct (ModelInfer)", "n/a", c).p50Ms).toFixed(2),
    directOverClassifyThroughput: +(find("OIP upstream direct (ModelInfer)", "n/a", c).throughput /
      find("Classify (defend + OIP upstream)", b, c).throughput).toFixed(2),
  }))
);
const report = {
  command: `deno task bench:serve ${Deno.args.join(" ")}`.trim(),
  date: new Date().toISOString(),
  deno: Deno.version.deno,
  backend: "wasm",
  cpus: navigator.hardwareConcurrency,
  model: modelSource,
  secondsPerCell: SECONDS,
  note: "load generator, sidecar and OIP server are three processes on the same machine (loopback)",
  // The machine is shared: the 1-minute load average before and after says how contended the run was.
  loadAverage: { before: loadBefore, after: Deno.loadavg() },
  cells,
  ratios,
};
await Deno.writeTextFile(OUT, JSON.stringify(report, null, 1) + "\n");

const rows = cells.map((c) =>
  `| ${c.scenario} | ${c.batching} | ${c.concurrency} | ${c.p50Ms} | ${c.p99Ms} | ${c.throughput} | ${c.errors} |`
);
console.log(
  [
    "| scenario | batching | concurrency | p50 ms | p99 ms | req/s | errors |",
    "|---|---|---|---|---|---|---|",
    ...rows,
  ].join("\n"),
);
console.log(
  "\n| concurrency | batching | Defend/bare p50 | bare/Defend req/s | Classify/direct p50 | direct/Classify req/s |\n|---|---|---|---|---|---|",
);
for (const r of ratios) {
  console.log(
    `| ${r.concurrency} | ${r.batching} | ${r.defendOverBareP50} | ${r.bareOverDefendThroughput} | ${r.classifyOverDirectP50} | ${r.directOverClassifyThroughput} |`,
  );
}
console.log(`\nwrote ${OUT}`);
