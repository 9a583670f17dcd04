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
