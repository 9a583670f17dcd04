/**
 * The fuzz oracle: turns a case and what its call ended with into findings, each under a category
 * `<kind>:<family>` (e.g. `internal:hostile-image`), so a report (and a test) can tell which classes of
 * bug are fixed. Kinds: `internal`, `unknown` (statuses a bad request must never get), `dropped` (the
 * connection or call was lost), `hang` (no answer within the bound, or DEADLINE_EXCEEDED), `unexpected-status`,
 * `accepted-invalid` (OK for a request that must be rejected), `rejected-valid`, `stream-missing-answers`.
 *
 * @module
 */
import { status } from "@grpc/grpc-js";
import { type FuzzCase, isStream } from "./cases.ts";
import type { Expectation } from "./inputs.ts";
import type { CallResult } from "./transport.ts";
import { readFields } from "./wire.ts";

/** What the oracle needs to know about the target. */
export interface OracleContext {
  /** Per target: whether Classify has an upstream (without one FAILED_PRECONDITION is its right answer). */
  upstream: { image: boolean; audio: boolean };
}

/** The name of a status code, or HANG. */
export function codeName(code: status | "hang"): string {
  return code === "hang" ? "HANG" : status[code] ?? `CODE_${code}`;
}

function noUpstream(c: FuzzCase, ctx: OracleContext): boolean {
  return (c.rpc === "Classify" || c.rpc === "ClassifyStream") && !ctx.upstream[c.target];
}

function rejectionCodes(c: FuzzCase, ctx: OracleContext): Set<status> {
  const codes = new Set([status.INVALID_ARGUMENT, status.RESOURCE_EXHAUSTED]);
  if (c.rpc === "Health") codes.add(status.NOT_FOUND);
  if (noUpstream(c, ctx)) codes.add(status.FAILED_PRECONDITION);
  return codes;
}

/** The finding kind of one answer (a unary call's status or one stream message's), or undefined when right. */
function judgeCode(
  code: status | "hang",
  expect: Expectation,
  c: FuzzCase,
  ctx: OracleContext,
): string | undefined {
  const rejections = rejectionCodes(c, ctx);
  // Classify without an upstream answers FAILED_PRECONDITION whatever the input: that is its OK.
  if (code === status.OK) return expect === "reject" && !noUpstream(c, ctx) ? "accepted-invalid" : undefined;
  if (code !== "hang" && rejections.has(code)) {
    const metadataRefused = c.family === "oversized-metadata" && code === status.RESOURCE_EXHAUSTED;
    if (expect !== "ok" || metadataRefused) return undefined;
    return noUpstream(c, ctx) && code === status.FAILED_PRECONDITION ? undefined : "rejected-valid";
  }
  if (code === "hang" || code === status.DEADLINE_EXCEEDED) return "hang";
  if (code === status.INTERNAL) return "internal";
  if (code === status.UNKNOWN) return "unknown";
  if (code === status.UNAVAILABLE || code === status.CANCELLED) return "dropped";
  return "unexpected-status";
}

/** Per stream message (by the index in its id `m<i>`): its answer's status, OK or the StreamError's code. */
export function streamAnswerCodes(answers: Uint8Array[]): Map<number, status> {
  const codes = new Map<number, status>();
  for (const answer of answers) {
    const fields = readFields(answer);
    const id = new TextDecoder().decode((fields.get(1)?.[0] as Uint8Array | undefined) ?? new Uint8Array());
    const error = fields.get(3)?.[0] as Uint8Array | undefined;
    const code = error ? Number((readFields(error).get(1)?.[0] as bigint | undefined) ?? 0n) : status.OK;
    const index = /^m(\d+)$/.exec(id);
    if (index) codes.set(Number(index[1]), code);
  }
  return codes;
}

/** The finding categories of one case (empty when the server answered right). */
export function judge(c: FuzzCase, result: CallResult, ctx: OracleContext): string[] {
  const tag = (kind: string) => `${kind}:${c.family}`;
  if (!isStream(c.rpc)) {
    const kind = judgeCode(result.code, c.expect[0], c, ctx);
    return kind ? [tag(kind)] : [];
  }
  const findings = new Set<string>();
  if (result.code !== status.OK) {
    // More header pairs than HTTP/2 admits (Node's limit: 128) are refused by the server's HTTP/2 layer with
    // RST_STREAM ENHANCE_YOUR_CALM, gRPC's RESOURCE_EXHAUSTED (pinned by a raw HTTP/2 test in
    // server_abuse_test); grpc-js's client reports that as UNAVAILABLE when its first write races the reset.
    if (
      c.family === "oversized-metadata" && result.code === status.UNAVAILABLE &&
      /ECANCELED/.test(result.details)
    ) {
      return [];
    }
    // A stream ends with an error status only when the stream itself is broken (a message that is not a
    // stream message, oversized metadata): judge that status like a unary answer to its first message.
    const kind = judgeCode(result.code, c.expect[0] === "ok" ? "any" : c.expect[0], c, ctx);
    if (kind) findings.add(tag(kind));
    return [...findings];
  }
  const codes = streamAnswerCodes(result.answers);
  // Every message gets exactly one answer; a garbage message's answer carries whatever id the garbage held.
  if (result.answers.length !== c.messages.length) findings.add(tag("stream-missing-answers"));
  c.expect.forEach((expect, i) => {
    const code = codes.get(i);
    if (code === undefined) {
      if (!(c.family === "wire-garbage" && i === 0)) findings.add(tag("stream-missing-answers"));
    } else {
      const kind = judgeCode(code, expect, c, ctx);
      if (kind) findings.add(tag(kind));
    }
  });
  return [...findings];
}
