/**
 * The deadlines of a batch of calls sharing one upstream call: the call runs until the latest member's
 * deadline (a short deadline must not cut its neighbours' answers), members whose own deadline has passed
 * are dropped before the call, and a member's own deadline still ends its call (grpc-js answers
 * DEADLINE_EXCEEDED for it).
 *
 * @module
 */

/** The deadline of a batch's upstream call: the latest of its members', none when a member has none. */
export function batchDeadline(deadlines: (number | undefined)[]): number | undefined {
  let latest = -Infinity;
  for (const d of deadlines) {
    if (d === undefined) return undefined;
    latest = Math.max(latest, d);
  }
  return deadlines.length > 0 ? latest : undefined;
}

/** Whether a member's deadline (epoch ms) has passed at `now`. */
export function expired(deadline: number | undefined, now = Date.now()): boolean {
  return deadline !== undefined && deadline <= now;
}
