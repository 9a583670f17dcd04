/**
 * Closes each client connection gracefully after a number of calls. Under Deno 2.9.6, a client that closes
 * an HTTP/2 connection which has carried about 100 calls or more aborts the whole server inside nghttp2
 * (`free(): invalid pointer`, SIGSEGV, or `find_stream_on_goaway_func` assertion; denoland/deno#36788):
 * measured with a bare grpc-js server and nothing but health checks, 150 calls then a close killed it in 9
 * of 10 tries. A connection the server itself closes before that count does not: the server sends GOAWAY
 * (the calls in flight finish), the client opens a new connection for its next call, transparently. Measured
 * with 200 unary calls and 200 three-message DefendStreams over one channel: a Node.js grpc-js client
 * (1.14.7) saw every call answered; the same client under Deno 2.9.6 every unary call, but 5-11 streams
 * open when a GOAWAY came ended UNAVAILABLE ("Connection dropped"): Deno's HTTP/2 client drops them.
 *
 * grpc-js (1.14) has a connection-age limit but no call limit, and no public hook on its HTTP/2 sessions;
 * the listeners are reached through its private `http2Servers` map, checked so that a grpc-js without it
 * fails at startup rather than silently losing the workaround.
 *
 * @module
 */
import type * as grpc from "@grpc/grpc-js";
import http2 from "node:http2";

/** The part of a listening grpc-js server this module uses. */
interface ServerInternals {
  http2Servers?: Map<http2.Http2Server, unknown>;
}

/**
 * Closes every connection gracefully after `maxCalls` calls (see `drainAfter`). Call after the server is
 * bound. `maxCalls` 0 does nothing.
 */
export function capCallsPerConnection(server: grpc.Server, maxCalls: number): void {
  if (maxCalls === 0) return;
  const listeners = (server as unknown as ServerInternals).http2Servers;
  if (!(listeners instanceof Map) || listeners.size === 0) {
    throw new Error(
      "grpc-js changed: no bound HTTP/2 listener found to cap calls per connection on " +
        "(set --max-calls-per-connection 0 to run without the workaround)",
    );
  }
  for (const listener of listeners.keys()) {
    listener.on("session", (session: http2.ServerHttp2Session) => drainAfter(session, maxCalls));
  }
}

/**
 * After `maxCalls` calls on `session`, sends a GOAWAY naming no last stream (as grpc-js's own connection-age
 * limit does), so that none the client already sent is refused and it opens its next calls elsewhere, and
 * closes the connection once every call on it has ended (closing it earlier would cut a client stream).
 */
function drainAfter(session: http2.ServerHttp2Session, maxCalls: number): void {
  let calls = 0;
  let open = 0;
  let goneAway = false;
  const alive = () => !session.closed && !session.destroyed;
  session.on("stream", (stream: http2.ServerHttp2Stream) => {
    open++;
    stream.once("close", () => {
      open--;
      if (goneAway && open === 0 && alive()) session.close();
    });
    if (++calls !== maxCalls || !alive()) return;
    goneAway = true;
    session.goaway(http2.constants.NGHTTP2_NO_ERROR, 2 ** 31 - 1);
  });
}
