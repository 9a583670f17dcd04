/**
 * The soak's request mix: what a busy deployment sees (Defend, Classify through the upstream, both
 * streams, Predict, health checks, metrics scrapes) plus channel churn (a client that opens a channel,
 * makes one call and closes it). Inputs are seeded valid examples: the soak measures steady-state health,
 * not rejections (the fuzzer does those).
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { encodePng } from "../image/codec.ts";
import { mulberry32 } from "../random.ts";
import { DefenseClient, float32Input, imagesInput } from "../server/client.ts";

/** The operations of the mix. */
export const OPERATIONS = {
  Defend: 30,
  Classify: 20,
  DefendStream: 8,
  ClassifyStream: 5,
  Predict: 15,
  Health: 10,
  Metrics: 5,
  ChannelChurn: 7,
} as const;

/** One operation of the mix. */
export type Operation = keyof typeof OPERATIONS;

/** Where the mix sends its calls. */
export interface MixTarget {
  address: string;
  metricsUrl: string;
}

/** A failed operation: its gRPC status name (or an HTTP/transport reason) and message. */
export class OperationError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** Runs operations of the mix against one sidecar, over one shared channel (plus the churned ones). */
export class Mix {
  readonly #client: DefenseClient;
  // deno-lint-ignore no-explicit-any
  readonly #health: any;
  readonly #inputs: ReturnType<typeof float32Input>[];
  readonly #png: ReturnType<typeof imagesInput>;
  readonly #rand: () => number;
  readonly #timeoutMs: number;

  constructor(readonly target: MixTarget, seed: number, timeoutMs = 30_000) {
    this.#client = new DefenseClient(target.address);
    const health = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String }));
    // deno-lint-ignore no-explicit-any
    this.#health = new (health as any).grpc.health.v1.Health(
      target.address,
      grpc.credentials.createInsecure(),
    );
    this.#rand = mulberry32(seed);
    this.#inputs = Array.from(
      { length: 64 },
      () => float32Input(Float32Array.from({ length: 784 }, this.#rand), [28, 28, 1]),
    );
    const pixels = Uint8Array.from({ length: 784 }, () => Math.floor(this.#rand() * 256));
    this.#png = imagesInput([encodePng({ width: 28, height: 28, channels: 1, data: pixels })]);
    this.#timeoutMs = timeoutMs;
  }

  /** A seeded draw of the next operation. */
  next(): Operation {
    const total = Object.values(OPERATIONS).reduce((a: number, b) => a + b, 0);
    let r = this.#rand() * total;
    for (const [op, weight] of Object.entries(OPERATIONS) as [Operation, number][]) {
      r -= weight;
      if (r < 0) return op;
    }
    return "Defend";
  }

  #input() {
    return this.#rand() < 0.15 ? this.#png : this.#inputs[Math.floor(this.#rand() * this.#inputs.length)];
  }

  /** Runs `op` once; throws {@link OperationError} on failure. */
  async run(op: Operation): Promise<void> {
    const options = { timeoutMs: this.#timeoutMs };
    try {
      switch (op) {
        case "Defend":
          await this.#client.defend({ input: this.#input(), outputFormat: "OUTPUT_FORMAT_TENSOR" }, options);
          return;
        case "Classify":
          await this.#client.classify(
            { input: this.#input(), skipVerdictAfter: this.#rand() < 0.5 },
            options,
          );
          return;
        case "DefendStream":
        case "ClassifyStream":
          await this.#stream(op);
          return;
        case "Predict":
          await this.#client.predict({ input: this.#input() }, options);
          return;
        case "Health":
          await this.#check();
          return;
        case "Metrics":
          await this.#scrape();
          return;
        case "ChannelChurn": {
          const client = new DefenseClient(this.target.address);
          try {
            await client.defend({ input: this.#input(), outputFormat: "OUTPUT_FORMAT_NONE" }, options);
          } finally {
            client.close();
          }
          return;
        }
      }
    } catch (error) {
      if (error instanceof OperationError) throw error;
      const e = error as grpc.ServiceError;
      throw new OperationError(
        typeof e.code === "number" ? grpc.status[e.code] : "TRANSPORT",
        e.details ?? e.message,
      );
    }
  }

  async #stream(op: "DefendStream" | "ClassifyStream") {
    const requests = Array.from(
      { length: 3 },
      (_, i) => ({ id: `s${i}`, request: { input: this.#input() } }),
    );
    const answers = await this.#client.stream(op, requests, () => this.streamRetries++);
    const failed = answers.find((a: { error?: { code: number; message: string } }) => a.error);
    if (failed) {
      throw new OperationError(
        grpc.status[failed.error.code] ?? String(failed.error.code),
        failed.error.message,
      );
    }
    if (answers.length !== requests.length) {
      throw new OperationError("STREAM_SHORT", `${answers.length} answers to ${requests.length} messages`);
    }
  }

  #check(): Promise<void> {
    return new Promise((resolve, reject) =>
      this.#health.Check(
        { service: "nip.v1.DefenseService" },
        { deadline: Date.now() + this.#timeoutMs },
        (error: grpc.ServiceError | null, response: { status: string }) => {
          if (error) reject(error);
          else if (response.status !== "SERVING") reject(new OperationError("NOT_SERVING", response.status));
          else resolve();
        },
      )
    );
  }

  async #scrape() {
    const response = await fetch(this.target.metricsUrl, { signal: AbortSignal.timeout(this.#timeoutMs) });
    const text = await response.text();
    if (!response.ok) throw new OperationError(`HTTP_${response.status}`, text.slice(0, 200));
  }

  /** Streams sent again (their unanswered messages) after the connection dropped them at a GOAWAY. */
  streamRetries = 0;

  /** Closes the shared channels. */
  close(): void {
    this.#client.close();
    this.#health.close();
  }
}
