/**
 * A real sidecar started in this process on loopback, as the tests start them: the image model
 * (`models/fashion-lenet`, default pipeline) with an OIP upstream serving the same model (so Classify is
 * exercised end to end), or the audio model (`models/fsdd-speaker`, WAV input, no upstream).
 * `sidecar_main.ts` runs one in a child process for the fuzzer and the soak.
 *
 * @module
 */
import { loadLayersModel } from "../engine/model_io.ts";
import { createSpeakerFrontEnd } from "../server/audio.ts";
import { defaultConfig, type SidecarConfig } from "../server/config.ts";
import { loadEngine } from "../server/load_engine.ts";
import { createLogger } from "../server/log.ts";
import { startSidecar, tensorMemory } from "../server/server.ts";
import { OipUpstream } from "../upstream/oip_client.ts";
import { startOipServer } from "../upstream/oip_server.ts";

/** A started sidecar. */
export interface LocalSidecar {
  address: string;
  metricsUrl: string;
  /** The upstream's address (image: an OIP server of the same model), or undefined without one. */
  upstreamAddress?: string;
  /** Tensors alive in this process now, its compute worker's included. */
  tensors(): number;
  /** Shuts the sidecar and its upstream down. */
  close(): Promise<void>;
}

function baseConfig(): SidecarConfig {
  const config = defaultConfig();
  config.bind = "127.0.0.1:0";
  config.metricsBind = "127.0.0.1:0";
  // Room for the soak's 64 workers and the fuzzer's bursts: a full queue is not what they look for.
  config.batching.maxQueueSize = 4096;
  return config;
}

/** Where the sidecar's model computes: its own worker (the product's default) or the server's thread. */
export interface LocalSidecarOptions {
  computeWorker?: boolean;
}

/** Loads the embedded model of `modality` and starts its sidecar on free loopback ports. */
export async function startLocalSidecar(
  modality: "image" | "audio",
  { computeWorker = true }: LocalSidecarOptions = {},
): Promise<LocalSidecar> {
  // Errors only: the fuzzer provokes thousands of rejections, each logged at info.
  const logger = createLogger("error", () => {});
  const config = baseConfig();
  if (modality === "audio") {
    const engine = await loadEngine({ modelDir: "models/fsdd-speaker", defenses: ["nip"] }, computeWorker);
    const wav = createSpeakerFrontEnd({
      maxSeconds: config.audio.maxSeconds,
      maxBytes: config.maxMessageBytes,
    });
    const sidecar = await startSidecar({ config, engines: [engine], logger, wav });
    return {
      address: `127.0.0.1:${sidecar.port}`,
      metricsUrl: `http://127.0.0.1:${sidecar.metricsPort}/metrics`,
      tensors: () => tensorMemory([engine]).numTensors,
      close: async () => {
        await sidecar.shutdown();
        engine.dispose();
      },
    };
  }
  const modelDir = "models/fashion-lenet";
  const engine = await loadEngine({ modelDir, defenses: "auto" }, computeWorker);
  // The upstream model server answers from this process's thread, as a stand-in for a separate server.
  const upstreamModel = await loadLayersModel(modelDir);
  const oip = await startOipServer({ model: upstreamModel, modelName: engine.name });
  const upstream = new OipUpstream({
    address: oip.address,
    model: engine.name,
    inputName: "input",
    timeoutMs: 5000,
    retries: 1,
  });
  const sidecar = await startSidecar({ config, engines: [engine], upstream, logger });
  return {
    address: `127.0.0.1:${sidecar.port}`,
    metricsUrl: `http://127.0.0.1:${sidecar.metricsPort}/metrics`,
    upstreamAddress: oip.address,
    tensors: () => tensorMemory([engine]).numTensors,
    close: async () => {
      await sidecar.shutdown();
      upstream.close();
      await oip.close();
      upstreamModel.dispose();
      engine.dispose();
    },
  };
}
