/**
 * `deno task bench:certify`: the latency of randomized smoothing through the sidecar over loopback gRPC,
 * as ratios to a bare `Predict` of the same image in the same run: `Defend` with the smoothing stage
 * answering (PREDICT, n = 100 noisy forwards), and `Certify` at n = 1,000 and n = 10,000 (n0 = 100), with
 * the profile's denoiser for sigma 0.25. One image per request, calls one after another; the sidecar
 * runs in this process. Writes `bench/certify_serve.results.json` and prints a Markdown table.
 *
 * @module
 */
import { loadNamedDataset } from "../src/data/named_datasets.ts";
import { samplePart } from "../src/data/splits.ts";
import { loadPipeline } from "../src/pipeline.ts";
import { DefenseClient, float32Input } from "../src/server/client.ts";
import { defaultConfig } from "../src/server/config.ts";
import { ServingEngine } from "../src/server/engine.ts";
import { createLogger } from "../src/server/log.ts";
import { startSidecar } from "../src/server/server.ts";

const pipeline = await loadPipeline({ defenses: ["smooth"], overrides: { smooth: { sigma: 0.25 } } });
const engine = new ServingEngine(pipeline);
await engine.warmUp();
const config = defaultConfig();
config.bind = "127.0.0.1:0";
config.metricsBind = "";
const sidecar = await startSidecar({ config, engines: [engine], logger: createLogger("error", () => {}) });
const client = new DefenseClient(`127.0.0.1:${sidecar.port}`);
const { dataset, split } = await loadNamedDataset("fashion-mnist");
const test = samplePart(dataset, split, "test", 1, { seed: 11 });
const input = float32Input(test.images, [1, 28, 28, 1]);

/** Median milliseconds of `calls` sequential calls after `warmup` unmeasured ones. */
async function median(calls: number, warmup: number, call: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < warmup; i++) await call();
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const start = performance.now();
    await call();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

const cases: [string, number, number, () => Promise<unknown>][] = [
  ["Predict (bare forward)", 200, 20, () => client.predict({ input })],
  ["Defend, smoothing answers (PREDICT, n 100)", 40, 4, () => client.defend({ input })],
  ["Certify, n0 100 + n 1,000", 20, 2, () => client.certify({ input, n: 1000, seed: 1 })],
  ["Certify, n0 100 + n 10,000", 5, 1, () => client.certify({ input, n: 10_000, seed: 1 })],
];
const rows: { case: string; medianMs: number; ratio: number; forwards: number }[] = [];
const forwards = [1, 100, 1100, 10_100];
for (const [i, [name, calls, warmup, call]] of cases.entries()) {
  const ms = await median(calls, warmup, call);
  rows.push({ case: name, medianMs: ms, ratio: ms / (rows[0]?.medianMs ?? ms), forwards: forwards[i] });
}
client.close();
await sidecar.shutdown();
const report = {
  command: "deno task bench:certify",
  denoiser: String(engine.certifierSettings.denoiser),
  sigma: Number(engine.certifierSettings.sigma),
  rows,
  createdAt: new Date().toISOString(),
};
await Deno.writeTextFile("bench/certify_serve.results.json", JSON.stringify(report, null, 2) + "\n");
console.log(`denoiser ${report.denoiser}, sigma ${report.sigma}\n`);
console.log("| call (one image) | forwards | median ms | ratio to Predict |\n|---|---|---|---|");
for (const r of rows) {
  console.log(`| ${r.case} | ${r.forwards} | ${r.medianMs.toFixed(1)} | ${r.ratio.toFixed(1)}x |`);
}
engine.dispose();
pipeline.defense.dispose();
