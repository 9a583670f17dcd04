/**
 * What the fuzzer watches beside the cases: a health check every `intervalMs` on its own channel, from a
 * worker of its own (its latency says whether one call's input stalls the others), the same check against
 * an idle control sidecar on the same machine (the tail that shared cores alone give) and, when a metrics URL
 * is known, periodic `/metrics` scrapes (the last one gives the target's own event-loop lag).
 *
 * @module
 */
import { RPC_PATHS } from "./cases.ts";
import { codeName } from "./oracle.ts";
import type { ProbeSample, ProbeStart } from "./health_probe_worker.ts";
import { RawClient } from "./transport.ts";

/** Latency above which a health check counts as stalled (ms). */
export const STALL_MS = 100;

/** One slow health check and the cases in flight while it waited. */
export interface Stall {
  ms: number;
  inFlight: string[];
}

/** Health latencies of the control sidecar, which gets no cases (ms). */
export interface ControlHealth {
  samples: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  stalls: number;
}

/** The target's own event-loop lag over the run, from its last `/metrics` scrape. */
export interface ServerLoopLag {
  samples: number;
  /** Samples over {@link STALL_MS}. */
  over100Ms: number;
  maxMs: number;
}

/** What the monitor saw. */
export interface MonitorReport {
  /** Health check latency on the idle server before the cases (p50 and max of 20, ms): the baseline. */
  idleHealthP50Ms: number;
  idleHealthMaxMs: number;
  healthSamples: number;
  healthFailures: { code: string; details: string }[];
  healthP50Ms: number;
  healthP99Ms: number;
  healthMaxMs: number;
  stalls: number;
  /** The worst stalls (up to 5), with the cases in flight. */
  worstStalls: Stall[];
  /**
   * The same probe against an idle sidecar on the same machine (when there is one): a stall it sees too is
   * the machine's (cores shared by every process), not one caused by the target's inputs.
   */
  control?: ControlHealth;
  /** The target's event-loop lag (when it exports it): the share of a stall spent inside the server. */
  serverLoopLag?: ServerLoopLag;
  metricsScrapes: number;
  metricsFailures: string[];
}

/** The p-th percentile of sorted values (NaN when empty). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** The event-loop lag figures in a `/metrics` text, or undefined when it has none. */
export function parseLoopLag(text: string): ServerLoopLag | undefined {
  const lines = text.split("\n");
  const value = (series: string) => {
    const line = lines.find((l) => l.startsWith(series + " "));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
  const samples = value("nip_event_loop_lag_seconds_count");
  const within = value(`nip_event_loop_lag_seconds_bucket{le="${STALL_MS / 1000}"}`);
  const max = value("nip_event_loop_lag_max_seconds");
  if (samples === undefined || within === undefined || max === undefined) return undefined;
  return { samples, over100Ms: samples - within, maxMs: Math.round(max * 10000) / 10 };
}

const PROBE_URL = new URL("./health_probe_worker.ts", import.meta.url);

/** A health prober in a worker of its own (see `health_probe_worker.ts`), its samples handed to `record`. */
class Probe {
  readonly #worker = new Worker(PROBE_URL, { type: "module" });
  readonly #stopped: Promise<void>;

  constructor(address: string, intervalMs: number, record: (sample: ProbeSample) => void) {
    this.#stopped = new Promise((resolve) => {
      this.#worker.onmessage = (event: MessageEvent<ProbeSample | "stopped">) => {
        if (event.data === "stopped") resolve();
        else record(event.data);
      };
    });
    this.#worker.postMessage({ address, intervalMs } satisfies ProbeStart);
  }

  async stop() {
    this.#worker.postMessage("stop");
    await this.#stopped;
    this.#worker.terminate();
  }
}

const round = (x: number) => Math.round(x * 10) / 10;

/** Samples health (the target's and the control's) and metrics until stopped. */
export class Monitor {
  readonly #probes: Probe[] = [];
  readonly #latencies: number[] = [];
  readonly #controlLatencies: number[] = [];
  readonly #healthFailures: MonitorReport["healthFailures"] = [];
  readonly #stalls: Stall[] = [];
  readonly #metricsFailures: string[] = [];
  #metricsScrapes = 0;
  #lastScrape = "";
  #running = true;
  readonly #loops: Promise<void>[] = [];

  readonly #idle: number[];
  readonly #hasControl: boolean;

  private constructor(
    address: string,
    idle: number[],
    metricsUrl: string | undefined,
    readonly inFlight: () => string[],
    intervalMs: number,
    control: string | undefined,
  ) {
    this.#idle = idle;
    this.#hasControl = control !== undefined;
    this.#probes.push(new Probe(address, intervalMs, (sample) => this.#record(sample)));
    if (control !== undefined) {
      this.#probes.push(
        new Probe(control, intervalMs, (sample) => this.#recordControl(sample)),
      );
    }
    if (metricsUrl) this.#loops.push(this.#metricsLoop(metricsUrl));
  }

  /**
   * Measures `address`'s idle health latency (20 checks in a row, before any case runs), then samples its
   * health (and `control`'s, an idle sidecar's, when given) every `intervalMs`; `inFlight` names the cases
   * running now.
   */
  static async start(
    address: string,
    metricsUrl: string | undefined,
    inFlight: () => string[],
    intervalMs = 50,
    control?: string,
  ): Promise<Monitor> {
    const health = new RawClient(address);
    const idle: number[] = [];
    for (let i = 0; i < 20; i++) {
      idle.push((await health.unary(RPC_PATHS.Health, new Uint8Array(), {}, 5000)).ms);
    }
    health.close();
    return new Monitor(address, idle.sort((a, b) => a - b), metricsUrl, inFlight, intervalMs, control);
  }

  /** One probe sample; a stall names the cases in flight when its answer came. */
  #record(sample: ProbeSample) {
    if (sample.code !== 0) {
      this.#healthFailures.push({ code: codeName(sample.code), details: sample.details });
      return;
    }
    this.#latencies.push(sample.ms);
    if (sample.ms > STALL_MS) this.#stalls.push({ ms: Math.round(sample.ms), inFlight: this.inFlight() });
  }

  /** One sample of the control sidecar; its failures count as health failures, named as the control's. */
  #recordControl(sample: ProbeSample) {
    if (sample.code === 0) this.#controlLatencies.push(sample.ms);
    else this.#healthFailures.push({ code: codeName(sample.code), details: `control: ${sample.details}` });
  }

  async #metricsLoop(url: string) {
    while (this.#running) {
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
        const text = await response.text();
        if (!response.ok || !text.includes("nip_requests_total")) {
          this.#metricsFailures.push(`HTTP ${response.status}`);
        } else this.#lastScrape = text;
        this.#metricsScrapes++;
      } catch (error) {
        this.#metricsFailures.push((error as Error).message);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  /** Stops sampling and reports. */
  async stop(): Promise<MonitorReport> {
    this.#running = false;
    await Promise.all([...this.#loops, ...this.#probes.map((p) => p.stop())]);
    const sorted = [...this.#latencies].sort((a, b) => a - b);
    const control = [...this.#controlLatencies].sort((a, b) => a - b);
    const serverLoopLag = parseLoopLag(this.#lastScrape);
    return {
      idleHealthP50Ms: round(percentile(this.#idle, 50)),
      idleHealthMaxMs: round(this.#idle[this.#idle.length - 1]),
      healthSamples: sorted.length + this.#healthFailures.length,
      healthFailures: this.#healthFailures.slice(0, 10),
      healthP50Ms: round(percentile(sorted, 50)),
      healthP99Ms: round(percentile(sorted, 99)),
      healthMaxMs: round(sorted[sorted.length - 1] ?? NaN),
      stalls: this.#stalls.length,
      worstStalls: [...this.#stalls].sort((a, b) => b.ms - a.ms).slice(0, 5),
      ...(this.#hasControl
        ? {
          control: {
            samples: control.length,
            p50Ms: round(percentile(control, 50)),
            p99Ms: round(percentile(control, 99)),
            maxMs: round(control[control.length - 1] ?? NaN),
            stalls: control.filter((ms) => ms > STALL_MS).length,
          },
        }
        : {}),
      ...(serverLoopLag === undefined ? {} : { serverLoopLag }),
      metricsScrapes: this.#metricsScrapes,
      metricsFailures: this.#metricsFailures.slice(0, 10),
    };
  }
}
