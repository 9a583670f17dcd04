/**
 * A grpcurl-style command line over server reflection (grpcurl itself is not installed here): it asks
 * the server for its descriptors, so it needs no .proto files.
 *
 *   deno run -A examples/grpcurl.ts 127.0.0.1:50051 list
 *   deno run -A examples/grpcurl.ts 127.0.0.1:50051 describe nip.v1.DefenseService
 *   deno run -A examples/grpcurl.ts -d '{}' 127.0.0.1:50051 nip.v1.DefenseService/Describe
 *   deno run -A examples/grpcurl.ts -d @request.json 127.0.0.1:50051 nip.v1.DefenseService/Defend
 *
 * Bytes fields are base64 in JSON, as with grpcurl. Unary methods only.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Buffer } from "node:buffer";

const args = [...Deno.args];
let data = "{}";
const d = args.indexOf("-d");
if (d >= 0) data = args.splice(d, 2)[1];
if (data.startsWith("@")) data = await Deno.readTextFile(data.slice(1));
const [address, command, symbol] = args;
if (!address || !command) {
  console.error("usage: grpcurl.ts [-d JSON|@file] host:port (list | describe SERVICE | SERVICE/METHOD)");
  Deno.exit(2);
}

const reflectionProto = decodeURIComponent(
  new URL("../node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto", import.meta.url)
    .pathname,
);
// deno-lint-ignore no-explicit-any
type Loaded = any;
const reflection =
  (grpc.loadPackageDefinition(protoLoader.loadSync(reflectionProto)) as Loaded).grpc.reflection.v1;
const reflectionClient = new reflection.ServerReflection(address, grpc.credentials.createInsecure());

// deno-lint-ignore no-explicit-any
function ask(request: Record<string, unknown>): Promise<any> {
  return new Promise((resolve, reject) => {
    const stream = reflectionClient.ServerReflectionInfo();
    // deno-lint-ignore no-explicit-any
    stream.on("data", (m: any) => {
      stream.end();
      if (m.errorResponse) reject(new Error(m.errorResponse.errorMessage));
      else resolve(m);
    });
    stream.on("error", reject);
    stream.write(request);
  });
}

/** A FileDescriptorSet (field 1: repeated FileDescriptorProto) from the files reflection returned. */
function descriptorSet(files: Uint8Array[]): Buffer {
  const parts: number[] = [];
  for (const file of files) {
    parts.push(0x0a);
    let n = file.length;
    while (n > 0x7f) {
      parts.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    parts.push(n);
    for (const b of file) parts.push(b);
  }
  return Buffer.from(parts);
}

if (command === "list") {
  const m = await ask({ listServices: "" });
  for (const s of m.listServicesResponse.service) console.log(s.name);
  reflectionClient.close();
  Deno.exit(0);
}

const serviceName = command === "describe" ? symbol : command.split("/")[0];
const m = await ask({ fileContainingSymbol: serviceName });
const definition = protoLoader.loadFileDescriptorSetFromBuffer(
  descriptorSet(m.fileDescriptorResponse.fileDescriptorProto),
  { longs: Number, enums: String, bytes: String, defaults: true, oneofs: true },
);
reflectionClient.close();
const service = definition[serviceName] as protoLoader.ServiceDefinition;
if (command === "describe") {
  for (const [name, method] of Object.entries(service)) {
    const stream = (s: boolean) => (s ? "stream " : "");
    console.log(
      `rpc ${name}(${stream(method.requestStream)}${
        (method.requestType.type as { name: string }).name
      }) returns (${stream(method.responseStream)}${(method.responseType.type as { name: string }).name})`,
    );
  }
  Deno.exit(0);
}

const methodName = command.split("/")[1];
const method = service[methodName];
if (!method) throw new Error(`${serviceName} has no method ${methodName}`);
const client = new grpc.Client(address, grpc.credentials.createInsecure());
const request = method.requestSerialize(JSON.parse(data));
client.makeUnaryRequest(
  method.path,
  (x: Buffer) => x,
  (x: Buffer) => method.responseDeserialize(x),
  request,
  { deadline: Date.now() + 30_000 },
  (error, response) => {
    if (error) {
      console.error(`ERROR:\n  Code: ${grpc.status[error.code]}\n  Message: ${error.details}`);
      Deno.exit(1);
    }
    console.log(JSON.stringify(response, null, 2));
    client.close();
  },
);
