/**
 * The hostile images of issue 13 over real loopback gRPC, under the default pixel limit: each is refused
 * with a status naming the image and the reason, health keeps answering while bombs decode in the decode
 * workers, and the tensor count is flat afterwards.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import * as tf from "@tensorflow/tfjs";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { initBackend } from "../src/engine/backend.ts";
import { encodePng } from "../src/image/codec.ts";
import { defaultConfig } from "../src/server/config.ts";
import { DefenseClient, imagesInput } from "../src/server/client.ts";
import { trainDemoPipeline } from "../src/server/demo_pipeline.ts";
import { ServingEngine } from "../src/server/engine.ts";
import { createLogger } from "../src/server/log.ts";
import { startSidecar } from "../src/server/server.ts";

await initBackend("wasm");
const pipeline = await trainDemoPipeline();
const config = defaultConfig();
config.bind = "127.0.0.1:0";
config.metricsBind = "";
config.maxMessageBytes = 1024 * 1024;
// A budget no 4096x4096 decode meets (inflating its 16 MiB twice alone takes about that), far above what a
// 28x28 image takes in a warm worker (about 1 ms).
config.decode = { workers: 2, budgetMs: 200, maxQueue: 64 };
const sidecar = await startSidecar({
  config,
  engines: [new ServingEngine(pipeline)],
  logger: createLogger("error", () => {}),
});
const address = `127.0.0.1:${sidecar.port}`;
const client = new DefenseClient(address);
// deno-lint-ignore no-explicit-any
const health = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String })) as any;
const healthClient = new health.grpc.health.v1.Health(address, grpc.credentials.createInsecure());

const fixture = (name: string) => Deno.readFileSync(new URL(`fixtures/hostile/${name}`, import.meta.url));
const shirt = encodePng({
  width: 28,
  height: 28,
  channels: 1,
  data: Uint8Array.from(pipeline.test.images.subarray(0, 784), (v) => Math.round(v * 255)),
});
const good = () => client.defend({ input: imagesInput([shirt]) });

/** One Health/Check; resolves with its latency in ms. */
function checkHealth(): Promise<number> {
  const start = performance.now();
  return new Promise((resolve, reject) =>
    healthClient.Check(
      { service: "nip.v1.DefenseService" },
      { deadline: Date.now() + 5000 },
      (e: Error | null, r: { status: string }) => {
        if (e) reject(e);
        else {
          assert.equal(r.status, "SERVING");
          resolve(performance.now() - start);
        }
      },
    )
  );
}

async function expectStatus(images: Uint8Array[], code: grpc.status, pattern: RegExp) {
  await assert.rejects(client.defend({ input: imagesInput(images) }), (e: grpc.ServiceError) => {
    assert.equal(e.code, code, `status ${grpc.status[e.code]} (${e.details}), expected ${grpc.status[code]}`);
    assert.match(e.details, pattern);
    return true;
  });
  assert.equal((await good()).verdicts.length, 1, "a good request after the bad one");
}

Deno.test("each hostile image is refused with its reason; a good image still decodes", async () => {
  const { INVALID_ARGUMENT, RESOURCE_EXHAUSTED } = grpc.status;
  await expectStatus([fixture("png_1x16777216.png")], RESOURCE_EXHAUSTED, /images\[0\]: PNG is 1x16777216: /);
  await expectStatus([fixture("png_zero_width.png")], INVALID_ARGUMENT, /images\[0\]: .*IHDR width 0/);
  await expectStatus([shirt, fixture("png_short_idat.png")], INVALID_ARGUMENT, /images\[1\]: .*fewer than/);
  await expectStatus([fixture("png_empty_idat.png")], INVALID_ARGUMENT, /images\[0\]: .*IDAT is empty/);
  await expectStatus([fixture("png_long_idat.png")], INVALID_ARGUMENT, /images\[0\]: .*more than the 812/);
  await expectStatus(
    [fixture("jpeg_10000_scans.jpg")],
    INVALID_ARGUMENT,
    /images\[0\]: .*more than 100 scans/,
  );
  await expectStatus(
    [fixture("jpeg_4000x4000_tiny.jpg")],
    INVALID_ARGUMENT,
    /images\[0\]: .*4000x4000 has 250000 blocks, which take at least 62500 bytes; the file has 152/,
  );
});

Deno.test("health answers within 2 s while 32 PNG bombs decode; the bombs get RESOURCE_EXHAUSTED", async () => {
  const bomb = fixture("png_4096x4096.png");
  await checkHealth(); // connected
  await good(); // the workers started
  const before = tf.memory().numTensors;
  let decoding = true;
  // Eight requests of four 4096x4096 bombs each (32 bombs, 524 KB), at once.
  const bombs = Promise.allSettled(
    Array.from({ length: 8 }, () => client.defend({ input: imagesInput([bomb, bomb, bomb, bomb]) })),
  ).finally(() => decoding = false);
  const latencies: number[] = [];
  while (decoding) {
    latencies.push(await checkHealth());
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  for (const outcome of await bombs) {
    assert.equal(outcome.status, "rejected");
    const error = (outcome as PromiseRejectedResult).reason as grpc.ServiceError;
    assert.equal(error.code, grpc.status.RESOURCE_EXHAUSTED, error.details);
    assert.match(error.details, /^input\.images\[[0-3]\]: image decode exceeded 200 ms$/);
  }
  assert.ok(latencies.length >= 2, `health was checked ${latencies.length} times while the bombs decoded`);
  // A liveness bound, not a benchmark: before the decode pool one bomb request froze health for 20-34 s. The
  // median is about 1 ms; the worst check, about 600-800 ms on 2 cores at load average 9-12, waits for the
  // worker replacements (`new Worker` blocks the main thread), hence 2 s.
  assert.ok(Math.max(...latencies) < 2000, `health latencies ${latencies.map(Math.round).join(", ")} ms`);
  const sorted = latencies.toSorted((a, b) => a - b);
  console.log(
    `health during the bombs: ${sorted.length} checks, median ${sorted[sorted.length >> 1].toFixed(1)} ms, ` +
      `max ${sorted[sorted.length - 1].toFixed(1)} ms`,
  );
  assert.equal((await good()).verdicts.length, 1);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("teardown", async () => {
  healthClient.close();
  client.close();
  await sidecar.shutdown();
});
