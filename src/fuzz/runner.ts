/**
 * Runs fuzz cases against a target with bounded concurrency while the {@link Monitor} samples health and
 * metrics, then checks what no single case shows: the server still answers, health never stalled, metrics
 * scraped, and (in-process) the tensor count is back to its baseline.
 *
 * @module
 */
import { DefenseClient, droppedConnection, STREAM_RETRIES } from "../server/client.ts";
import { type FuzzCase, generateCase, isStream, type Models, type Rpc, RPC_PATHS } from "./cases.ts";
import type { ModelShape } from "./inputs.ts";
import { Monitor, type MonitorReport, percentile, STALL_MS } from "./monitor.ts";
import { codeName, judge, type OracleContext, streamAnswerCodes } from "./oracle.ts";
import { type CallResult, RawClient } from "./transport.ts";

/** Where the cases go. */
export interface FuzzTarget {
  /** gRPC address of the image model's sidecar (or of the only sidecar). */
  image: string;
  /** gRPC address of an audio model's sidecar, when there is one. */
  audio?: string;
  /** An idle sidecar of the image target's kind on the same machine that gets no cases: the control. */
  control?: string;
  /** `/metrics` URL to scrape during the run. */
  metricsUrl?: string;
  /** The server's live tensor count, when the target exports it (the fuzzer's own child sidecar). */
  tensors?: () => Promise<number>;
  /** Whether the server process died and how (when the fuzzer started it). */
  death?: () => string | undefined;
}

/** How to run. */
export interface FuzzOptions {
  seed: number;
  cases: number;
  /** Index of the first case (a replay runs one case from its index). */
  first?: number;
  concurrency: number;
  /** Each call's deadline; no status 2 s after it is a hang. */
  caseTimeoutMs: number;
  onProgress?: (done: number, total: number, failed: number) => void;
}

/** One case's outcome. */
export interface CaseRecord {
  id: string;
  rpc: Rpc;
  target: "image" | "audio";
  family: string;
  mutation: string;
  expect: string;
  /** Final status name (HANG when none came). */
  status: string;
  /** Stream cases: the status of each message's answer, in message order ("-" when missing). */
  messageStatuses?: string[];
  ms: number;
  details: string;
  findings: string[];
}

/** A whole run's results. */
export interface FuzzResults {
  seed: number;
  cases: number;
  concurrency: number;
  caseTimeoutMs: number;
  startedAt: string;
  seconds: number;
  targets: { image: string; audio?: string; upstream: OracleContext["upstream"] };
  /** RPC -> status -> count. */
  table: Record<string, Record<string, number>>;
  /** RPC -> p50 and p99 call latency (ms) over all its cases. */
  latency: Record<string, { p50Ms: number; p99Ms: number }>;
  /** Finding category -> count and up to 5 example case ids. */
  findings: Record<string, { count: number; examples: string[] }>;
  /** Failed cases (at most 300). */
  failures: CaseRecord[];
  monitor: MonitorReport;
  tensors?: { before: number; after: number };
  /** Reruns of cases whose connection dropped them at a GOAWAY (`droppedConnection` in `src/server/client.ts`). */
  rerunAfterGoaway: number;
}

function modelShape(info: Record<string, unknown>): ModelShape {
  const shape = (info.inputShape as number[]).map(Number) as [number, number, number];
  return {
    modality: info.modality === "audio" ? "audio" : "image",
    shape,
    range: [Number(info.inputMin), Number(info.inputMax)],
    sampleRate: Number(info.sampleRate),
  };
}

/** Asks each target's `Describe` what it serves, and whether Classify has an upstream. */
export async function describeTarget(
  target: FuzzTarget,
): Promise<{ models: Models; context: OracleContext }> {
  const ask = async (address: string) => {
    const client = new DefenseClient(address);
    try {
      return await client.describe({}, { timeoutMs: 10_000 });
    } finally {
      client.close();
    }
  };
  const image = await ask(target.image);
  const models: Models = {};
  const first = modelShape(image.modelInfo);
  models[first.modality] = first;
  const context: OracleContext = { upstream: { image: image.upstream !== "", audio: image.upstream !== "" } };
  if (target.audio) {
    const audio = await ask(target.audio);
    models.audio = modelShape(audio.modelInfo);
    context.upstream.audio = audio.upstream !== "";
  }
  return { models, context };
}

/** Runs one case on the right client. */
export function runCase(
  c: FuzzCase,
  clients: Record<string, RawClient>,
  timeoutMs: number,
): Promise<CallResult> {
  const client = clients[c.target] ?? clients.image;
  return isStream(c.rpc)
    ? client.stream(RPC_PATHS[c.rpc], c.messages, c.metadata, timeoutMs)
    : client.unary(RPC_PATHS[c.rpc], c.messages[0], c.metadata, timeoutMs);
}

function messageStatuses(c: FuzzCase, result: CallResult): string[] | undefined {
  if (!isStream(c.rpc)) return undefined;
  const codes = streamAnswerCodes(result.answers);
  return c.messages.map((_, i) => {
    const code = codes.get(i);
    return code === undefined ? "-" : codeName(code);
  });
}

/** Generates and runs `options.cases` cases, then runs the global checks. */
export async function runFuzz(target: FuzzTarget, options: FuzzOptions): Promise<FuzzResults> {
  const { models, context } = await describeTarget(target);
  const clients: Record<string, RawClient> = { image: new RawClient(target.image) };
  if (target.audio) clients.audio = new RawClient(target.audio);
  const first = options.first ?? 0;
  // Warm-up: cases of a different seed, so lazily built state (the first batch, the certifier) exists
  // before the tensor baseline is read.
  for (let i = 0; i < 64; i++) {
    await runCase(generateCase(options.seed ^ 0x5eed, i, models), clients, options.caseTimeoutMs);
  }
  await settle();
  const before = await target.tensors?.();
  const inFlight = new Set<string>();
  const monitor = await Monitor.start(
    target.image,
    target.metricsUrl,
    () => [...inFlight],
    50,
    target.control,
  );
  const started = new Date();
  const t0 = performance.now();
  const records: CaseRecord[] = [];
  let next = first;
  let done = 0;
  let failed = 0;
  let rerunAfterGoaway = 0;
  const worker = async () => {
    // After the server died every call would fail the same way: stop, the cases in flight are the suspects.
    while (next < first + options.cases && !target.death?.()) {
      const c = generateCase(options.seed, next++, models);
      inFlight.add(c.id);
      let result = await runCase(c, clients, options.caseTimeoutMs);
      // The sidecar's GOAWAY (its calls-per-connection cap) ends the streams Deno's HTTP/2 client has open;
      // gRPC clients retry that UNAVAILABLE, and so does the fuzzer, as often as the project's client does,
      // counting each rerun.
      for (let rerun = 0; rerun < STREAM_RETRIES && droppedConnection(result.code, result.details); rerun++) {
        rerunAfterGoaway++;
        result = await runCase(c, clients, options.caseTimeoutMs);
      }
      inFlight.delete(c.id);
      const findings = judge(c, result, context);
      if (findings.length > 0) failed++;
      records.push({
        id: c.id,
        rpc: c.rpc,
        target: c.target,
        family: c.family,
        mutation: c.mutation,
        expect: c.expect.join(","),
        status: codeName(result.code),
        messageStatuses: messageStatuses(c, result),
        ms: Math.round(result.ms * 10) / 10,
        details: result.details.slice(0, 300),
        findings,
      });
      options.onProgress?.(++done, options.cases, failed);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const monitorReport = await monitor.stop();
  const seconds = (performance.now() - t0) / 1000;
  await settle();
  const after = target.death?.() ? undefined : await target.tensors?.();
  const global = await globalFindings(target, clients, monitorReport, before, after);
  for (const client of Object.values(clients)) client.close();
  return summarize(records, global, {
    seed: options.seed,
    cases: options.cases,
    concurrency: options.concurrency,
    caseTimeoutMs: options.caseTimeoutMs,
    startedAt: started.toISOString(),
    seconds: Math.round(seconds * 10) / 10,
    targets: { image: target.image, audio: target.audio, upstream: context.upstream },
    monitor: monitorReport,
    tensors: before === undefined || after === undefined ? undefined : { before, after },
    rerunAfterGoaway,
  });
}

/** Lets batches still queued finish before the tensor count is read. */
function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 300));
}

async function globalFindings(
  target: FuzzTarget,
  clients: Record<string, RawClient>,
  monitor: MonitorReport,
  before: number | undefined,
  after: number | undefined,
): Promise<Record<string, string>> {
  const found: Record<string, string> = {};
  const death = target.death?.();
  if (death) found["server-crashed"] = death;
  for (const [name, client] of Object.entries(clients)) {
    const health = await client.unary(RPC_PATHS.Health, new Uint8Array(), {}, 5000);
    const describe = await client.unary(RPC_PATHS.Describe, new Uint8Array(), {}, 5000);
    if (health.code !== 0 || describe.code !== 0) {
      found["server-died"] = `${name}: health ${codeName(health.code)}, Describe ${codeName(describe.code)}`;
    }
  }
  if (monitor.healthFailures.length > 0) {
    found["health-failed"] = monitor.healthFailures.map((f) => `${f.code} ${f.details}`).join("; ");
  }
  if (monitor.stalls > 0) {
    found["health-stall"] =
      `${monitor.stalls} of ${monitor.healthSamples} health checks over ${STALL_MS} ms (max ${monitor.healthMaxMs} ms)`;
  }
  if (monitor.metricsFailures.length > 0) found["metrics-failed"] = monitor.metricsFailures.join("; ");
  if (before !== undefined && after !== undefined && after !== before) {
    found["tensor-leak"] = `${before} tensors before the cases, ${after} after`;
  }
  return found;
}

function summarize(
  records: CaseRecord[],
  global: Record<string, string>,
  header: Omit<FuzzResults, "table" | "findings" | "failures" | "latency">,
): FuzzResults {
  records.sort((a, b) => Number(a.id.split("-")[1]) - Number(b.id.split("-")[1]));
  const table: FuzzResults["table"] = {};
  const findings: FuzzResults["findings"] = {};
  for (const r of records) {
    table[r.rpc] ??= {};
    table[r.rpc][r.status] = (table[r.rpc][r.status] ?? 0) + 1;
    for (const f of r.findings) {
      findings[f] ??= { count: 0, examples: [] };
      findings[f].count++;
      if (findings[f].examples.length < 5) findings[f].examples.push(r.id);
    }
  }
  for (const [category, detail] of Object.entries(global)) {
    findings[category] = { count: 1, examples: [detail] };
  }
  const latency: FuzzResults["latency"] = {};
  for (const rpc of Object.keys(table)) {
    const ms = records.filter((r) => r.rpc === rpc).map((r) => r.ms).sort((a, b) => a - b);
    latency[rpc] = { p50Ms: percentile(ms, 50), p99Ms: percentile(ms, 99) };
  }
  return {
    ...header,
    table,
    latency,
    findings,
    failures: records.filter((r) => r.findings.length > 0).slice(0, 300),
  };
}
