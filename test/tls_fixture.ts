/**
 * Certificates for the TLS tests, made by openssl at test time: a CA, a server certificate for
 * `localhost` / 127.0.0.1 and a client certificate signed by it, and a client certificate from a second,
 * untrusted CA.
 */
import { Buffer } from "node:buffer";
import { join } from "node:path";

/** Whether openssl can be run here (the TLS tests are skipped otherwise). */
export const hasOpenssl = await new Deno.Command("openssl", {
  args: ["version"],
  stdout: "null",
  stderr: "null",
})
  .output()
  .then((o) => o.success, () => false);

/** Paths of the PEM files {@link makeCertificates} writes, and a reader for them. */
export interface Certificates {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** Client certificate and key signed by a CA the server does not trust. */
  rogueCert: string;
  rogueKey: string;
  read(path: string): Buffer;
}

/** Writes a CA, server and client certificates (one day valid) into `dir`. */
export async function makeCertificates(dir: string): Promise<Certificates> {
  const openssl = async (...args: string[]) => {
    const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
      .output();
    if (!out.success) throw new Error(`openssl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  };
  for (const [name, cn] of [["ca", "nip-test-ca"], ["rogue-ca", "nip-rogue-ca"]]) {
    await openssl(
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.pem`,
      "-days",
      "1",
      "-subj",
      `/CN=${cn}`,
    );
  }
  await Deno.writeTextFile(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  for (const [name, ca] of [["server", "ca"], ["client", "ca"], ["rogue", "rogue-ca"]]) {
    await openssl(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${name}`,
    );
    await openssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      `${ca}.pem`,
      "-CAkey",
      `${ca}.key`,
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "1",
      "-extfile",
      "san.ext",
    );
  }
  const path = (f: string) => join(dir, f);
  return {
    dir,
    ca: path("ca.pem"),
    serverCert: path("server.pem"),
    serverKey: path("server.key"),
    clientCert: path("client.pem"),
    clientKey: path("client.key"),
    rogueCert: path("rogue.pem"),
    rogueKey: path("rogue.key"),
    read: (p: string) => Buffer.from(Deno.readFileSync(p)),
  };
}
