/**
 * `deno task fuzz`: a seeded fuzzer over the sidecar's whole API (Defend, Classify, DefendStream,
 * ClassifyStream, Predict, Describe, Certify, health Check): valid requests, mutated tensors, hostile
 * PNG/JPEG/WAV files, wrong fields, garbage protobuf bytes and oversized metadata. Each answer is judged
 * (right status in time, never INTERNAL/UNKNOWN/a dropped call); health is sampled throughout (a check over
 * 100 ms is a stall), metrics are scraped, and in-process the tensor count must be flat.
 *
 * Flags:
 *   --cases N            cases to run (default 2000)
 *   --seed S             the run's seed (default 1); case ids are <seed>-<index>
 *   --target HOST:PORT   fuzz a running sidecar (default: start the image sidecar, with an OIP upstream,
 *                        and the audio sidecar, each a child process, src/fuzz/sidecar_main.ts, whose
 *                        death is reported with its signal and stderr, and whose tensor count is read)
 *   --audio-target HOST:PORT   with --target: a sidecar serving an audio model
 *   --metrics-url URL    with --target: its /metrics to scrape
 *   --no-audio           without --target: the image sidecar only
 *   --concurrency C      calls in flight (default 8)
 *   --case-timeout-ms T  each call's deadline (default 5000)
 *   --replay ID          run one case (e.g. 1-1234) and print it in full; give the same --target /
 *                        --audio-target / --no-audio as the run (a case's target depends on them)
 *   --out FILE           results JSON (default out/fuzz/fuzz-<seed>.json; the Markdown report beside it)
 *
 * Exit status: 0 when no case failed, 1 otherwise.
 *
 * @module
 */
import { dirname } from "node:path";
import { generateCase, parseCaseId } from "../fuzz/cases.ts";
import { describeExit } from "../fuzz/child.ts";
import { type FuzzServers, startFuzzServers } from "../fuzz/servers.ts";
import { judge } from "../fuzz/oracle.ts";
import { markdownReport } from "../fuzz/report.ts";
import { describeTarget, type FuzzTarget, runCase, runFuzz } from "../fuzz/runner.ts";
import { RawClient } from "../fuzz/transport.ts";
import { numberFlag, parseFlags, runMain, UsageError } from "./args.ts";
import { createProgress } from "./progress.ts";

async function replay(target: FuzzTarget, id: string, timeoutMs: number): Promise<boolean> {
  const { seed, index } = parseCaseId(id);
  const { models, context } = await describeTarget(target);
  const c = generateCase(seed, index, models);
  const clients: Record<string, RawClient> = { image: new RawClient(target.image) };
  if (target.audio) clients.audio = new RawClient(target.audio);
  const result = await runCase(c, clients, timeoutMs);
  for (const client of Object.values(clients)) client.close();
  const findings = judge(c, result, context);
  console.log(JSON.stringify(
    {
      id: c.id,
      rpc: c.rpc,
      target: c.target,
      family: c.family,
      mutation: c.mutation,
      expect: c.expect,
      metadataKeys: Object.keys(c.metadata).length,
      messages: c.messages.map((m) => ({ bytes: m.length, head: Array.from(m.subarray(0, 48)) })),
      status: result.code,
      details: result.details,
      answers: result.answers.length,
      ms: Math.round(result.ms),
      findings,
    },
    null,
    1,
  ));
  return findings.length === 0;
}

async function main() {
  const flags = parseFlags({
    cases: { type: "string", default: "2000" },
    seed: { type: "string", default: "1" },
    target: { type: "string" },
    "audio-target": { type: "string" },
    "metrics-url": { type: "string" },
    "no-audio": { type: "boolean", default: false },
    concurrency: { type: "string", default: "8" },
    "case-timeout-ms": { type: "string", default: "5000" },
    replay: { type: "string" },
    out: { type: "string" },
  });
  const seed = numberFlag("seed", flags.seed, 0, 2 ** 31 - 1);
  const cases = numberFlag("cases", flags.cases, 1);
  const concurrency = numberFlag("concurrency", flags.concurrency, 1, 1024);
  const caseTimeoutMs = numberFlag("case-timeout-ms", flags["case-timeout-ms"], 1);
  if (!flags.target && (flags["audio-target"] || flags["metrics-url"])) {
    throw new UsageError("--audio-target and --metrics-url go with --target");
  }
  let servers: FuzzServers | undefined;
  let target: FuzzTarget;
  if (flags.target) {
    target = { image: flags.target, audio: flags["audio-target"], metricsUrl: flags["metrics-url"] };
  } else {
    servers = await startFuzzServers(!flags["no-audio"]);
    target = servers.target;
  }
  let ok: boolean;
  if (flags.replay) ok = await replay(target, flags.replay, caseTimeoutMs);
  else {
    const progress = createProgress();
    const results = await runFuzz(target, {
      seed,
      cases,
      concurrency,
      caseTimeoutMs,
      onProgress: (done, total, failed) => progress.update(`fuzz (${failed} failed)`, done, total),
    });
    progress.stop();
    const exits = await servers?.stop() ?? [];
    servers = undefined;
    // A crash at teardown (the nghttp2 assertion CONTRIBUTING.md mentions) is a finding too.
    const bad = exits.filter((e) => e.code !== 0 || e.signal);
    if (bad.length > 0 && !results.findings["server-crashed"]) {
      results.findings["shutdown-crashed"] = {
        count: bad.length,
        examples: bad.map((e) => `${describeExit(e)}: ${e.tail.slice(-5).join(" / ")}`),
      };
    }
    const out = flags.out ?? `out/fuzz/fuzz-${seed}.json`;
    await Deno.mkdir(dirname(out), { recursive: true });
    await Deno.writeTextFile(out, JSON.stringify(results, null, 1) + "\n");
    const markdown = markdownReport(results, `deno task fuzz ${Deno.args.join(" ")}`.trim());
    await Deno.writeTextFile(out.replace(/\.json$/, "") + ".md", markdown);
    console.log(markdown);
    console.log(`wrote ${out} and ${out.replace(/\.json$/, "")}.md`);
    ok = Object.keys(results.findings).length === 0;
  }
  await servers?.stop();
  // grpc-js keeps timers alive after its channels close; the run is over.
  Deno.exit(ok ? 0 : 1);
}

await runMain(main, import.meta.url);
