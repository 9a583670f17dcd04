/**
 * Prometheus metrics, hand-written text exposition (format 0.0.4): counters, gauges and histograms
 * with labels, and an HTTP endpoint serving them at `/metrics`.
 *
 * @module
 */

type Labels = Record<string, string>;

function labelKey(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return "";
  return "{" + keys.map((k) => `${k}="${escapeLabel(labels[k])}"`).join(",") + "}";
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function formatNumber(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return Number.isNaN(v) ? "NaN" : String(v);
}

interface Metric {
  render(): string;
}

/** A monotonically increasing counter. */
export class Counter implements Metric {
  readonly #values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}

  /** Adds `by` (default 1) to the series with these labels. */
  inc(labels: Labels = {}, by = 1): void {
    const key = labelKey(labels);
    this.#values.set(key, (this.#values.get(key) ?? 0) + by);
  }

  /** Current value of a series. */
  get(labels: Labels = {}): number {
    return this.#values.get(labelKey(labels)) ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [key, v] of this.#values) lines.push(`${this.name}${key} ${formatNumber(v)}`);
    return lines.join("\n");
  }
}

/** A value that goes up and down, read from a function at scrape time. */
export class Gauge implements Metric {
  constructor(readonly name: string, readonly help: string, readonly read: () => number) {}

  render(): string {
    return [
      `# HELP ${this.name} ${this.help}`,
      `# TYPE ${this.name} gauge`,
      `${this.name} ${formatNumber(this.read())}`,
    ]
      .join("\n");
  }
}

/** A histogram with fixed upper bounds. */
export class Histogram implements Metric {
  readonly #series = new Map<string, { counts: number[]; sum: number; count: number; labels: Labels }>();
  constructor(readonly name: string, readonly help: string, readonly buckets: number[]) {}

  /** Records one observation. */
  observe(value: number, labels: Labels = {}): void {
    const key = labelKey(labels);
    let s = this.#series.get(key);
    if (!s) {
      s = { counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0, labels };
      this.#series.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) s.counts[i]++;
    s.sum += value;
    s.count++;
  }

  /** Number of observations of a series. */
  count(labels: Labels = {}): number {
    return this.#series.get(labelKey(labels))?.count ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.#series.values()) {
      this.buckets.forEach((le, i) =>
        lines.push(`${this.name}_bucket${labelKey({ ...s.labels, le: formatNumber(le) })} ${s.counts[i]}`)
      );
      lines.push(`${this.name}_bucket${labelKey({ ...s.labels, le: "+Inf" })} ${s.count}`);
      lines.push(`${this.name}_sum${labelKey(s.labels)} ${formatNumber(s.sum)}`);
      lines.push(`${this.name}_count${labelKey(s.labels)} ${s.count}`);
    }
    return lines.join("\n");
  }
}

/** The sidecar's metrics. */
export class SidecarMetrics {
  readonly requests = new Counter(
    "nip_requests_total",
    "gRPC calls (stream messages count one each) by method and status code.",
  );
  readonly latency = new Histogram(
    "nip_request_duration_seconds",
    "Latency of gRPC calls by method.",
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  readonly batchSize = new Histogram(
    "nip_batch_size",
    "Examples per model batch, by operation (defend, predict, classify).",
    [1, 2, 4, 8, 16, 32, 64, 128, 256],
  );
  readonly defended = new Counter("nip_defended_examples_total", "Examples defended.");
  readonly labelFlips = new Counter(
    "nip_label_flips_total",
    "Defended examples whose local label changed after the defense.",
  );
  readonly flagged = new Counter(
    "nip_flagged_total",
    "Flagged examples, by detector whose p-value was <= alpha (`combined` decides; `smoothing`: disagreement).",
  );
  readonly rejected = new Counter(
    "nip_rejected_total",
    "Examples answered with a rejection (policies reject, smoothed-reject), by detector (or `smoothing`).",
  );
  readonly certified = new Counter(
    "nip_certified_total",
    "Examples answered by Certify, by outcome (certified, abstained).",
  );
  readonly upstreamErrors = new Counter("nip_upstream_errors_total", "Failed upstream calls by status code.");
  readonly upstreamLatency = new Histogram(
    "nip_upstream_duration_seconds",
    "Latency of upstream calls (retries included).",
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  readonly loopLag = new Histogram(
    "nip_event_loop_lag_seconds",
    "How late a timer due every 20 ms fired: time every call waited before the server could read it.",
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  );
  readonly #gauges: Gauge[] = [];

  /** Adds a gauge read at scrape time (queue depth, in-flight calls). */
  addGauge(name: string, help: string, read: () => number): void {
    this.#gauges.push(new Gauge(name, help, read));
  }

  /** The text exposition of every metric. */
  render(): string {
    const metrics: Metric[] = [
      this.requests,
      this.latency,
      this.batchSize,
      this.defended,
      this.labelFlips,
      this.flagged,
      this.rejected,
      this.certified,
      this.upstreamErrors,
      this.upstreamLatency,
      this.loopLag,
      ...this.#gauges,
    ];
    return metrics.map((m) => m.render()).join("\n") + "\n";
  }
}

/** A running metrics endpoint. */
export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/** Serves `GET /metrics` on `bind` ("host:port"; port 0 picks a free one). */
export function serveMetrics(bind: string, metrics: SidecarMetrics): Promise<MetricsServer> {
  const { host, port } = splitHostPort(bind);
  return new Promise((resolve) => {
    const server = Deno.serve({
      hostname: host,
      port,
      onListen: (addr) => resolve({ port: addr.port, close: () => server.shutdown() }),
    }, (request) => {
      const url = new URL(request.url);
      if (url.pathname !== "/metrics") return new Response("not found; try /metrics\n", { status: 404 });
      return new Response(metrics.render(), { headers: { "content-type": "text/plain; version=0.0.4" } });
    });
  });
}

/** Splits "host:port" (IPv6 hosts in brackets). */
export function splitHostPort(bind: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(bind);
  if (!m) throw new Error(`address "${bind}" is not host:port`);
  return { host: m[1], port: Number(m[2]) };
}
