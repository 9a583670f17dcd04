/**
 * A server run as a child process and watched: its stdout and stderr are kept (the last lines), and its
 * death, with the exit code or signal, is observed the moment it happens, so a native crash (SIGABRT from
 * `free(): invalid pointer`, an nghttp2 assertion, SIGSEGV) is reported instead of looking like a network
 * error.
 *
 * @module
 */

/** How a child ended. */
export interface ChildExit {
  code: number;
  signal: Deno.Signal | null;
  /** Milliseconds after the spawn. */
  afterMs: number;
  /** The last lines of its stderr (and stdout). */
  tail: string[];
}

/** A running child. */
export interface WatchedChild {
  pid: number;
  /** The first stdout/stderr line matching the ready pattern. */
  readyLine: string;
  /** Set once the child has exited. */
  readonly exit: ChildExit | undefined;
  /** Resolves when the child exits. */
  exited: Promise<ChildExit>;
  /** SIGTERM, then waits for the exit (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<ChildExit>;
  /** Output lines so far that matched `options.count` (0 without it). */
  readonly counted: number;
}

const TAIL_LINES = 40;

/** Spawns `deno <args>` and resolves once a line matches `ready` (rejects when it exits or times out first). */
export async function spawnWatched(
  args: string[],
  ready: RegExp,
  options: { env?: Record<string, string>; startTimeoutMs?: number; count?: RegExp } = {},
): Promise<WatchedChild> {
  const start = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let readyLine: string | undefined;
  let counted = 0;
  const collect = async (stream: ReadableStream<Uint8Array<ArrayBuffer>>) => {
    let buffer = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      const parts = buffer.split("\n");
      buffer = parts.pop()!;
      for (const line of parts) {
        readyLine ??= ready.test(line) ? line : undefined;
        if (options.count?.test(line)) counted++;
        lines.push(line);
        if (lines.length > TAIL_LINES * 4) lines.splice(0, lines.length - TAIL_LINES);
      }
    }
    if (buffer) lines.push(buffer);
  };
  const output = Promise.all([collect(child.stdout), collect(child.stderr)]);
  let exit: ChildExit | undefined;
  const exited = child.status.then(async (s) => {
    await output;
    exit = {
      code: s.code,
      signal: s.signal,
      afterMs: Math.round(performance.now() - start),
      tail: lines.slice(-TAIL_LINES),
    };
    return exit;
  });
  const deadline = Date.now() + (options.startTimeoutMs ?? 120_000);
  while (readyLine === undefined) {
    if (exit) throw new Error(`${args.join(" ")} exited (${describeExit(exit)}) before it was ready`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${args.join(" ")} was not ready in time:\n${lines.slice(-TAIL_LINES).join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    pid: child.pid,
    readyLine,
    get exit() {
      return exit;
    },
    get counted() {
      return counted;
    },
    exited,
    stop: async (graceMs = 15_000) => {
      if (exit) return exit;
      child.kill("SIGTERM");
      const timer = setTimeout(() => exit ?? child.kill("SIGKILL"), graceMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

/** "exit code 0", "signal SIGABRT" and the like. */
export function describeExit(exit: ChildExit): string {
  // Deno reports a signal death as code 128 + n with `signal` set.
  return exit.signal ? `signal ${exit.signal} (code ${exit.code})` : `exit code ${exit.code}`;
}
