/**
 * What the fuzzer watches beside the cases: a health check every `intervalMs` on its own channel, from a
 * worker of its own (its latency says whether one call's input stalls the others) and, when a metrics URL is
 * known, periodic `/metrics` scrapes.
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
  metricsScrapes: number;
  metricsFailures: string[];
}

/** The p-th percentile of sorted values (NaN when empty). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const PROBE_URL = new URL("./health_probe_worker.ts", import.meta.url);

/** Samples health (from a worker of its own, see `health_probe_worker.ts`) and metrics until stopped. */
export class Monitor {
  readonly #probe: Worker;
  readonly #probeStopped: Promise<void>;
  readonly #latencies: number[] = [];
  readonly #healthFailures: MonitorReport["healthFailures"] = [];
  readonly #stalls: Stall[] = [];
  readonly #metricsFailures: string[] = [];
  #metricsScrapes = 0;
  #running = true;
  readonly #loops: Promise<void>[] = [];

  readonly #idle: number[];

  private constructor(
    address: string,
    idle: number[],
    metricsUrl: string | undefined,
    readonly inFlight: () => string[],
    intervalMs: number,
  ) {
    this.#idle = idle;
    this.#probe = new Worker(PROBE_URL, { type: "module" });
    this.#probeStopped = new Promise((resolve) => {
      this.#probe.onmessage = (event: MessageEvent<ProbeSample | "stopped">) => {
        if (event.data === "stopped") resolve();
        else this.#record(event.data);
      };
    });
    this.#probe.postMessage({ address, intervalMs } satisfies ProbeStart);
    if (metricsUrl) this.#loops.push(this.#metricsLoop(metricsUrl));
  }

  /**
   * Measures `address`'s idle health latency (20 checks in a row, before any case runs), then samples its
   * health every `intervalMs`; `inFlight` names the cases running now.
   */
  static async start(
    address: string,
    metricsUrl: string | undefined,
    inFlight: () => string[],
    intervalMs = 50,
  ): Promise<Monitor> {
    const health = new RawClient(address);
    const idle: number[] = [];
    for (let i = 0; i < 20; i++) {
      idle.push((await health.unary(RPC_PATHS.Health, new Uint8Array(), {}, 5000)).ms);
    }
    health.close();
    return new Monitor(address, idle.sort((a, b) => a - b), metricsUrl, inFlight, intervalMs);
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

  async #metricsLoop(url: string) {
    while (this.#running) {
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
        const text = await response.text();
        if (!response.ok || !text.includes("nip_requests_total")) {
          this.#metricsFailures.push(`HTTP ${response.status}`);
        }
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
    this.#probe.postMessage("stop");
    await Promise.all([...this.#loops, this.#probeStopped]);
    this.#probe.terminate();
    const sorted = [...this.#latencies].sort((a, b) => a - b);
    const round = (x: number) => Math.round(x * 10) / 10;
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
      metricsScrapes: this.#metricsScrapes,
      metricsFailures: this.#metricsFailures.slice(0, 10),
    };
  }
}
