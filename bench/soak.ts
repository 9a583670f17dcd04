/**
 * `deno task soak`: a long run at concurrency 64 of a realistic mix (Defend, Classify through a loopback
 * OIP upstream, DefendStream, ClassifyStream, Predict, health checks, metrics scrapes, channel churn)
 * against a sidecar in a child process, reporting errors by status, p50/p99 latency per operation, and the
 * server's RSS and tensor count at start (after warm-up), middle and end. The server runs as a child so
 * that a native crash (SIGABRT `free(): invalid pointer`, nghttp2 assertions) is seen with its signal and
 * stderr tail, under load or at shutdown.
 *
 * Flags:
 *   --minutes M        measured minutes per run (default 10; 1 for a quick check)
 *   --concurrency C    workers (default 64)
 *   --server fixture|main|supervised   fixture (default): src/fuzz/sidecar_main.ts, which also answers its
 *                      tensor count; main: the production entry src/server/main.ts with an OIP upstream
 *                      child (src/upstream/oip_server.ts); tensors are then not available; supervised:
 *                      main.ts under src/server/supervisor.ts, as the container runs it: a crash is a
 *                      restart, and the run reports the restarts and how soon health answered again
 *   --runs N           server processes in turn, each for --minutes (default 1)
 *   --reconnect-s S    every S seconds replace all the load's shared channels at once, closing the old ones
 *                      (default 0: never; with --hunt 10)
 *   --hunt             crash hunt: --server main, --reconnect-s 10 and --runs 3 unless given
 *   --warmup-s S       unmeasured load before the start snapshot (default 15)
 *   --seed S           seed of the inputs and of the mix (default 1)
 *   --close-wait-ms T  wait between the clients closing their channels and SIGTERM (default 3000; 0: at
 *                      once, which races the clients' GOAWAYs with the server's shutdown)
 *   --out FILE         results JSON (default out/soak/soak.json; the Markdown report beside it)
 *
 * Exit status: 1 when a server died under load, 0 otherwise. A death is reported with its phase: under load,
 * when the load's clients closed their channels (see --close-wait-ms), or at SIGTERM.
 *
 * @module
 */
import { dirname } from "node:path";
import { numberFlag, parseFlags, runMain, UsageError } from "../src/cli/args.ts";
import { RPC_PATHS } from "../src/fuzz/cases.ts";
import { spawnWatched, type WatchedChild } from "../src/fuzz/child.ts";
import { RawClient } from "../src/fuzz/transport.ts";
import { runLoad } from "../src/soak/load.ts";
import { Mix, type MixTarget } from "../src/soak/mix.ts";
import { rssMiB } from "../src/soak/process_stats.ts";
import { type Snapshot, soakMarkdown, type SoakRun } from "../src/soak/report.ts";

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A started server: its target, its process, how to read its tensors, what else to stop with it. */
interface Server {
  target: MixTarget;
  child: WatchedChild;
  tensors?: () => Promise<number>;
  companions: WatchedChild[];
}

async function startFixture(): Promise<Server> {
  const child = await spawnWatched(["run", "-A", "src/fuzz/sidecar_main.ts"], /^\{"ready"/);
  const { ready } = JSON.parse(child.readyLine);
  return {
    target: { address: ready.address, metricsUrl: ready.metricsUrl },
    child,
    tensors: async () => Number(await (await fetch(ready.tensorsUrl)).text()),
    companions: [],
  };
}

/** The sidecar's process: main.ts itself, or main.ts under the supervisor the container image runs. */
async function startMain(supervised: boolean): Promise<Server> {
  const upstreamPort = freePort();
  const upstream = await spawnWatched(
    [
      "run",
      "-A",
      "src/upstream/oip_server.ts",
      "--model",
      "models/fashion-lenet",
      "--model-name",
      "fashion-lenet",
      "--bind",
      `127.0.0.1:${upstreamPort}`,
    ],
    /"listening"/,
  );
  const port = freePort();
  const metricsPort = freePort();
  const serverArgs = [
    "run",
    "-A",
    "src/server/main.ts",
    "--bind",
    `127.0.0.1:${port}`,
    "--metrics-bind",
    `127.0.0.1:${metricsPort}`,
  ];
  const child = await spawnWatched(
    supervised
      ? [
        "run",
        `--allow-run=${Deno.execPath()}`,
        "src/server/supervisor.ts",
        "--",
        Deno.execPath(),
        ...serverArgs,
      ]
      : serverArgs,
    /"msg":"listening"/,
    {
      count: /"msg":"supervisor: died"/,
      env: {
        NIP_UPSTREAM: "oip",
        NIP_UPSTREAM_ADDRESS: `127.0.0.1:${upstreamPort}`,
        NIP_UPSTREAM_MODEL: "fashion-lenet",
        NIP_MAX_QUEUE_SIZE: "4096",
      },
    },
  );
  return {
    target: { address: `127.0.0.1:${port}`, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` },
    child,
    companions: [upstream],
  };
}

/** Milliseconds until `address` answers a health check (each try 1 s; gives up after 60 s: undefined). */
async function untilServing(address: string): Promise<number | undefined> {
  const start = performance.now();
  const health = new RawClient(address);
  try {
    while (performance.now() - start < 60_000) {
      const { code } = await health.unary(RPC_PATHS.Health, new Uint8Array(), {}, 1000);
      if (code === 0) return Math.round(performance.now() - start);
      await new Promise((r) => setTimeout(r, 200));
    }
    return undefined;
  } finally {
    health.close();
  }
}

async function soakRun(
  run: number,
  kind: string,
  flags: {
    seconds: number;
    warmupS: number;
    concurrency: number;
    seed: number;
    closeWaitMs: number;
    reconnectS: number;
  },
): Promise<SoakRun> {
  const server = kind === "fixture" ? await startFixture() : await startMain(kind === "supervised");
  let generation = 0;
  const newMixes = () =>
    Array.from(
      { length: 8 },
      (_, i) => new Mix(server.target, flags.seed * 100_000 + run * 1000 + generation * 10 + i),
    );
  const mixes = newMixes();
  // Mass reconnection: every --reconnect-s all shared channels are replaced at once and the old ones closed
  // 2 s later (their calls done), so the server sees many clients' GOAWAYs together while under load.
  const retired: Promise<void>[] = [];
  const reconnect = flags.reconnectS > 0
    ? setInterval(() => {
      generation++;
      const old = mixes.splice(0, mixes.length, ...newMixes());
      retired.push(
        new Promise<void>((resolve) =>
          setTimeout(() => {
            for (const m of old) m.close();
            resolve();
          }, 2000)
        ),
      );
    }, flags.reconnectS * 1000)
    : undefined;
  const dead = () => server.child.exit !== undefined;
  const snapshots: Snapshot[] = [];
  let calls = 0;
  let t0 = performance.now();
  const snapshot = async (label: string) => {
    snapshots.push({
      label,
      atS: Math.round((performance.now() - t0) / 1000),
      rssMiB: await rssMiB(server.child.pid),
      tensors: dead() ? undefined : await server.tensors?.().catch(() => undefined),
      calls,
    });
  };
  console.error(
    `run ${run}: ${kind} server pid ${server.child.pid} at ${server.target.address}; warm-up ${flags.warmupS} s`,
  );
  await runLoad(mixes, {
    concurrency: flags.concurrency,
    seconds: flags.warmupS,
    checkpoints: [],
    stop: dead,
  });
  t0 = performance.now();
  if (!dead()) await snapshot("start (after warm-up)");
  const pendingSnapshots: Promise<void>[] = [];
  const load = await runLoad(mixes, {
    concurrency: flags.concurrency,
    seconds: flags.seconds,
    checkpoints: [{ at: 0.5, take: () => pendingSnapshots.push(snapshot("middle")) }],
    stop: dead,
    onProgress: (elapsed, n, errors) => {
      calls = n;
      if (Math.round(elapsed) % 15 === 0) {
        console.error(`run ${run}: ${Math.round(elapsed)} s, ${n} calls, ${errors} errors`);
      }
    },
  });
  calls = load.calls;
  await Promise.all(pendingSnapshots);
  if (!dead()) await snapshot("end");
  clearInterval(reconnect);
  await Promise.all(retired);
  const diedUnderLoad = dead();
  for (const mix of mixes) mix.close();
  // The clients' GOAWAYs reach the server before its own shutdown: wait, so that a death they cause is told
  // apart from one at SIGTERM (0: SIGTERM at once, the two racing).
  await new Promise((r) => setTimeout(r, flags.closeWaitMs));
  const phase = diedUnderLoad
    ? "under load"
    : dead()
    ? "when the clients closed their channels"
    : "after SIGTERM";
  // Under the supervisor a crash is a restart: the sidecar must answer health again before SIGTERM.
  const restarts = server.child.counted;
  const servingAgainMs = kind === "supervised" && restarts > 0
    ? await untilServing(server.target.address)
    : undefined;
  const exit = await server.child.stop();
  for (const companion of server.companions) await companion.stop();
  return {
    run,
    server: {
      main: "src/server/main.ts + OIP upstream child",
      supervised: "src/server/supervisor.ts running src/server/main.ts + OIP upstream child",
      fixture: "src/fuzz/sidecar_main.ts (in-process OIP upstream)",
    }[kind]!,
    load,
    snapshots,
    exit: {
      diedUnderLoad,
      phase,
      code: exit.code,
      signal: exit.signal,
      afterMs: exit.afterMs,
      tail: exit.tail,
      restarts: kind === "supervised" ? restarts : undefined,
      servingAgainMs,
    },
  };
}

async function main() {
  const flags = parseFlags({
    minutes: { type: "string", default: "10" },
    concurrency: { type: "string", default: "64" },
    server: { type: "string" },
    runs: { type: "string" },
    hunt: { type: "boolean", default: false },
    "warmup-s": { type: "string", default: "15" },
    seed: { type: "string", default: "1" },
    "close-wait-ms": { type: "string", default: "3000" },
    "reconnect-s": { type: "string" },
    out: { type: "string", default: "out/soak/soak.json" },
  });
  const server = flags.server ?? (flags.hunt ? "main" : "fixture");
  if (server !== "main" && server !== "fixture" && server !== "supervised") {
    throw new UsageError(`--server: expected fixture, main or supervised, got "${server}"`);
  }
  const runs = numberFlag("runs", flags.runs ?? (flags.hunt ? "3" : "1"), 1, 100);
  const options = {
    seconds: numberFlag("minutes", flags.minutes, 0.05) * 60,
    warmupS: numberFlag("warmup-s", flags["warmup-s"], 0),
    concurrency: numberFlag("concurrency", flags.concurrency, 1, 4096),
    seed: numberFlag("seed", flags.seed, 0),
    closeWaitMs: numberFlag("close-wait-ms", flags["close-wait-ms"], 0),
    reconnectS: numberFlag("reconnect-s", flags["reconnect-s"] ?? (flags.hunt ? "10" : "0"), 0),
  };
  const loadBefore = Deno.loadavg();
  const results: SoakRun[] = [];
  for (let run = 1; run <= runs; run++) results.push(await soakRun(run, server, options));
  const header = {
    date: new Date().toISOString(),
    deno: Deno.version.deno,
    cpus: navigator.hardwareConcurrency,
    concurrency: options.concurrency,
    "measured seconds per run": options.seconds,
    "warm-up seconds": options.warmupS,
    // The machine is shared: the load average says how contended the run was.
    "load average before / after": `${loadBefore.join(" ")} / ${Deno.loadavg().join(" ")}`,
  };
  const command = `deno task soak ${Deno.args.join(" ")}`.trim();
  await Deno.mkdir(dirname(flags.out), { recursive: true });
  await Deno.writeTextFile(flags.out, JSON.stringify({ command, ...header, runs: results }, null, 1) + "\n");
  const markdown = soakMarkdown(results, header, command);
  const mdPath = flags.out.replace(/\.json$/, "") + ".md";
  await Deno.writeTextFile(mdPath, markdown);
  console.log(markdown);
  console.log(`wrote ${flags.out} and ${mdPath}`);
  Deno.exit(results.some((r) => r.exit.diedUnderLoad) ? 1 : 0);
}

await runMain(main, import.meta.url);
