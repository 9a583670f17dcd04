/**
 * TLS and mTLS as deployed: `deno task start` with certificates made by openssl at test time. The server
 * process listens on the TLS port and nothing else (no plaintext port to walk around TLS); plaintext
 * clients, clients without a certificate and clients with an untrusted one are refused by the service,
 * health and reflection alike; a client with a trusted certificate is served; a client CA without
 * `--tls-require-client-cert` stops startup.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { DefenseClient, float32Input } from "../src/server/client.ts";
import { type Certificates, hasOpenssl, makeCertificates } from "./tls_fixture.ts";
import { freePort, hasProc, listeningSockets, ROOT, startTask } from "./task_start_fixture.ts";

const tmp = await Deno.makeTempDir({ prefix: "nip-tls-test-" });
const certs: Certificates | undefined = hasOpenssl ? await makeCertificates(tmp) : undefined;
const ignore = !hasOpenssl || !hasProc;

// Deno's TLS client refuses an IP address as server name: name the certificate's host instead.
const tlsName = { "grpc.ssl_target_name_override": "localhost", "grpc.default_authority": "localhost" };
const one = { input: float32Input(new Float32Array(28 * 28), [28, 28, 1]) };
const identity = (b: Buffer) => b;

/** grpc.health.v1 Check of the server as a whole (empty request); resolves with the answer's bytes. */
function healthCheck(client: grpc.Client): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      identity,
      identity,
      Buffer.alloc(0),
      { deadline: Date.now() + 5000 },
      (error, answer) => error ? reject(error) : resolve(answer!),
    )
  );
}

/** Reflection's `list_services` (field 7, empty); resolves with the first answer's bytes. */
function reflectionList(client: grpc.Client): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const call = client.makeBidiStreamRequest(
      "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      identity,
      identity,
      { deadline: Date.now() + 5000 },
    );
    call.on("data", (answer: Buffer) => {
      resolve(answer);
      call.cancel();
    });
    call.on("error", reject);
    call.write(Buffer.from([0x3a, 0x00]));
  });
}

/** Asserts that Defend, health and reflection all refuse this client. */
async function assertRefused(client: DefenseClient, who: string) {
  const unavailable = (e: grpc.ServiceError) => {
    assert.equal(grpc.status[e.code], "UNAVAILABLE", `${who}: ${e.details}`);
    return true;
  };
  await assert.rejects(client.defend(one, { timeoutMs: 5000 }), unavailable, `${who}: Defend served`);
  await assert.rejects(healthCheck(client.raw), unavailable, `${who}: health served`);
  await assert.rejects(reflectionList(client.raw), unavailable, `${who}: reflection served`);
}

/** Asserts that Defend, health and reflection serve this client. */
async function assertServed(client: DefenseClient) {
  assert.equal((await client.defend(one, { timeoutMs: 10_000 })).verdicts.length, 1);
  assert.deepEqual([...await healthCheck(client.raw)], [0x08, 0x01]); // status: SERVING
  assert.ok((await reflectionList(client.raw)).includes("nip.v1.DefenseService"));
}

/** Runs `deno task start` with TLS flags, checks what it listens on, then `body`, then SIGTERM. */
async function withTlsTask(tlsArgs: string[], body: (address: string) => Promise<void>) {
  const port = freePort();
  const started = await startTask([
    "--bind",
    `127.0.0.1:${port}`,
    "--metrics-bind",
    "",
    "--tls-cert",
    certs!.serverCert,
    "--tls-key",
    certs!.serverKey,
    ...tlsArgs,
  ]);
  try {
    // The one listener is the TLS port: no plaintext gRPC port on loopback, no Unix socket.
    assert.deepEqual(listeningSockets(started.serverPid), { tcp: [port], unix: [] });
    await body(`127.0.0.1:${port}`);
  } finally {
    started.task.kill("SIGTERM");
    assert.equal((await started.task.status).code, 0);
    await started.drained;
  }
}

Deno.test(
  { name: "TLS: the TLS port is the only listener; plaintext clients are refused", ignore },
  async () => {
    await withTlsTask([], async (address) => {
      const plaintext = new DefenseClient(address);
      const secure = new DefenseClient(address, grpc.credentials.createSsl(certs!.read(certs!.ca)), tlsName);
      try {
        await assertRefused(plaintext, "plaintext client");
        await assertServed(secure);
      } finally {
        plaintext.close();
        secure.close();
      }
    });
  },
);

Deno.test({
  name: "mTLS: clients without a certificate, with an untrusted one or in plaintext are refused",
  ignore,
}, async () => {
  await withTlsTask(["--tls-client-ca", certs!.ca, "--tls-require-client-cert"], async (address) => {
    const ca = certs!.read(certs!.ca);
    const clients = {
      plaintext: new DefenseClient(address),
      "no certificate": new DefenseClient(address, grpc.credentials.createSsl(ca), tlsName),
      "untrusted certificate": new DefenseClient(
        address,
        grpc.credentials.createSsl(ca, certs!.read(certs!.rogueKey), certs!.read(certs!.rogueCert)),
        tlsName,
      ),
    };
    const trusted = new DefenseClient(
      address,
      grpc.credentials.createSsl(ca, certs!.read(certs!.clientKey), certs!.read(certs!.clientCert)),
      tlsName,
    );
    try {
      for (const [who, client] of Object.entries(clients)) await assertRefused(client, who);
      await assertServed(trusted);
    } finally {
      for (const client of [...Object.values(clients), trusted]) client.close();
    }
  });
});

Deno.test(
  { name: "a client CA without --tls-require-client-cert stops startup (exit 2)", ignore },
  async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "task",
        "--quiet",
        "start",
        "--tls-cert",
        certs!.serverCert,
        "--tls-key",
        certs!.serverKey,
        "--tls-client-ca",
        certs!.ca,
      ],
      cwd: ROOT,
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 2);
    assert.match(new TextDecoder().decode(out.stderr), /add --tls-require-client-cert/);
  },
);

Deno.test("cleanup", async () => {
  await Deno.remove(tmp, { recursive: true });
});
