/**
 * The gRPC server's credentials: plaintext, TLS, or mTLS, all on grpc-js's own listener, so that no
 * plaintext port stands beside a TLS one.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import type { SidecarConfig } from "./config.ts";

/** What the `listening` log line and the docs call each mode. */
export type TlsMode = "off" | "tls" | "mtls";

/** The mode `config.tls` selects (the config check refuses a client CA without `requireClientCert`). */
export function tlsMode(tls: SidecarConfig["tls"]): TlsMode {
  if (tls.certFile === "") return "off";
  return tls.requireClientCert ? "mtls" : "tls";
}

/**
 * Server credentials for `config.tls`: insecure when TLS is off; TLS with the server's certificate; mTLS
 * refusing, in the handshake, clients without a certificate that chains to the client CA.
 */
export function serverCredentials(tls: SidecarConfig["tls"]): grpc.ServerCredentials {
  const mode = tlsMode(tls);
  if (mode === "off") return grpc.ServerCredentials.createInsecure();
  const cert = Buffer.from(Deno.readFileSync(tls.certFile));
  const key = Buffer.from(Deno.readFileSync(tls.keyFile));
  // Under Deno 2.9.6 grpc-js's TLS server without root certificates sends a handshake that clients reject
  // ("HandshakePayloadTooLarge"); with any it works. Without mTLS no client certificate is requested, so
  // the roots are never used: the server's own certificate serves.
  const roots = mode === "mtls" ? Buffer.from(Deno.readFileSync(tls.clientCaFile)) : cert;
  return grpc.ServerCredentials.createSsl(roots, [{ private_key: key, cert_chain: cert }], mode === "mtls");
}
