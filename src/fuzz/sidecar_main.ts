/**
 * The fuzzer's and the soak's server process: one sidecar of `local_sidecar.ts` plus a loopback
 * `GET /tensors` endpoint answering the process's live tensor count (the sidecar does not export it, and a
 * flat count is part of the oracle). Prints one JSON line `{"ready": ...}` with the addresses on stdout
 * once listening; SIGTERM shuts down and exits 0. The image and audio sidecars run in separate processes,
 * as they would be deployed, so that one's compute does not stall the other's event loop.
 *
 * `deno run -A src/fuzz/sidecar_main.ts [--modality image|audio]`
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../engine/backend.ts";
import { startLocalSidecar } from "./local_sidecar.ts";

if (import.meta.main) {
  await initBackend("wasm");
  const local = await startLocalSidecar(Deno.args.includes("audio") ? "audio" : "image");
  const tensors = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response(String(tf.memory().numTensors)),
  );
  console.log(JSON.stringify({
    ready: {
      address: local.address,
      metricsUrl: local.metricsUrl,
      upstream: local.upstreamAddress,
      tensorsUrl: `http://127.0.0.1:${tensors.addr.port}/tensors`,
    },
  }));
  Deno.addSignalListener("SIGTERM", async () => {
    await local.close();
    await tensors.shutdown();
    Deno.exit(0);
  });
}
