/**
 * The fuzz monitor's health prober, in a worker of its own: the fuzzer's main thread builds cases (a
 * 32 MiB zlib bomb takes a while to deflate) and judges answers, and a health check timed on that thread
 * would count the client's own delays as the server's. Here only the probe runs; each sample is posted back.
 *
 * Messages in: {@link ProbeStart}, then "stop". Out: one {@link ProbeSample} per check, then "stopped".
 *
 * @module
 */
import { RPC_PATHS } from "./cases.ts";
import { RawClient } from "./transport.ts";

/** Starts probing `address` every `intervalMs`. */
export interface ProbeStart {
  address: string;
  intervalMs: number;
}

/** One health check: its status code and latency. */
export interface ProbeSample {
  code: number | "hang";
  details: string;
  ms: number;
}

const scope = self as unknown as Worker;
let running = true;
scope.onmessage = async (event: MessageEvent<ProbeStart | "stop">) => {
  if (event.data === "stop") {
    running = false;
    return;
  }
  const { address, intervalMs } = event.data;
  const health = new RawClient(address);
  while (running) {
    const { code, details, ms } = await health.unary(RPC_PATHS.Health, new Uint8Array(), {}, 5000);
    scope.postMessage({ code, details, ms } satisfies ProbeSample);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  health.close();
  scope.postMessage("stopped");
};
