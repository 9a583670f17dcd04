/**
 * What a deployment does with the detection's verdict (SPEC.md section 8), per example. `defend` runs the
 * transforms on every input (the sidecar's first behaviour); `detect` answers with the detection alone and
 * forwards nothing; `flag` forwards the input unchanged and marks it; `reject` forwards only unflagged
 * inputs, unchanged, and answers flagged ones with a rejection; `defend-if-flagged` runs the transforms on
 * flagged inputs only and forwards everything. The `smoothed` policies read an answering stage instead
 * (randomized smoothing): the input goes on unchanged, and an example is flagged when the answer it gets
 * (the upstream's, or the local model's without one) differs from the smoothed classifier's, an
 * abstention included; `smoothed-reject` then withholds that answer. Free of I/O.
 *
 * @module
 */

/** The policies, as configured and requested by name. */
export const POLICIES = [
  "defend",
  "detect",
  "flag",
  "reject",
  "defend-if-flagged",
  "smoothed",
  "smoothed-reject",
] as const;

/** One of {@link POLICIES}. */
export type Policy = typeof POLICIES[number];

/** What happens to one example under a policy. */
export interface Decision {
  /** The pipeline's transforms apply (else the input goes on unchanged). */
  transform: boolean;
  /** It is sent upstream (Classify). */
  forward: boolean;
  /** Answered with a rejection instead. */
  rejected: boolean;
}

/** Whether a policy reads the detection's verdict (and so needs a detection stage). */
export function needsDetection(policy: Policy): boolean {
  return policy !== "defend" && !needsAnswer(policy);
}

/** Whether a policy compares answers with an answering stage's (and so needs one: smoothing). */
export function needsAnswer(policy: Policy): boolean {
  return policy === "smoothed" || policy === "smoothed-reject";
}

/**
 * The decision for one example, given whether it is flagged (the detection's verdict; for the smoothed
 * policies, the disagreement, known once the answer to compare is in).
 */
export function decide(policy: Policy, flagged: boolean): Decision {
  switch (policy) {
    case "defend":
      return { transform: true, forward: true, rejected: false };
    case "detect":
      return { transform: false, forward: false, rejected: false };
    case "flag":
      return { transform: false, forward: true, rejected: false };
    case "reject":
      return { transform: false, forward: !flagged, rejected: flagged };
    case "defend-if-flagged":
      return { transform: flagged, forward: true, rejected: false };
    case "smoothed":
      return { transform: false, forward: true, rejected: false };
    case "smoothed-reject":
      return { transform: false, forward: true, rejected: flagged };
  }
}

/** Parses a policy name; the error lists the valid ones. */
export function parsePolicy(name: string): Policy {
  if (!(POLICIES as readonly string[]).includes(name)) {
    throw new RangeError(`unknown policy "${name}"; expected one of ${POLICIES.join(", ")}`);
  }
  return name as Policy;
}
