/**
 * The gRPC sidecar: `nip.v1.DefenseService` plus `grpc.health.v1` health and server reflection on one
 * grpc-js server, optional TLS/mTLS, Prometheus metrics on a separate HTTP port, JSON logs, and graceful
 * shutdown (stop accepting, finish in-flight calls).
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import { LOADER_OPTIONS } from "../upstream/oip_proto.ts";
import type { Upstream } from "../upstream/types.ts";
import type { AudioFrontEnd } from "./audio.ts";
import type { SidecarConfig } from "./config.ts";
import type { ServingEngine } from "./engine.ts";
import { statusName, toStatus } from "./errors.ts";
import { createLogger, type Logger } from "./log.ts";
import { type MetricsServer, serveMetrics, SidecarMetrics } from "./metrics.ts";
import { type CertifyMessage, DefenseServiceCore, type RequestMessage } from "./service.ts";
import { startTlsTerminator, type TlsTerminator } from "./tls_terminator.ts";

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
  engines: ServingEngine[];
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
  /** Calls in flight now. */
  readonly inFlight: number;
  /** Graceful shutdown: NOT_SERVING, stop accepting, finish in-flight calls (up to the grace period). */
  shutdown(): Promise<void>;
}

function deadlineOf(
  call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
) {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : Number(d);
  return Number.isFinite(ms) ? ms : undefined;
}

/** Starts the sidecar and resolves once it listens. */
export async function startSidecar(options: SidecarOptions): Promise<Sidecar> {
  const { config } = options;
  const log = options.logger ?? createLogger(config.logLevel);
  const metrics = new SidecarMetrics();
  for (const engine of options.engines) await engine.warmUp();
  options.wav?.warmUp();
  const core = new DefenseServiceCore(options.engines, config, metrics, options.upstream, options.wav);
  let inFlight = 0;
  metrics.addGauge("nip_in_flight_calls", "gRPC calls being answered.", () => inFlight);

  const server = new grpc.Server({
    "grpc.max_receive_message_length": config.maxMessageBytes,
    "grpc.max_send_message_length": Math.max(config.maxMessageBytes, 64 * 1024 * 1024),
  });
  const packageDefinition = loadNipPackageDefinition();
  // deno-lint-ignore no-explicit-any
  const pkg = grpc.loadPackageDefinition(packageDefinition) as any;
  const definition = pkg.nip.v1.DefenseService.service as grpc.ServiceDefinition;

  const finish = (method: string, start: number, code: grpc.status, message?: string) => {
    const seconds = (performance.now() - start) / 1000;
    metrics.requests.inc({ method, code: statusName(code) });
    metrics.latency.observe(seconds, { method });
    if (code === grpc.status.OK) log.debug("call", { method, code: "OK", ms: seconds * 1000 });
    else if (code === grpc.status.INTERNAL) {
      log.error("call failed", { method, code: statusName(code), error: message });
    } else log.info("call rejected", { method, code: statusName(code), error: message });
  };

  const unary =
    <Req>(method: string, handle: (request: Req, deadline?: number) => unknown) =>
    (call: grpc.ServerUnaryCall<Req, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const start = performance.now();
      inFlight++;
      Promise.resolve()
        .then(() => handle(call.request, deadlineOf(call)))
        .then(
          (response) => {
            finish(method, start, grpc.status.OK);
            callback(null, response);
          },
          (error) => {
            const { code, message } = toStatus(error);
            finish(method, start, code, message);
            callback({ code, details: message, name: "Error", message } as grpc.ServiceError, null);
          },
        )
        .finally(() => inFlight--);
    };

  const stream = <Req extends { id?: string; request?: RequestMessage | null }>(
    method: string,
    handle: (request: RequestMessage, deadline?: number) => Promise<unknown>,
  ) =>
  (call: grpc.ServerDuplexStream<Req, unknown>) => {
    inFlight++;
    let pending = 0;
    let ended = false;
    const deadline = deadlineOf(call);
    const maybeEnd = () => {
      if (ended && pending === 0) {
        inFlight--;
        if (!call.cancelled) call.end();
      }
    };
    call.on("data", (message: Req) => {
      pending++;
      const start = performance.now();
      const id = message.id ?? "";
      Promise.resolve()
        .then(() => handle(message.request ?? {}, deadline))
        .then(
          (response) => {
            finish(method, start, grpc.status.OK);
            if (!call.cancelled) call.write({ id, response });
          },
          (error) => {
            const { code, message: text } = toStatus(error);
            finish(method, start, code, text);
            if (!call.cancelled) call.write({ id, error: { code, message: text } });
          },
        )
        .finally(() => {
          pending--;
          maybeEnd();
        });
    });
    call.on("end", () => {
      ended = true;
      maybeEnd();
    });
    call.on("error", (error) => log.warn("stream error", { method, error }));
    call.on("cancelled", () => {
      if (!ended) {
        ended = true;
        if (pending === 0) inFlight--;
      }
    });
  };

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
  health.addToServer(server);
  new ReflectionService(packageDefinition).addToServer(server);

  // With TLS on, grpc-js listens in plaintext on loopback behind the node:tls terminator (see
  // tls_terminator.ts for why grpc-js's own TLS server is not used under Deno).
  const tlsOn = config.tls.certFile !== "";
  const grpcBind = tlsOn ? "127.0.0.1:0" : config.bind;
  const grpcPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      grpcBind,
      grpc.ServerCredentials.createInsecure(),
      (error, p) => (error ? reject(error) : resolve(p)),
    )
  );
  let terminator: TlsTerminator | undefined;
  if (tlsOn) {
    terminator = await startTlsTerminator({
      bind: config.bind,
      targetPort: grpcPort,
      cert: Deno.readFileSync(config.tls.certFile),
      key: Deno.readFileSync(config.tls.keyFile),
      clientCa: config.tls.clientCaFile ? Deno.readFileSync(config.tls.clientCaFile) : undefined,
      requireClientCert: config.tls.requireClientCert,
      onError: (error) => log.info("TLS handshake failed", { error: error.message }),
    });
  }
  const port = terminator?.port ?? grpcPort;
  let metricsServer: MetricsServer | undefined;
  if (config.metricsBind) metricsServer = await serveMetrics(config.metricsBind, metrics);
  log.info("listening", {
    grpc: config.bind.replace(/:\d+$/, `:${port}`),
    metrics: metricsServer ? config.metricsBind.replace(/:\d+$/, `:${metricsServer.port}`) : "off",
    models: core.modelNames,
    modality: options.wav ? "audio" : "image",
    upstream: options.upstream?.description ?? "none",
    tls: config.tls.certFile ? (config.tls.requireClientCert ? "mtls" : "tls") : "off",
    batching: config.batching,
  });

  let shuttingDown: Promise<void> | undefined;
  const shutdown = () => {
    shuttingDown ??= (async () => {
      log.info("shutting down", { inFlight });
      health.setStatus("", "NOT_SERVING");
      health.setStatus(SERVICE_NAME, "NOT_SERVING");
      terminator?.stopAccepting();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          log.warn("grace period over; cancelling calls in flight", { inFlight });
          server.forceShutdown();
          resolve();
        }, config.shutdownGraceMs);
        server.tryShutdown(() => resolve());
      });
      clearTimeout(timer);
      terminator?.destroy();
      await core.close();
      options.upstream?.close();
      await metricsServer?.close();
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
      return inFlight;
    },
    shutdown,
  };
}
