/**
 * The soak's Markdown report: per run, errors by status, latency per operation, the server's RSS and
 * tensor count at start (after warm-up), middle and end, and how the server process ended.
 *
 * @module
 */
import type { LoadResult } from "./load.ts";

/** The server's state at one moment. */
export interface Snapshot {
  label: string;
  /** Seconds into the measured run. */
  atS: number;
  rssMiB?: number;
  tensors?: number;
  calls: number;
}

/** One soak run (one server process). */
export interface SoakRun {
  run: number;
  server: string;
  load: LoadResult;
  snapshots: Snapshot[];
  /** How the server process ended, and whether it died under load (not at the final SIGTERM). */
  exit: {
    diedUnderLoad: boolean;
    /** "under load", "when the clients closed their channels" or "after SIGTERM". */
    phase: string;
    code: number;
    signal: string | null;
    afterMs: number;
    tail: string[];
    /** Under the supervisor: the server's restarts (crashes) during the run. */
    restarts?: number;
    /** Under the supervisor, after a restart: ms until health answered again (undefined: not within 60 s). */
    servingAgainMs?: number;
  };
}

/** The Markdown report of the runs; `command` is how they were started. */
export function soakMarkdown(
  runs: SoakRun[],
  header: Record<string, string | number>,
  command: string,
): string {
  const lines = [`# Soak: ${command}`, "", ...Object.entries(header).map(([k, v]) => `- ${k}: ${v}`), ""];
  for (const r of runs) {
    const l = r.load;
    lines.push(
      `## Run ${r.run} (${r.server})`,
      "",
      `${l.calls} calls in ${l.seconds} s (${(l.calls / l.seconds).toFixed(1)}/s), ${l.errors} errors` +
        (l.stoppedEarly ? ", **stopped early: the server died**" : "") + "; " +
        `${l.streamRetries} streams sent again after the server's GOAWAY dropped them from the client.`,
      "",
      `Errors by status: ${
        Object.entries(l.errorsByStatus).map(([c, n]) => `${c} ${n}`).join(", ") || "none"
      }.`,
      "",
      "| operation | calls | errors | p50 ms | p99 ms | max ms |",
      "|---|---|---|---|---|---|",
      ...Object.entries(l.operations).map(([op, s]) =>
        `| ${op} | ${s.calls} | ${
          Object.entries(s.errors).map(([c, n]) => `${c} ${n}`).join(", ") || 0
        } | ${s.p50Ms} | ${s.p99Ms} | ${s.maxMs} |`
      ),
      "",
      "| moment | s | server RSS MiB | tensors | calls so far |",
      "|---|---|---|---|---|",
      ...r.snapshots.map((s) =>
        `| ${s.label} | ${s.atS} | ${s.rssMiB ?? "n/a"} | ${s.tensors ?? "n/a"} | ${s.calls} |`
      ),
      "",
      `Server exit: ${
        r.exit.signal ? `signal ${r.exit.signal} (code ${r.exit.code})` : `code ${r.exit.code}`
      } ` +
        `${r.exit.phase}, ${r.exit.afterMs} ms after its start.`,
      "",
    );
    if (r.exit.restarts !== undefined) {
      lines.push(
        `Supervisor: ${r.exit.restarts} restart(s) of the server` +
          (r.exit.restarts > 0
            ? `; health answered again ${
              r.exit.servingAgainMs === undefined ? "**not within 60 s**" : `${r.exit.servingAgainMs} ms`
            } after the clients closed (plus the close wait)`
            : "") +
          ".",
        "",
      );
    }
    if (r.exit.diedUnderLoad || r.exit.signal || r.exit.code !== 0) {
      lines.push("Server output tail:", "", "```", ...r.exit.tail.slice(-20), "```", "");
    }
    const examples = Object.entries(l.errorExamples);
    if (examples.length > 0) {
      lines.push(
        "First error of each kind:",
        "",
        ...examples.map(([k, m]) => `- ${k}: ${m.replaceAll("\n", " ")}`),
        "",
      );
    }
  }
  return lines.join("\n");
}
