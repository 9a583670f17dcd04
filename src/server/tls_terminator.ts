/**
 * TLS (and mTLS) termination in front of the grpc-js server. Under Deno 2.9.6, grpc-js's own TLS server
 * (node:http2 `createSecureServer`) sends a handshake that clients reject ("HandshakePayloadTooLarge"),
 * while node:tls works; so the sidecar accepts TLS with node:tls (ALPN h2, optional client-certificate
 * verification) and pipes each connection to the grpc-js server listening in plaintext on loopback.
 *
 * @module
 */
import * as net from "node:net";
import * as tls from "node:tls";
import { Buffer } from "node:buffer";
import { splitHostPort } from "./metrics.ts";

/** Settings of {@link startTlsTerminator}. */
export interface TlsTerminatorOptions {
  /** Public "host:port" to accept TLS on. */
  bind: string;
  /** Loopback port of the plaintext gRPC server. */
  targetPort: number;
  cert: Uint8Array;
  key: Uint8Array;
  /** CA that client certificates must chain to (mTLS). */
  clientCa?: Uint8Array;
  /** Refuse clients without a valid certificate. */
  requireClientCert: boolean;
  onError?: (error: Error) => void;
}

/** A running terminator. */
export interface TlsTerminator {
  port: number;
  /** Stops accepting connections; open ones go on until their ends close. */
  stopAccepting(): void;
  /** Closes every open connection. */
  destroy(): void;
}

/** Starts accepting TLS on `bind`, forwarding plaintext to `127.0.0.1:targetPort`. */
export function startTlsTerminator(options: TlsTerminatorOptions): Promise<TlsTerminator> {
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({
    cert: Buffer.from(options.cert),
    key: Buffer.from(options.key),
    ca: options.clientCa ? Buffer.from(options.clientCa) : undefined,
    requestCert: options.clientCa !== undefined || options.requireClientCert,
    rejectUnauthorized: options.requireClientCert,
    ALPNProtocols: ["h2"],
  }, (client) => {
    const inner = net.connect(options.targetPort, "127.0.0.1");
    sockets.add(client);
    sockets.add(inner);
    const close = () => {
      client.destroy();
      inner.destroy();
      sockets.delete(client);
      sockets.delete(inner);
    };
    client.on("error", close);
    inner.on("error", close);
    client.on("close", close);
    inner.on("close", close);
    client.pipe(inner);
    inner.pipe(client);
  });
  server.on("tlsClientError", (error) => options.onError?.(error));
  const { host, port } = splitHostPort(options.bind);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        stopAccepting: () => server.close(),
        destroy: () => {
          for (const s of sockets) s.destroy();
          sockets.clear();
        },
      });
    });
  });
}
