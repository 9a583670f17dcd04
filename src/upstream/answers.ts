/**
 * Checks an upstream's answers before they reach a client: one per example, finite scores, the model's
 * class count, a label in range. A model server answering otherwise is broken (or hostile), and its
 * answer must not pass as OK.
 *
 * @module
 */
import { status } from "@grpc/grpc-js";
import { type UpstreamAnswer, UpstreamError } from "./types.ts";

/**
 * Throws an {@link UpstreamError} (INTERNAL, naming the upstream, the example and the element) unless
 * there are `n` answers, each with no scores (a label-only answer) or `classes` finite scores, and a
 * label that is -1 (none) or a class index.
 */
export function checkAnswers(answers: UpstreamAnswer[], n: number, classes: number, upstream: string): void {
  const fail = (what: string) => {
    throw new UpstreamError(status.INTERNAL, `upstream ${upstream} answered ${what}`, false);
  };
  if (answers.length !== n) fail(`${answers.length} answers for ${n} examples`);
  answers.forEach((answer, i) => {
    const { scores, label } = answer;
    if (scores.length !== 0 && scores.length !== classes) {
      fail(`${scores.length} scores for example ${i}; the model has ${classes} classes`);
    }
    const bad = scores.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) fail(`${scores[bad]} at scores[${bad}] of example ${i}; scores must be finite`);
    if (!Number.isInteger(label) || label < -1 || label >= classes) {
      fail(`label ${label} for example ${i}; the model has ${classes} classes`);
    }
  });
}
