/**
 * A TypeScript client of the sidecar, using only grpc-js, proto-loader and `proto/nip/v1/nip.proto`:
 *
 *   deno task start &                                  # the sidecar on 127.0.0.1:50051
 *   deno run -A examples/client.ts [image.png|image.jpg] [--address host:port]
 *
 * Without an image it sends a Fashion-MNIST test image as a raw uint8 tensor. Prints the model
 * description, the verdicts before/after the defense, and saves the defended image as PNG.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Buffer } from "node:buffer";
import { loadFashionMnist } from "../src/data/fashion_mnist.ts";

const args = [...Deno.args];
const at = args.indexOf("--address");
const address = at >= 0 ? args.splice(at, 2)[1] : "127.0.0.1:50051";
const imagePath = args[0];

const protoDir = decodeURIComponent(new URL("../proto/", import.meta.url).pathname);
const definition = protoLoader.loadSync("nip/v1/nip.proto", {
  includeDirs: [protoDir],
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});
// deno-lint-ignore no-explicit-any
const nip = (grpc.loadPackageDefinition(definition) as any).nip.v1;
const client = new nip.DefenseService(address, grpc.credentials.createInsecure());

// deno-lint-ignore no-explicit-any
function call(method: string, request: unknown): Promise<any> {
  return new Promise((resolve, reject) =>
    client[method](
      request,
      { deadline: Date.now() + 10_000 },
      (error: grpc.ServiceError | null, response: unknown) =>
        error
          ? reject(new Error(`${method}: ${grpc.status[error.code]}: ${error.details}`))
          : resolve(response),
    )
  );
}

const { modelInfo } = await call("Describe", {});
console.log(
  `model ${modelInfo.name}: input [${modelInfo.inputShape}] in [${modelInfo.inputMin}, ${modelInfo.inputMax}], ` +
    `layer ${modelInfo.layerName}, k1=${modelInfo.k1} k2=${modelInfo.k2}, ${modelInfo.candidateCount} candidates`,
);

let input;
if (imagePath) {
  input = { images: { images: [{ data: await Deno.readFile(imagePath) }] } };
} else {
  const fashion = await loadFashionMnist();
  const index = 6 * 7000 + 6500; // a held-out "shirt"
  const pixels = Uint8Array.from(
    fashion.images.subarray(index * 784, (index + 1) * 784),
    (v) => Math.round(v * 255),
  );
  input = { tensor: { shape: [28, 28, 1], dtype: "DATA_TYPE_UINT8", data: Buffer.from(pixels) } };
}

const response = await call("Defend", { input, outputFormat: "OUTPUT_FORMAT_PNG" });
for (const v of response.verdicts) {
  console.log(
    `label ${v.labelBefore} -> ${v.labelAfter}${v.labelFlipped ? " (flipped)" : ""}, ` +
      `candidate ${v.candidateIndex} (similarity ${v.similarity.toFixed(3)})`,
  );
}
console.log(`timings: ${JSON.stringify(response.timings)}`);
await Deno.writeFile("defended.png", response.defended.images[0].data);
console.log("wrote defended.png");
client.close();
