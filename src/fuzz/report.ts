/**
 * The fuzz run's readable report: counts per RPC and status, findings per category with the ids that
 * reproduce them, the monitor's figures, and how to replay a case.
 *
 * @module
 */
import { RPCS } from "./cases.ts";
import { STREAM_RETRIES } from "../server/client.ts";
import type { FuzzResults } from "./runner.ts";

function table(header: string[], rows: (string | number)[][]): string {
  return [
    `| ${header.join(" | ")} |`,
    `|${header.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

/** The Markdown report of `results`; `command` is how the run was started. */
export function markdownReport(results: FuzzResults, command: string): string {
  const statuses = [...new Set(Object.values(results.table).flatMap((r) => Object.keys(r)))].sort();
  const rpcRows = RPCS.filter((rpc) => results.table[rpc]).map((rpc) => [
    rpc,
    ...statuses.map((s) => results.table[rpc][s] ?? 0),
    Object.values(results.table[rpc]).reduce((a, b) => a + b, 0),
    results.latency[rpc].p50Ms,
    results.latency[rpc].p99Ms,
  ]);
  const findings = Object.entries(results.findings).sort(([a], [b]) => a.localeCompare(b));
  const m = results.monitor;
  const failureRows = results.failures.slice(0, 40).map((f) => [
    `\`${f.id}\``,
    f.rpc,
    f.target,
    f.family,
    f.mutation,
    f.expect,
    f.status + (f.messageStatuses ? ` (${f.messageStatuses.join(" ")})` : ""),
    f.findings.join(", "),
    f.details.replaceAll("|", "\\|").replaceAll("\n", " ").slice(0, 120),
  ]);
  return [
    `# Fuzz run: seed ${results.seed}, ${results.cases} cases`,
    "",
    `\`${command}\`, ${results.startedAt}, ${results.seconds} s, concurrency ${results.concurrency}, ` +
    `case deadline ${results.caseTimeoutMs} ms; targets: image ${results.targets.image}` +
    (results.targets.audio ? `, audio ${results.targets.audio}` : "") +
    `; Classify upstream: image ${results.targets.upstream.image ? "yes" : "none"}` +
    (results.targets.audio ? `, audio ${results.targets.upstream.audio ? "yes" : "none"}` : "") + ".",
    "",
    "## Statuses per RPC",
    "",
    "Streams: the stream's own final status (each message's answer is judged separately). " +
    `${results.rerunAfterGoaway} reruns (at most ${STREAM_RETRIES} per case) of cases their connection dropped at the ` +
    "sidecar's GOAWAY (UNAVAILABLE \"Connection dropped\": Deno's HTTP/2 client ends its open streams at a " +
    'GOAWAY; or INTERNAL "write EPIPE": a call written before the client read the GOAWAY, onto the ' +
    "connection HTTP/2 then closed; gRPC clients retry both); the table counts the last run.",
    "",
    table(["RPC", ...statuses, "total", "p50 ms", "p99 ms"], rpcRows),
    "",
    "## Findings per category",
    "",
    findings.length === 0 ? "None." : table(
      ["category", "count", "examples (case ids or detail)"],
      findings.map(([c, f]) => [c, f.count, f.examples.join(", ")]),
    ),
    "",
    "## Monitor",
    "",
    `Health checks on the idle server before the cases: p50 ${m.idleHealthP50Ms} ms, max ${m.idleHealthMaxMs} ms. ` +
    `During the cases: ${m.healthSamples} (p50 ${m.healthP50Ms} ms, p99 ${m.healthP99Ms} ms, max ${m.healthMaxMs} ms), ` +
    `${m.stalls} over 100 ms, ${m.healthFailures.length} failed. ` +
    (m.control
      ? `The same probe against an idle control sidecar on the same machine (no cases): ${m.control.samples} ` +
        `(p50 ${m.control.p50Ms} ms, p99 ${m.control.p99Ms} ms, max ${m.control.maxMs} ms), ${m.control.stalls} over 100 ms. `
      : "") +
    (m.serverLoopLag
      ? `The target's event loop (a timer every 20 ms): ${m.serverLoopLag.samples} samples, ` +
        `${m.serverLoopLag.over100Ms} late by over 100 ms, max ${m.serverLoopLag.maxMs} ms. `
      : "") +
    `Metrics scrapes: ${m.metricsScrapes}, ` +
    `${m.metricsFailures.length} failed.` +
    (results.tensors
      ? ` Tensors: ${results.tensors.before} before the cases, ${results.tensors.after} after.`
      : ""),
    "",
    m.worstStalls.length === 0 ? "" : table(
      ["worst health check (ms)", "cases in flight"],
      m.worstStalls.map((s) => [s.ms, s.inFlight.map((id) => `\`${id}\``).join(" ")]),
    ),
    "",
    `## Failed cases (${results.failures.length}${results.failures.length > 40 ? ", first 40" : ""})`,
    "",
    failureRows.length === 0 ? "None." : table(
      ["id", "RPC", "target", "family", "mutation", "expected", "status", "findings", "details"],
      failureRows,
    ),
    "",
    "Replay one case (same seed and index give the same bytes, against the same targets: give the run's " +
    "`--target`/`--audio-target`/`--no-audio` again): `deno task fuzz --replay <id>`, e.g. " +
    `\`deno task fuzz --replay ${results.failures[0]?.id ?? `${results.seed}-0`}\`.`,
    "",
  ].join("\n");
}
