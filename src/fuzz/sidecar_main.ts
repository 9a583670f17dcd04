/**
 * The fuzzer's and the soak's server process: one sidecar of `local_sidecar.ts` plus a loopback
 * `GET /tensors` endpoint answering the live tensor count of the process and its compute worker (a flat
 * count is part of the oracle, read without a metrics scrape). Prints one JSON line `{"ready": ...}` with the addresses on stdout
 * once listening; SIGTERM shuts down and exits 0. The image and audio sidecars run in separate processes,
 * as they would be deployed, so that one's compute does not stall the other's event loop.
 *
 * `deno run -A src/fuzz/sidecar_main.ts [--modality image|audio]`
 *
 * @module
 */
import { initBackend } from "../engine/backend.ts";
import { loadConfig } from "../server/config.ts";
import { startLocalSidecar } from "./local_sidecar.ts";

if (import.meta.main) {
  await initBackend("wasm");
  // NIP_COMPUTE_WORKER=false, as for `deno task start`, computes in the server's thread.
  const { computeWorker } = loadConfig({ args: [] });
  const local = await startLocalSidecar(Deno.args.includes("audio") ? "audio" : "image", { computeWorker });
  const tensors = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response(String(local.tensors())),
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
