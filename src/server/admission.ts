/**
 * What the sidecar checks before a call reaches the service: that each request message decodes (a
 * message protobuf cannot read becomes an {@link UndecodableMessage} instead of a grpc-js INTERNAL that
 * would end a whole stream) and that the request metadata stays under {@link MAX_METADATA_BYTES}.
 *
 * @module
 */
import type * as grpc from "@grpc/grpc-js";
import { invalidArgument, type StatusError, tooLarge } from "./errors.ts";

/** Most bytes of request metadata (keys plus values) a call may carry, gRPC core's hard limit. */
export const MAX_METADATA_BYTES = 16 * 1024;

/** Stands in for a request message that protobuf could not decode. */
export class UndecodableMessage {
  constructor(readonly reason: string) {}

  /** The INVALID_ARGUMENT to answer it with; `what` names the message ("request", "stream message 3"). */
  error(what: string): StatusError {
    return invalidArgument(`${what}: not a valid protobuf message (${this.reason})`);
  }
}

/**
 * The service definition with every method's request deserializer made total: bytes it cannot decode
 * yield an {@link UndecodableMessage}, so the handler answers them (and a stream goes on).
 */
export function tolerantDefinition(definition: grpc.ServiceDefinition): grpc.ServiceDefinition {
  return Object.fromEntries(
    Object.entries(definition).map(([name, method]) => [name, {
      ...method,
      requestDeserialize: (bytes: Uint8Array) => {
        try {
          return method.requestDeserialize(bytes as never);
        } catch (error) {
          return new UndecodableMessage((error as Error).message);
        }
      },
    }]),
  ) as grpc.ServiceDefinition;
}

/** Bytes of a call's metadata, keys plus values (binary values as their decoded bytes). */
export function metadataBytes(metadata: grpc.Metadata): number {
  let total = 0;
  for (const [key, values] of Object.entries(metadata.toJSON())) {
    for (const value of values) {
      total += key.length + (typeof value === "string" ? value.length : value.byteLength);
    }
  }
  return total;
}

/** The RESOURCE_EXHAUSTED for metadata over the limit, or undefined when it fits. */
export function checkMetadata(metadata: grpc.Metadata): StatusError | undefined {
  const bytes = metadataBytes(metadata);
  if (bytes <= MAX_METADATA_BYTES) return undefined;
  return tooLarge(`request metadata: ${bytes} bytes exceeds the limit of ${MAX_METADATA_BYTES}`);
}

/**
 * Registers a third-party service (health, whose library calls `server.addService` itself) with total
 * request deserializers: an undecodable request to a unary or server-streaming method is answered
 * INVALID_ARGUMENT before the library's handler sees it (it would otherwise read fields of garbage and
 * answer INTERNAL).
 */
export function addTolerantly(
  server: grpc.Server,
  register: (target: Pick<grpc.Server, "addService">) => void,
): void {
  register({
    addService: (definition, implementation) => {
      const guarded = Object.fromEntries(
        Object.entries(definition).map(([name, method]) => {
          const handler = implementation[method.originalName ?? name] ?? implementation[name];
          return [
            method.originalName ?? name,
            refuseUndecodable(handler as AnyHandler, method.responseStream),
          ];
        }),
      );
      server.addService(tolerantDefinition(definition), guarded as grpc.UntypedServiceImplementation);
    },
  });
}

type AnyHandler = (
  call: { request?: unknown; emit(event: "error", error: unknown): boolean },
  callback?: (
    error: grpc.ServiceError | null,
    value?: unknown,
  ) => void,
) => void;

function refuseUndecodable(handler: AnyHandler, responseStream: boolean): AnyHandler {
  return (call, callback) => {
    if (!(call.request instanceof UndecodableMessage)) return handler(call, callback);
    const error = call.request.error("request");
    const status = { code: error.code, details: error.message, name: "Error", message: error.message };
    if (responseStream) call.emit("error", status);
    else callback?.(status as grpc.ServiceError, null);
  };
}
