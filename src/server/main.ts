/**
 * `deno task start`: loads the configured model and NIP profile (default: the embedded
 * `models/fashion-lenet`), starts the gRPC sidecar, and shuts down gracefully on SIGTERM/SIGINT
 * (stop accepting, finish in-flight calls, exit 0). `--help` lists every flag and variable.
 * A model that reads the audio front end's features (`--model models/fsdd-speaker`) is served with
 * WAV input (`--modality`, default auto; see `audio.ts`).
 *
 * @module
 */
import { parseStageSettings } from "../stages/registry.ts";
import { createSpeakerFrontEnd, resolveModality } from "./audio.ts";
import { ConfigError, helpText, loadConfig } from "./config.ts";
import { loadEngine } from "./load_engine.ts";
import { createLogger, redactingLogger } from "./log.ts";
import { secretRedactor, upstreamSecrets } from "./redact.ts";
import { startSidecar } from "./server.ts";
import { createUpstream } from "./upstream_factory.ts";

if (import.meta.main) {
  if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
    console.log(helpText());
    Deno.exit(0);
  }
  let config;
  try {
    config = loadConfig({ args: Deno.args });
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`nip-sidecar: ${error.message}`);
      Deno.exit(2);
    }
    throw error;
  }
  const log = redactingLogger(
    createLogger(config.logLevel),
    secretRedactor(upstreamSecrets(config.upstream)),
  );
  let sidecar;
  try {
    const engine = await loadEngine({
      modelDir: config.modelDir,
      profileDir: config.profileDir,
      backend: config.backend,
      defenses: config.defense === "auto" ? "auto" : config.defense.split("+").map((s) => s.trim()),
      policy: config.policy,
      alpha: config.alpha,
      overrides: config.stageSettings === "" ? undefined : parseStageSettings(config.stageSettings),
    }, config.computeWorker);
    const modality = resolveModality(config.modality, engine);
    if (engine.needsSignals && modality !== "audio") {
      throw new Error(
        `defense ${config.defense} acts on raw waveforms; it needs an audio model served with WAV input`,
      );
    }
    const wav = modality === "audio"
      ? createSpeakerFrontEnd({ maxSeconds: config.audio.maxSeconds, maxBytes: config.maxMessageBytes })
      : undefined;
    const upstream = createUpstream(config, engine.name, log, modality);
    sidecar = await startSidecar({ config, engines: [engine], upstream, logger: log, wav });
  } catch (error) {
    log.error("startup failed", { error: (error as Error).message });
    Deno.exit(1);
  }
  const stop = async (signal: string) => {
    log.info("signal", { signal });
    await sidecar.shutdown();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", () => void stop("SIGTERM"));
  Deno.addSignalListener("SIGINT", () => void stop("SIGINT"));
}
