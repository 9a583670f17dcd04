/**
 * Sidecar configuration from defaults, a JSON file, environment variables and command-line flags, in
 * rising precedence: flags > env > file > defaults. Every option has one flag and one `NIP_*` variable
 * (see {@link OPTIONS}); bad values fail with the option's name and where it came from.
 *
 * @module
 */
import { POLICIES, type Policy } from "../stages/policy.ts";
import { parseStageSettings } from "../stages/registry.ts";
import { BACKEND_NAMES, type BackendName } from "../engine/backend.ts";
import { LOG_LEVELS, type LogLevel } from "./log.ts";
import { redactUrl } from "./redact.ts";

/** Upstream kinds: none (Classify unavailable), Open Inference Protocol gRPC, or HTTP JSON. */
export type UpstreamKind = "none" | "oip" | "http";

/** What the served model reads: "auto" detects it from the model's input (see `src/server/audio.ts`). */
export type Modality = "auto" | "image" | "audio";

/** What `Classify` forwards upstream for an audio model: the defended features or the defended WAV. */
export type AudioPayload = "features" | "wav";

/** The sidecar's configuration. */
export interface SidecarConfig {
  /** gRPC listen address. */
  bind: string;
  /** Prometheus `/metrics` listen address; "" disables it. */
  metricsBind: string;
  modelDir: string;
  /** Default: `<modelDir>/profile`. */
  profileDir: string;
  /**
   * The defense pipeline: stage names joined by "+", run in that order (e.g. "nip", "detect+nip"); "auto":
   * "detect+nip" when the profile has detector calibration, else "nip".
   */
  defense: string;
  /**
   * Settings per stage, `stage.setting=value,...` (e.g. `smooth.sigma=0.5,smooth.n=10000`); they apply to
   * the pipeline's stages and to the stage that answers Certify. Empty: each stage's defaults.
   */
  stageSettings: string;
  /** What is done with the detection's verdict; "auto": "flag" with a detection stage, else "defend". */
  policy: "auto" | Policy;
  /** An input is flagged when the detection's p-value is <= alpha. */
  alpha: number;
  backend: BackendName;
  /** "image", "audio" (WAV in), or "auto": audio when the model reads the audio front end's features. */
  modality: Modality;
  /** Audio models: longest accepted WAV, in seconds. */
  audio: { maxSeconds: number };
  logLevel: LogLevel;
  /** Largest gRPC message accepted (bytes); bigger ones get RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
  /**
   * Calls after which the server closes a client's connection gracefully (the client reconnects); 0: never.
   * Works around a crash of Deno 2.9.6's HTTP/2 server (see `connection_cap.ts`).
   */
  maxCallsPerConnection: number;
  /** Most examples in one request. */
  maxExamplesPerRequest: number;
  /** Most pixels of one encoded image. */
  maxImagePixels: number;
  /**
   * Image and WAV decoding in worker threads: `workers` at once, `budgetMs` per input (then the worker is
   * replaced and the request refused), `maxQueue` inputs waiting.
   */
  decode: { workers: number; budgetMs: number; maxQueue: number };
  /**
   * Models compute in a worker thread of their own (`worker_engine.ts`), so that no call's compute holds the
   * event loop (health checks, other calls); off: in the server's thread, in slices between which it yields.
   */
  computeWorker: boolean;
  /** Grace period for in-flight calls on shutdown before they are cancelled. */
  shutdownGraceMs: number;
  batching: { enabled: boolean; maxBatchSize: number; maxQueueDelayMicros: number; maxQueueSize: number };
  upstream: {
    kind: UpstreamKind;
    /** OIP: "host:port". */
    address: string;
    /** OIP: model name on the server (default: the local model's name). */
    model: string;
    inputName: string;
    outputName: string;
    /** OIP over TLS. */
    tls: boolean;
    /** HTTP: URL, method, headers, body template, answer path, image encoding. */
    url: string;
    method: string;
    headers: Record<string, string>;
    bodyTemplate: string;
    answerPath: string;
    imageFormat: "png" | "jpeg";
    /** Audio models: forward the defended features (FP32 tensor / `{{tensor}}`) or the defended WAV. */
    audioPayload: AudioPayload;
    timeoutMs: number;
    retries: number;
  };
  tls: { certFile: string; keyFile: string; clientCaFile: string; requireClientCert: boolean };
}

/**
 * Decode workers by default: one per core beyond the one the event loop needs, at least 1, at most 2, so that
 * workers busy with hostile images do not take every core from the event loop (health checks, other calls).
 */
export const DEFAULT_DECODE_WORKERS = Math.max(1, Math.min(2, navigator.hardwareConcurrency - 1));

/**
 * Calls per connection by default: well below the ~100 at which a client closing its connection aborts
 * Deno 2.9.6's HTTP/2 server (measured; `connection_cap.ts`), high enough that reconnecting costs little.
 */
export const DEFAULT_MAX_CALLS_PER_CONNECTION = 50;

/** The defaults: loopback bind, embedded model, batching on. */
export function defaultConfig(): SidecarConfig {
  return {
    bind: "127.0.0.1:50051",
    metricsBind: "127.0.0.1:9464",
    modelDir: "models/fashion-lenet",
    profileDir: "",
    defense: "auto",
    stageSettings: "",
    policy: "auto",
    alpha: 0.05,
    backend: "wasm",
    modality: "auto",
    audio: { maxSeconds: 30 },
    logLevel: "info",
    maxMessageBytes: 4 * 1024 * 1024,
    maxCallsPerConnection: DEFAULT_MAX_CALLS_PER_CONNECTION,
    maxExamplesPerRequest: 256,
    maxImagePixels: 4096 * 4096,
    decode: { workers: DEFAULT_DECODE_WORKERS, budgetMs: 5000, maxQueue: 256 },
    computeWorker: true,
    shutdownGraceMs: 10_000,
    batching: { enabled: true, maxBatchSize: 32, maxQueueDelayMicros: 0, maxQueueSize: 1024 },
    upstream: {
      kind: "none",
      address: "",
      model: "",
      inputName: "input",
      outputName: "",
      tls: false,
      url: "",
      method: "POST",
      headers: {},
      bodyTemplate: "",
      answerPath: "",
      imageFormat: "png",
      audioPayload: "features",
      timeoutMs: 5000,
      retries: 2,
    },
    tls: { certFile: "", keyFile: "", clientCaFile: "", requireClientCert: false },
  };
}

type Kind = "string" | "int" | "fraction" | "bool" | "json-object" | { oneOf: readonly string[] };

/** One option: its path in the config, its flag, its environment variable, its type. */
export interface OptionSpec {
  path: string;
  flag: string;
  env: string;
  kind: Kind;
  help: string;
}

const int = "int" as const;
const str = "string" as const;
const bool = "bool" as const;

/** Every option. */
export const OPTIONS: readonly OptionSpec[] = [
  { path: "bind", flag: "bind", env: "NIP_BIND", kind: str, help: "gRPC listen host:port" },
  {
    path: "metricsBind",
    flag: "metrics-bind",
    env: "NIP_METRICS_BIND",
    kind: str,
    help: "metrics host:port, empty disables",
  },
  { path: "modelDir", flag: "model", env: "NIP_MODEL_DIR", kind: str, help: "model folder (model.json)" },
  { path: "profileDir", flag: "profile", env: "NIP_PROFILE_DIR", kind: str, help: "NIP profile folder" },
  {
    path: "defense",
    flag: "defense",
    env: "NIP_DEFENSE",
    kind: str,
    help: "defense stages joined by + in order, e.g. nip or detect+nip; auto: detect+nip when calibrated",
  },
  {
    path: "stageSettings",
    flag: "stage-settings",
    env: "NIP_STAGE_SETTINGS",
    kind: str,
    help: "stage settings, e.g. smooth.sigma=0.5,smooth.n=10000 (also Certify's)",
  },
  {
    path: "policy",
    flag: "policy",
    env: "NIP_POLICY",
    kind: { oneOf: ["auto", ...POLICIES] },
    help: "defend, detect, flag, reject, defend-if-flagged, smoothed, smoothed-reject; auto: by the stages",
  },
  { path: "alpha", flag: "alpha", env: "NIP_ALPHA", kind: "fraction", help: "flag when p-value <= alpha" },
  {
    path: "backend",
    flag: "backend",
    env: "NIP_BACKEND",
    kind: { oneOf: BACKEND_NAMES },
    help: "tfjs backend",
  },
  {
    path: "modality",
    flag: "modality",
    env: "NIP_MODALITY",
    kind: { oneOf: ["auto", "image", "audio"] },
    help: "model input: auto, image, audio (WAV)",
  },
  {
    path: "audio.maxSeconds",
    flag: "audio-max-seconds",
    env: "NIP_AUDIO_MAX_SECONDS",
    kind: int,
    help: "longest WAV accepted, seconds",
  },
  {
    path: "logLevel",
    flag: "log-level",
    env: "NIP_LOG_LEVEL",
    kind: { oneOf: LOG_LEVELS },
    help: "log level",
  },
  {
    path: "maxMessageBytes",
    flag: "max-message-bytes",
    env: "NIP_MAX_MESSAGE_BYTES",
    kind: int,
    help: "largest request",
  },
  {
    path: "maxCallsPerConnection",
    flag: "max-calls-per-connection",
    env: "NIP_MAX_CALLS_PER_CONNECTION",
    kind: int,
    help: "calls after which a connection is closed gracefully, 0 never",
  },
  {
    path: "maxExamplesPerRequest",
    flag: "max-examples",
    env: "NIP_MAX_EXAMPLES",
    kind: int,
    help: "examples per request",
  },
  {
    path: "maxImagePixels",
    flag: "max-image-pixels",
    env: "NIP_MAX_IMAGE_PIXELS",
    kind: int,
    help: "pixels per image",
  },
  {
    path: "decode.workers",
    flag: "decode-workers",
    env: "NIP_DECODE_WORKERS",
    kind: int,
    help: "decode workers (images, WAVs)",
  },
  {
    path: "decode.budgetMs",
    flag: "decode-budget-ms",
    env: "NIP_DECODE_BUDGET_MS",
    kind: int,
    help: "time budget per decoded image or WAV, ms",
  },
  {
    path: "decode.maxQueue",
    flag: "decode-queue-size",
    env: "NIP_DECODE_QUEUE_SIZE",
    kind: int,
    help: "inputs waiting for a decode worker",
  },
  {
    path: "computeWorker",
    flag: "compute-worker",
    env: "NIP_COMPUTE_WORKER",
    kind: bool,
    help: "models compute in a worker thread, off the event loop",
  },
  {
    path: "shutdownGraceMs",
    flag: "shutdown-grace-ms",
    env: "NIP_SHUTDOWN_GRACE_MS",
    kind: int,
    help: "shutdown grace",
  },
  {
    path: "batching.enabled",
    flag: "batching",
    env: "NIP_BATCHING",
    kind: bool,
    help: "dynamic batching on/off",
  },
  {
    path: "batching.maxBatchSize",
    flag: "max-batch-size",
    env: "NIP_MAX_BATCH_SIZE",
    kind: int,
    help: "examples per batch",
  },
  {
    path: "batching.maxQueueDelayMicros",
    flag: "max-queue-delay-us",
    env: "NIP_MAX_QUEUE_DELAY_US",
    kind: int,
    help: "batch wait, microseconds",
  },
  {
    path: "batching.maxQueueSize",
    flag: "max-queue-size",
    env: "NIP_MAX_QUEUE_SIZE",
    kind: int,
    help: "queued requests",
  },
  {
    path: "upstream.kind",
    flag: "upstream",
    env: "NIP_UPSTREAM",
    kind: { oneOf: ["none", "oip", "http"] },
    help: "upstream kind",
  },
  {
    path: "upstream.address",
    flag: "upstream-address",
    env: "NIP_UPSTREAM_ADDRESS",
    kind: str,
    help: "OIP host:port",
  },
  {
    path: "upstream.model",
    flag: "upstream-model",
    env: "NIP_UPSTREAM_MODEL",
    kind: str,
    help: "OIP model name",
  },
  {
    path: "upstream.inputName",
    flag: "upstream-input",
    env: "NIP_UPSTREAM_INPUT",
    kind: str,
    help: "OIP input tensor",
  },
  {
    path: "upstream.outputName",
    flag: "upstream-output",
    env: "NIP_UPSTREAM_OUTPUT",
    kind: str,
    help: "OIP output tensor",
  },
  { path: "upstream.tls", flag: "upstream-tls", env: "NIP_UPSTREAM_TLS", kind: bool, help: "OIP over TLS" },
  {
    path: "upstream.url",
    flag: "upstream-url",
    env: "NIP_UPSTREAM_URL",
    kind: str,
    help: "HTTP upstream URL",
  },
  {
    path: "upstream.method",
    flag: "upstream-method",
    env: "NIP_UPSTREAM_METHOD",
    kind: str,
    help: "HTTP method",
  },
  {
    path: "upstream.headers",
    flag: "upstream-headers",
    env: "NIP_UPSTREAM_HEADERS",
    kind: "json-object",
    help: "HTTP headers, JSON object",
  },
  {
    path: "upstream.bodyTemplate",
    flag: "upstream-body-template",
    env: "NIP_UPSTREAM_BODY_TEMPLATE",
    kind: str,
    help: "HTTP body template",
  },
  {
    path: "upstream.answerPath",
    flag: "upstream-answer-path",
    env: "NIP_UPSTREAM_ANSWER_PATH",
    kind: str,
    help: "JSON path",
  },
  {
    path: "upstream.imageFormat",
    flag: "upstream-image-format",
    env: "NIP_UPSTREAM_IMAGE_FORMAT",
    kind: { oneOf: ["png", "jpeg"] },
    help: "HTTP image encoding",
  },
  {
    path: "upstream.audioPayload",
    flag: "upstream-audio-payload",
    env: "NIP_UPSTREAM_AUDIO_PAYLOAD",
    kind: { oneOf: ["features", "wav"] },
    help: "audio models: forward features or WAV",
  },
  {
    path: "upstream.timeoutMs",
    flag: "upstream-timeout-ms",
    env: "NIP_UPSTREAM_TIMEOUT_MS",
    kind: int,
    help: "per attempt",
  },
  {
    path: "upstream.retries",
    flag: "upstream-retries",
    env: "NIP_UPSTREAM_RETRIES",
    kind: int,
    help: "retries",
  },
  {
    path: "tls.certFile",
    flag: "tls-cert",
    env: "NIP_TLS_CERT",
    kind: str,
    help: "server certificate (PEM)",
  },
  { path: "tls.keyFile", flag: "tls-key", env: "NIP_TLS_KEY", kind: str, help: "server key (PEM)" },
  {
    path: "tls.clientCaFile",
    flag: "tls-client-ca",
    env: "NIP_TLS_CLIENT_CA",
    kind: str,
    help: "client CA (mTLS; needs --tls-require-client-cert)",
  },
  {
    path: "tls.requireClientCert",
    flag: "tls-require-client-cert",
    env: "NIP_TLS_REQUIRE_CLIENT_CERT",
    kind: bool,
    help: "require client certificates (mTLS)",
  },
];

/** A bad configuration value, naming the option and its source. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

function parseValue(spec: OptionSpec, raw: unknown, source: string): unknown {
  const where = `${spec.path} (${source})`;
  const kind = spec.kind;
  if (kind === "int") {
    const n = typeof raw === "number"
      ? raw
      : typeof raw === "string" && /^-?\d+$/.test(raw.trim())
      ? Number(raw)
      : NaN;
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new ConfigError(`${where}: expected a non-negative integer, got ${JSON.stringify(raw)}`);
    }
    return n;
  }
  if (kind === "fraction") {
    const n = typeof raw === "number"
      ? raw
      : typeof raw === "string" && raw.trim() !== ""
      ? Number(raw)
      : NaN;
    if (!(n > 0 && n < 1)) {
      throw new ConfigError(`${where}: expected a number in (0, 1), got ${JSON.stringify(raw)}`);
    }
    return n;
  }
  if (kind === "bool") {
    if (typeof raw === "boolean") return raw;
    const s = String(raw).trim().toLowerCase();
    if (["1", "true", "yes", "on"].includes(s)) return true;
    if (["0", "false", "no", "off"].includes(s)) return false;
    throw new ConfigError(`${where}: expected true/false, got ${JSON.stringify(raw)}`);
  }
  if (kind === "json-object") {
    let value = raw;
    if (typeof raw === "string") {
      try {
        value = JSON.parse(raw);
      } catch (error) {
        // V8 quotes the text in some messages; the value may hold secrets (upstream headers).
        const at = /at position \d+/.exec((error as Error).message)?.[0];
        throw new ConfigError(`${where}: not JSON${at ? ` (${at})` : ""}; the value is not shown`);
      }
    }
    if (
      value === null || typeof value !== "object" || Array.isArray(value) ||
      Object.values(value).some((v) => typeof v !== "string")
    ) {
      throw new ConfigError(`${where}: expected an object of strings`);
    }
    return value;
  }
  if (typeof raw !== "string") {
    throw new ConfigError(`${where}: expected a string, got ${JSON.stringify(raw)}`);
  }
  if (typeof kind === "object" && !kind.oneOf.includes(raw)) {
    throw new ConfigError(`${where}: "${raw}" is not one of ${kind.oneOf.join(", ")}`);
  }
  return raw;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let node = target;
  for (const key of keys.slice(0, -1)) node = node[key] as Record<string, unknown>;
  node[keys[keys.length - 1]] = value;
}

function flattenFile(value: unknown, prefix: string, out: Map<string, unknown>, file: string): void {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError(`${file}: ${prefix || "top level"} must be an object`);
  }
  for (const [key, v] of Object.entries(value)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (OPTIONS.some((o) => o.path === path)) out.set(path, v);
    else if (OPTIONS.some((o) => o.path.startsWith(path + "."))) flattenFile(v, path, out, file);
    else throw new ConfigError(`${file}: unknown option "${path}"`);
  }
}

/** Parsed command line: option values by path, plus the config file named by --config. */
export function parseFlags(
  args: readonly string[],
): { values: Map<string, string | boolean>; configFile?: string } {
  const values = new Map<string, string | boolean>();
  let configFile: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const m = /^--(no-)?([a-z0-9-]+)(?:=(.*))?$/s.exec(arg);
    if (!m) {
      throw new ConfigError(`unexpected argument "${arg}" (options look like --name=value; see --help)`);
    }
    const [, negated, name, inline] = m;
    if (name === "config") {
      configFile = inline ?? args[++i];
      if (configFile === undefined) throw new ConfigError("--config needs a file path");
      continue;
    }
    const spec = OPTIONS.find((o) => o.flag === name);
    if (!spec) throw new ConfigError(`unknown flag --${name}; see --help`);
    if (spec.kind === "bool") {
      if (negated) values.set(spec.path, false);
      else if (inline !== undefined) values.set(spec.path, inline);
      else if (args[i + 1] !== undefined && /^(true|false|on|off|yes|no|1|0)$/i.test(args[i + 1])) {
        values.set(spec.path, args[++i]);
      } else values.set(spec.path, true);
      continue;
    }
    if (negated) throw new ConfigError(`--no-${name} is only for on/off options`);
    const value = inline ?? args[++i];
    if (value === undefined) throw new ConfigError(`--${name} needs a value`);
    values.set(spec.path, value);
  }
  return { values, configFile };
}

/** The flags' help text. */
export function helpText(): string {
  const lines = [
    "nip-sidecar: gRPC NIP defense sidecar",
    "",
    "usage: deno task start [--config file.json] [flags]",
    "",
  ];
  for (const o of OPTIONS) lines.push(`  --${o.flag.padEnd(26)} ${o.env.padEnd(30)} ${o.help}`);
  lines.push("", "Precedence: flags > environment > config file (--config / NIP_CONFIG) > defaults.");
  return lines.join("\n");
}

/** Where configuration comes from (injectable for tests). */
export interface ConfigSources {
  args?: readonly string[];
  env?: Record<string, string | undefined>;
  readTextFile?: (path: string) => string;
}

/** Builds the configuration: defaults, then the file, then the environment, then the flags. */
export function loadConfig(sources: ConfigSources = {}): SidecarConfig {
  const env = sources.env ?? Deno.env.toObject();
  const readTextFile = sources.readTextFile ?? ((p: string) => Deno.readTextFileSync(p));
  const flags = parseFlags(sources.args ?? []);
  const config = defaultConfig() as unknown as Record<string, unknown>;
  const configFile = flags.configFile ?? env.NIP_CONFIG;
  if (configFile) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readTextFile(configFile));
    } catch (error) {
      throw new ConfigError(`config file ${configFile}: ${(error as Error).message}`);
    }
    const fromFile = new Map<string, unknown>();
    flattenFile(parsed, "", fromFile, `config file ${configFile}`);
    for (const [path, raw] of fromFile) {
      const spec = OPTIONS.find((o) => o.path === path)!;
      setPath(config, path, parseValue(spec, raw, `config file ${configFile}`));
    }
  }
  for (const spec of OPTIONS) {
    const raw = env[spec.env];
    if (raw !== undefined && raw !== "") setPath(config, spec.path, parseValue(spec, raw, `env ${spec.env}`));
  }
  for (const [path, raw] of flags.values) {
    const spec = OPTIONS.find((o) => o.path === path)!;
    setPath(config, path, parseValue(spec, raw, `flag --${spec.flag}`));
  }
  const result = config as unknown as SidecarConfig;
  validateConfig(result);
  return result;
}

/** Cross-field checks. */
export function validateConfig(c: SidecarConfig): void {
  const hostPort = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;
  if (!hostPort.test(c.bind)) throw new ConfigError(`bind: "${c.bind}" is not host:port`);
  if (c.metricsBind !== "" && !hostPort.test(c.metricsBind)) {
    throw new ConfigError(`metricsBind: "${c.metricsBind}" is not host:port (or empty to disable)`);
  }
  if (c.batching.maxBatchSize < 1) throw new ConfigError("batching.maxBatchSize must be >= 1");
  if (c.batching.maxQueueSize < 1) throw new ConfigError("batching.maxQueueSize must be >= 1");
  if (c.maxExamplesPerRequest < 1) throw new ConfigError("maxExamplesPerRequest must be >= 1");
  if (c.maxMessageBytes < 1024) throw new ConfigError("maxMessageBytes must be >= 1024");
  if (c.decode.workers < 1) throw new ConfigError("decode.workers must be >= 1");
  if (c.decode.budgetMs < 1) throw new ConfigError("decode.budgetMs must be >= 1");
  if (c.decode.maxQueue < 1) throw new ConfigError("decode.maxQueue must be >= 1");
  if (c.audio.maxSeconds < 1) throw new ConfigError("audio.maxSeconds must be >= 1");
  if (c.upstream.kind === "oip" && !hostPort.test(c.upstream.address)) {
    throw new ConfigError(
      `upstream.address: "${c.upstream.address}" is not host:port (needed for upstream kind oip)`,
    );
  }
  if (c.upstream.kind === "http") {
    try {
      new URL(c.upstream.url);
    } catch {
      throw new ConfigError(
        `upstream.url: "${redactUrl(c.upstream.url)}" is not a URL (needed for upstream kind http)`,
      );
    }
    if (!c.upstream.answerPath) throw new ConfigError("upstream.answerPath is needed for upstream kind http");
  }
  if ((c.tls.certFile === "") !== (c.tls.keyFile === "")) {
    throw new ConfigError("tls.certFile and tls.keyFile must be given together");
  }
  if ((c.tls.clientCaFile !== "" || c.tls.requireClientCert) && c.tls.certFile === "") {
    throw new ConfigError(
      "mTLS (tls.clientCaFile / tls.requireClientCert) needs tls.certFile and tls.keyFile",
    );
  }
  if (c.tls.requireClientCert && c.tls.clientCaFile === "") {
    throw new ConfigError("tls.requireClientCert needs tls.clientCaFile to verify client certificates");
  }
  // A client CA alone would accept clients without a certificate, or with one it does not trust.
  if (c.tls.clientCaFile !== "" && !c.tls.requireClientCert) {
    throw new ConfigError(
      "tls.clientCaFile without tls.requireClientCert would accept clients without a trusted certificate; " +
        "add --tls-require-client-cert (NIP_TLS_REQUIRE_CLIENT_CERT=true) for mTLS, or drop the client CA",
    );
  }
  if (c.defense.split("+").some((name) => !/^[a-z0-9-]+$/.test(name.trim()))) {
    throw new ConfigError(`defense: "${c.defense}" must be stage names joined by + (e.g. nip or jc+nip)`);
  }
  if (c.stageSettings !== "") {
    try {
      parseStageSettings(c.stageSettings);
    } catch (error) {
      throw new ConfigError(`stageSettings: ${(error as Error).message}`);
    }
  }
  if (c.profileDir === "") c.profileDir = `${c.modelDir.replace(/\/$/, "")}/profile`;
}
