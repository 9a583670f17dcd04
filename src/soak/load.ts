/**
 * The soak's load loop: `concurrency` workers draw operations from the {@link Mix} until the time is up
 * (or the server dies), recording each call's latency and each error's status per operation, and taking
 * snapshots of the server (RSS, tensors) at the times asked for.
 *
 * @module
 */
import { percentile } from "../fuzz/monitor.ts";
import { type Mix, type Operation, OperationError } from "./mix.ts";

/** Per-operation figures. */
export interface OperationStats {
  calls: number;
  errors: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** A load run's figures. */
export interface LoadResult {
  seconds: number;
  calls: number;
  errors: number;
  /** Errors per status name, all operations together. */
  errorsByStatus: Record<string, number>;
  /** The first message seen for each operation and status. */
  errorExamples: Record<string, string>;
  operations: Record<string, OperationStats>;
  /** Whether the run ended early because `stop()` said so. */
  stoppedEarly: boolean;
  /** Streams whose unanswered messages the client sent again after a dropped connection (`Mix.streamRetries`). */
  streamRetries: number;
}

/** How to run the load. */
export interface LoadOptions {
  concurrency: number;
  seconds: number;
  /** Called at each of these fractions of the run (0.5: the middle), awaited by nobody. */
  checkpoints: { at: number; take: () => void }[];
  /** True ends the run now (the server died). */
  stop: () => boolean;
  onProgress?: (elapsedS: number, calls: number, errors: number) => void;
}

/** Runs the mix's operations for `options.seconds`; `mixes` may be replaced in place while it runs. */
export async function runLoad(mixes: Mix[], options: LoadOptions): Promise<LoadResult> {
  const latencies = new Map<Operation, number[]>();
  const errors = new Map<Operation, Record<string, number>>();
  const examples: Record<string, string> = {};
  const start = performance.now();
  const end = start + options.seconds * 1000;
  let calls = 0;
  let errorCount = 0;
  let stoppedEarly = false;
  const seen = new Set<Mix>();
  const pending = [...options.checkpoints].sort((a, b) => a.at - b.at);
  const ticker = setInterval(() => {
    const elapsed = (performance.now() - start) / 1000;
    while (pending.length > 0 && elapsed >= pending[0].at * options.seconds) pending.shift()!.take();
    options.onProgress?.(elapsed, calls, errorCount);
  }, 1000);
  await Promise.all(Array.from({ length: options.concurrency }, async (_, w) => {
    while (performance.now() < end) {
      // Read each time: the caller may swap the mixes (and their channels) during the run.
      const mix = mixes[w % mixes.length];
      seen.add(mix);
      if (options.stop()) {
        stoppedEarly = true;
        return;
      }
      const op = mix.next();
      const t = performance.now();
      try {
        await mix.run(op);
      } catch (error) {
        const code = error instanceof OperationError ? error.code : "CLIENT";
        const byCode = errors.get(op) ?? {};
        byCode[code] = (byCode[code] ?? 0) + 1;
        errors.set(op, byCode);
        examples[`${op} ${code}`] ??= (error as Error).message.slice(0, 300);
        errorCount++;
      }
      const list = latencies.get(op) ?? [];
      list.push(performance.now() - t);
      latencies.set(op, list);
      calls++;
    }
  }));
  clearInterval(ticker);
  const operations: Record<string, OperationStats> = {};
  const errorsByStatus: Record<string, number> = {};
  for (const [op, list] of latencies) {
    list.sort((a, b) => a - b);
    const round = (x: number) => Math.round(x * 10) / 10;
    operations[op] = {
      calls: list.length,
      errors: errors.get(op) ?? {},
      p50Ms: round(percentile(list, 50)),
      p99Ms: round(percentile(list, 99)),
      maxMs: round(list[list.length - 1]),
    };
    for (const [code, n] of Object.entries(errors.get(op) ?? {})) {
      errorsByStatus[code] = (errorsByStatus[code] ?? 0) + n;
    }
  }
  return {
    seconds: Math.round((performance.now() - start) / 100) / 10,
    calls,
    errors: errorCount,
    errorsByStatus,
    errorExamples: examples,
    operations,
    streamRetries: [...seen].reduce((sum, mix) => sum + mix.streamRetries, 0),
    stoppedEarly,
  };
}
