/**
 * Builds the configured upstream (none, OIP gRPC, HTTP JSON) from the sidecar configuration; for an audio
 * model with `upstream.audioPayload: "wav"`, one with the "wav" payload, which receives the defended WAV.
 *
 * @module
 */
import { HttpJsonUpstream } from "../upstream/http_json.ts";
import { OipUpstream } from "../upstream/oip_client.ts";
import type { Upstream } from "../upstream/types.ts";
import type { SidecarConfig } from "./config.ts";
import type { Logger } from "./log.ts";

/** The upstream of `config.upstream`, or undefined when its kind is "none". */
export function createUpstream(
  config: SidecarConfig,
  defaultModel: string,
  log?: Logger,
  modality: "image" | "audio" = "image",
): Upstream | undefined {
  const u = config.upstream;
  const onRetry = (error: Error) => log?.warn("retrying upstream call", { error: error.message });
  const payload = modality === "audio" && u.audioPayload === "wav" ? "wav" : "tensor";
  if (u.kind === "oip") {
    return new OipUpstream({
      address: u.address,
      model: u.model || defaultModel,
      inputName: u.inputName,
      outputName: u.outputName || undefined,
      payload,
      timeoutMs: u.timeoutMs,
      retries: u.retries,
      tls: u.tls,
      onRetry,
    });
  }
  if (u.kind === "http") {
    return new HttpJsonUpstream({
      url: u.url,
      method: u.method,
      headers: u.headers,
      bodyTemplate: u.bodyTemplate,
      answerPath: u.answerPath,
      imageFormat: u.imageFormat,
      payload,
      timeoutMs: u.timeoutMs,
      retries: u.retries,
      onRetry,
    });
  }
  return undefined;
}
