/**
 * The gRPC sidecar: `nip.v1.DefenseService` plus `grpc.health.v1` health and server reflection on one
 * grpc-js server, optional TLS/mTLS, Prometheus metrics on a separate HTTP port, JSON logs, and graceful
 * shutdown (stop accepting, finish in-flight calls).
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import * as tf from "@tensorflow/tfjs";
import * as protoLoader from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import { LOADER_OPTIONS } from "../upstream/oip_proto.ts";
import type { Upstream } from "../upstream/types.ts";
import { addTolerantly, checkMetadata, tolerantDefinition, UndecodableMessage } from "./admission.ts";
import type { AudioFrontEnd } from "./audio.ts";
import { CallLedger } from "./calls.ts";
import type { SidecarConfig } from "./config.ts";
import type { Engine, TensorMemory } from "./engine.ts";
import { statusName, toStatus } from "./errors.ts";
import { createLogger, type Logger, redactingLogger } from "./log.ts";
import { capCallsPerConnection } from "./connection_cap.ts";
import { LoopLagSampler } from "./loop_lag.ts";
import { type MetricsServer, serveMetrics, SidecarMetrics } from "./metrics.ts";
import { secretRedactor, upstreamSecrets } from "./redact.ts";
import { type CertifyMessage, DefenseServiceCore, type RequestMessage } from "./service.ts";
import { StreamRegistry } from "./streams.ts";
import { serverCredentials, tlsMode } from "./tls.ts";

/** Fully qualified name of the defense service. */
export const SERVICE_NAME = "nip.v1.DefenseService";

/** Loads `proto/nip/v1/nip.proto`. */
export function loadNipPackageDefinition(): protoLoader.PackageDefinition {
  return protoLoader.loadSync("nip/v1/nip.proto", LOADER_OPTIONS);
}

/** What {@link startSidecar} needs. */
export interface SidecarOptions {
  config: SidecarConfig;
  /** Served models; the first is the default. */
  engines: Engine[];
  /** Where `Classify` forwards; one with the "wav" payload receives the defended WAV (needs `wav`). */
  upstream?: Upstream;
  logger?: Logger;
  /**
   * The WAV front end (`createSpeakerFrontEnd` in `audio.ts`): when set, the models are served as audio
   * models (WAV input only; defended WAV or features out) and must read the front end's features.
   */
  wav?: AudioFrontEnd;
}

/** A running sidecar. */
export interface Sidecar {
  /** Bound gRPC port. */
  port: number;
  /** Bound metrics port, or undefined when metrics are off. */
  metricsPort?: number;
  metrics: SidecarMetrics;
  health: HealthImplementation;
  /** Unary calls and stream messages being answered now. */
  readonly inFlight: number;
  /** Streams open now. */
  readonly openStreams: number;
  /**
   * Graceful shutdown: NOT_SERVING, stop accepting, finish in-flight calls; at the end of the grace period
   * whatever still runs is answered UNAVAILABLE and the returned promise resolves.
   */
  shutdown(): Promise<void>;
}

function deadlineOf(
  call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
) {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : Number(d);
  return Number.isFinite(ms) ? ms : undefined;
}

/** How long the grace period's UNAVAILABLE answers get to be written before the connections are cut. */
const ANSWER_FLUSH_MS = 100;

/** Whether `promise` settles before `until` (a `performance.now()` time). */
async function settlesBy(promise: Promise<unknown>, until: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, until - performance.now()));
  });
  try {
    return await Promise.race([promise.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** This thread's tfjs memory plus that of every engine computing in its own worker. */
export function tensorMemory(engines: readonly Engine[]): TensorMemory {
  // The engine's own counts, which tf.memory() returns too: tf.memory() would also start a backend, and a
  // server whose models all compute in workers has none in its own thread (wasm's start is asynchronous).
  let { numTensors, numBytes } = tf.engine().state;
  for (const engine of engines) {
    const own = engine.ownTensors?.();
    numTensors += own?.numTensors ?? 0;
    numBytes += own?.numBytes ?? 0;
  }
  return { numTensors, numBytes };
}

/** Starts the sidecar and resolves once it listens. */
export async function startSidecar(options: SidecarOptions): Promise<Sidecar> {
  const { config } = options;
  // The upstream's credentials stay in the process: out of logs and out of the messages clients get.
  const redact = secretRedactor(upstreamSecrets(config.upstream));
  const log = redactingLogger(options.logger ?? createLogger(config.logLevel), redact);
  const metrics = new SidecarMetrics();
  for (const engine of options.engines) await engine.warmUp();
  options.wav?.warmUp();
  const core = new DefenseServiceCore(options.engines, config, metrics, options.upstream, options.wav);
  const finish = (method: string, seconds: number, code: grpc.status, message?: string) => {
    metrics.requests.inc({ method, code: statusName(code) });
    metrics.latency.observe(seconds, { method });
    if (code === grpc.status.OK) log.debug("call", { method, code: "OK", ms: seconds * 1000 });
    else if (code === grpc.status.INTERNAL) {
      log.error("call failed", { method, code: statusName(code), error: message });
    } else log.info("call rejected", { method, code: statusName(code), error: message });
  };
  const statusOf = (error: unknown) => {
    const { code, message } = toStatus(error);
    return { code, message: redact(message) };
  };
  const ledger = new CallLedger(finish);
  const streams = new StreamRegistry();
  // Read at scrape time, so that a scrape under load sees the live values.
  metrics.addGauge(
    "nip_in_flight_calls",
    "Unary calls and stream messages being answered.",
    () => ledger.size,
  );
  metrics.addGauge("nip_open_streams", "DefendStream and ClassifyStream calls open.", () => streams.size);
  metrics.addGauge(
    "nip_tensors",
    "tfjs tensors allocated, in the server's thread and its compute workers.",
    () => tensorMemory(options.engines).numTensors,
  );
  metrics.addGauge(
    "nip_tensor_bytes",
    "Bytes held by tfjs tensors, in the server's thread and its compute workers.",
    () => tensorMemory(options.engines).numBytes,
  );
  const loopLag = new LoopLagSampler((seconds) => metrics.loopLag.observe(seconds));
  metrics.addGauge(
    "nip_event_loop_lag_max_seconds",
    "The largest event-loop lag since the start.",
    () => loopLag.maxSeconds,
  );

  const server = new grpc.Server({
    "grpc.max_receive_message_length": config.maxMessageBytes,
    "grpc.max_send_message_length": Math.max(config.maxMessageBytes, 64 * 1024 * 1024),
  });
  const packageDefinition = loadNipPackageDefinition();
  // deno-lint-ignore no-explicit-any
  const pkg = grpc.loadPackageDefinition(packageDefinition) as any;
  const definition = tolerantDefinition(pkg.nip.v1.DefenseService.service as grpc.ServiceDefinition);

  const unary = <Req>(method: string, handle: (request: Req, deadline?: number) => unknown) =>
  (
    call: grpc.ServerUnaryCall<Req | UndecodableMessage, unknown>,
    callback: grpc.sendUnaryData<unknown>,
  ) => {
    const answer = ledger.begin(method, (code, message, response) => {
      if (code === grpc.status.OK) callback(null, response);
      else callback({ code, details: message, name: "Error", message } as grpc.ServiceError, null);
    });
    const request = call.request;
    const refused = request instanceof UndecodableMessage
      ? request.error("request")
      : checkMetadata(call.metadata);
    if (refused) return answer.settle(refused.code, refused.message);
    void answer.run(() => handle(request as Req, deadlineOf(call)), statusOf);
  };
  const stream = (method: string, handle: (request: RequestMessage, deadline?: number) => Promise<unknown>) =>
    streams.handler(method, handle, ledger, log, statusOf, deadlineOf);

  server.addService(definition, {
    Defend: unary<RequestMessage>("Defend", (r) => core.defend(r)),
    Classify: unary<RequestMessage>("Classify", (r, d) => core.classify(r, d)),
    Predict: unary<RequestMessage>("Predict", (r) => core.predict(r)),
    Describe: unary<{ model?: string }>("Describe", (r) => core.describe(r)),
    Certify: unary<CertifyMessage>("Certify", (r) => core.certify(r)),
    DefendStream: stream("DefendStream", (r) => core.defend(r)),
    ClassifyStream: stream("ClassifyStream", (r, d) => core.classify(r, d)),
  });
  const health = new HealthImplementation({ "": "SERVING", [SERVICE_NAME]: "SERVING" });
  // A model that can no longer compute makes the whole sidecar unhealthy, so that its orchestrator restarts it.
  for (const engine of options.engines) {
    void engine.failure?.then((error) => {
      log.error("model cannot compute; reporting NOT_SERVING", { model: engine.name, error: error.message });
      health.setStatus("", "NOT_SERVING");
      health.setStatus(SERVICE_NAME, "NOT_SERVING");
    });
  }
  addTolerantly(server, (target) => health.addToServer(target as grpc.Server));
  new ReflectionService(packageDefinition).addToServer(server);

  // One listener, with the configured credentials: the service, health and reflection are reachable
  // only through it (with TLS on, there is no plaintext port to walk around it).
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      config.bind,
      serverCredentials(config.tls),
      (error, p) => (error ? reject(error) : resolve(p)),
    )
  );
  capCallsPerConnection(server, config.maxCallsPerConnection);
  let metricsServer: MetricsServer | undefined;
  if (config.metricsBind) metricsServer = await serveMetrics(config.metricsBind, metrics);
  log.info("listening", {
    grpc: config.bind.replace(/:\d+$/, `:${port}`),
    metrics: metricsServer ? config.metricsBind.replace(/:\d+$/, `:${metricsServer.port}`) : "off",
    models: core.modelNames,
    modality: options.wav ? "audio" : "image",
    upstream: options.upstream?.description ?? "none",
    tls: tlsMode(config.tls),
    batching: config.batching,
  });

  let shuttingDown: Promise<void> | undefined;
  const shutdown = () => {
    shuttingDown ??= (async () => {
      log.info("shutting down", { inFlight: ledger.size, streams: streams.size });
      health.setStatus("", "NOT_SERVING");
      health.setStatus(SERVICE_NAME, "NOT_SERVING");
      const graceEnd = performance.now() + config.shutdownGraceMs;
      // Idle streams would hold their connections open for the whole grace period: end them now.
      streams.drain();
      const closed = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      if (!await settlesBy(closed, graceEnd)) {
        log.warn("grace period over; answering the calls in flight UNAVAILABLE", { inFlight: ledger.size });
        ledger.settleAll(grpc.status.UNAVAILABLE, "server is shutting down: the grace period ended first");
        // A moment for those answers to be written before the connections are cut.
        await settlesBy(closed, performance.now() + ANSWER_FLUSH_MS);
        server.forceShutdown();
      }
      // Batches still waiting on the upstream past the grace period are abandoned: their calls are answered.
      await core.close(graceEnd);
      options.upstream?.close();
      await metricsServer?.close();
      loopLag.stop();
      log.info("stopped");
    })();
    return shuttingDown;
  };

  return {
    port,
    metricsPort: metricsServer?.port,
    metrics,
    health,
    get inFlight() {
      return ledger.size;
    },
    get openStreams() {
      return streams.size;
    },
    shutdown,
  };
}
