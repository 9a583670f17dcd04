/**
 * The container's entry point: runs the sidecar as a child process and starts it again when it dies of a
 * signal. Deno 2.9.6's `node:http2` can abort inside nghttp2 (`find_stream_on_goaway_func` assertion,
 * `free(): invalid pointer`, SIGSEGV) while clients close their channels (denoland/deno#36788; the soak's
 * crash hunt reproduces it, docs/HARDENING.md); no JavaScript runs before the abort, so the server cannot
 * catch it. Restarted here, a crash costs the few seconds of a model load instead of a container restart
 * under Kubernetes' growing back-off. A child that exits with a code (0 after SIGTERM, 1 at a failed
 * start, 2 on a bad flag) is not restarted: its code becomes the supervisor's. More than `maxRestarts`
 * crashes within `windowMs` and the supervisor gives up (exit 1), so a crash loop stays visible.
 *
 *   deno run --allow-run=deno src/server/supervisor.ts [--max-restarts 5] [--window-ms 60000] -- \
 *     deno run --allow-net --allow-read --allow-env --allow-sys src/server/main.ts [sidecar flags]
 *
 * @module
 */

/** How to run and restart the child. */
export interface SupervisorOptions {
  /** The child's program and arguments. */
  command: string[];
  /** Crashes tolerated within `windowMs`; one more and the supervisor gives up. */
  maxRestarts: number;
  windowMs: number;
  /** Receives one line per event (started, died, restarting, giving up). */
  log: (message: string, fields: Record<string, unknown>) => void;
}

/** A running supervision. */
export interface Supervision {
  /** Sends `signal` to the child and does not restart it afterwards. */
  stop(signal: Deno.Signal): void;
  /** The exit code to leave with: the child's own, or 1 when the crashes exceeded the budget. */
  done: Promise<number>;
  /** Children started so far. */
  readonly starts: number;
}

/** Starts the child and keeps it running until it exits with a code or `stop` is called. */
export function supervise(options: SupervisorOptions): Supervision {
  const [program, ...args] = options.command;
  let child: Deno.ChildProcess | undefined;
  let stopping: Deno.Signal | undefined;
  let starts = 0;
  const crashes: number[] = [];
  const run = async (): Promise<number> => {
    while (true) {
      child = new Deno.Command(program, { args, stdin: "null", stdout: "inherit", stderr: "inherit" })
        .spawn();
      starts++;
      options.log("started", { pid: child.pid, start: starts });
      // A stop that arrived while no child ran reaches this one.
      if (stopping) child.kill(stopping);
      const status = await child.status;
      if (stopping || status.signal === null) return status.code;
      const now = Date.now();
      crashes.push(now);
      while (crashes[0] < now - options.windowMs) crashes.shift();
      options.log("died", { signal: status.signal, code: status.code, crashesInWindow: crashes.length });
      if (crashes.length > options.maxRestarts) {
        options.log("giving up", { maxRestarts: options.maxRestarts, windowMs: options.windowMs });
        return 1;
      }
    }
  };
  return {
    stop(signal) {
      stopping = signal;
      try {
        child?.kill(signal);
      } catch {
        // The child has already exited; the loop sees `stopping` and returns its code.
      }
    },
    done: run(),
    get starts() {
      return starts;
    },
  };
}

/** Parses `[--max-restarts N] [--window-ms MS] -- command...`; throws naming the bad flag. */
export function parseSupervisorArgs(argv: string[]): Omit<SupervisorOptions, "log"> {
  const split = argv.indexOf("--");
  if (split < 0 || split === argv.length - 1) {
    throw new Error("usage: supervisor.ts [--max-restarts N] [--window-ms MS] -- <command> [args...]");
  }
  const flags = argv.slice(0, split);
  const options = { command: argv.slice(split + 1), maxRestarts: 5, windowMs: 60_000 };
  for (let i = 0; i < flags.length; i += 2) {
    const [flag, value] = [flags[i], flags[i + 1]];
    const number = Number(value);
    if (!Number.isInteger(number) || number < 0) {
      throw new Error(`${flag}: ${value} is not a non-negative integer`);
    }
    if (flag === "--max-restarts") options.maxRestarts = number;
    else if (flag === "--window-ms") options.windowMs = number;
    else throw new Error(`unknown flag ${flag}`);
  }
  return options;
}

if (import.meta.main) {
  let parsed;
  try {
    parsed = parseSupervisorArgs(Deno.args);
  } catch (error) {
    console.error(`nip-sidecar supervisor: ${(error as Error).message}`);
    Deno.exit(2);
  }
  const log = (message: string, fields: Record<string, unknown>) =>
    console.error(
      JSON.stringify({
        ts: new Date().toISOString(),
        level: "info",
        msg: `supervisor: ${message}`,
        ...fields,
      }),
    );
  const supervision = supervise({ ...parsed, log });
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => supervision.stop(signal));
  }
  Deno.exit(await supervision.done);
}
