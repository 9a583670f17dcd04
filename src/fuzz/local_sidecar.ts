/**
 * A real sidecar started in this process on loopback, as the tests start them: the image model
 * (`models/fashion-lenet`, default pipeline) with an OIP upstream serving the same model (so Classify is
 * exercised end to end), or the audio model (`models/fsdd-speaker`, WAV input, no upstream).
 * `sidecar_main.ts` runs one in a child process for the fuzzer and the soak.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { audioFrontEnd } from "../../audio/baselines/index.ts";
import { loadPipeline } from "../pipeline.ts";
import { createSpeakerFrontEnd } from "../server/audio.ts";
import { defaultConfig, type SidecarConfig } from "../server/config.ts";
import { ServingEngine } from "../server/engine.ts";
import { createLogger } from "../server/log.ts";
import { startSidecar } from "../server/server.ts";
import { OipUpstream } from "../upstream/oip_client.ts";
import { startOipServer } from "../upstream/oip_server.ts";

/** A started sidecar. */
export interface LocalSidecar {
  address: string;
  metricsUrl: string;
  /** The upstream's address (image: an OIP server of the same model), or undefined without one. */
  upstreamAddress?: string;
  /** Tensors alive in this process now. */
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

/** Loads the embedded model of `modality` and starts its sidecar on free loopback ports. */
export async function startLocalSidecar(modality: "image" | "audio"): Promise<LocalSidecar> {
  // Errors only: the fuzzer provokes thousands of rejections, each logged at info.
  const logger = createLogger("error", () => {});
  const config = baseConfig();
  if (modality === "audio") {
    const speaker = await loadPipeline({ modelDir: "models/fsdd-speaker", defenses: ["nip"] });
    const wav = createSpeakerFrontEnd({
      maxSeconds: config.audio.maxSeconds,
      maxBytes: config.maxMessageBytes,
    });
    const sidecar = await startSidecar({
      config,
      engines: [new ServingEngine(speaker, audioFrontEnd)],
      logger,
      wav,
    });
    return {
      address: `127.0.0.1:${sidecar.port}`,
      metricsUrl: `http://127.0.0.1:${sidecar.metricsPort}/metrics`,
      tensors: () => tf.memory().numTensors,
      close: () => sidecar.shutdown(),
    };
  }
  const pipeline = await loadPipeline({ modelDir: "models/fashion-lenet", defenses: "auto" });
  const engine = new ServingEngine(pipeline);
  const oip = await startOipServer({ model: pipeline.split.model, modelName: engine.name });
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
    tensors: () => tf.memory().numTensors,
    close: async () => {
      await sidecar.shutdown();
      upstream.close();
      await oip.close();
    },
  };
}
