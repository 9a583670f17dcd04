/**
 * The deployed decision of a detecting pipeline as a black-box attack target, where a rejected query is a
 * failed query (SPEC.md section 8): the score-based and decision-based attacks (Square, ...) see the model's
 * scores for an accepted input and, for a flagged one, scores that put all the mass on the true label, the
 * worst answer an untargeted attacker can get. Each query is scored by the real pipeline with a fresh seed,
 * so randomised detectors draw anew every time.
 *
 * Attacks query arbitrary subsets of their batch, so each queried row is matched to its original by L_inf
 * distance: every query of an L_inf attack of radius `epsilon` lies within `epsilon` of its original, and
 * the constructor checks that the originals are more than `2 * epsilon` apart, which makes the match
 * unique. With one original every query is its own, whatever its distance: attacks that search far from
 * the input (Boundary, from a blended-noise start) run one example at a time. The true labels are the
 * attacker's knowledge, used to encode its failure; the pipeline never sees them.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { AttackTarget } from "../attacks/types.ts";
import { mulberry32 } from "../random.ts";
import { outputsProbabilities } from "../engine/outputs.ts";
import type { DefensePipeline } from "../stages/pipeline.ts";
import { deployedDecision } from "./detection_pgd.ts";

/** Slack on the L_inf match, for float rounding after clipping. */
const MATCH_SLACK = 1e-5;

/** A rejection-aware target with a count of the queries it rejected. */
export interface RejectingTarget extends AttackTarget {
  /** Queried rows the pipeline flagged so far. */
  readonly rejected: () => number;
}

/** Index of the first row of `originals` within `radius` of `row` in L_inf, or -1. */
function matchRow(row: Float32Array, originals: Float32Array, d: number, radius: number): number {
  const n = originals.length / d;
  for (let j = 0; j < n; j++) {
    let k = 0;
    const base = j * d;
    while (k < d && Math.abs(row[k] - originals[base + k]) <= radius) k++;
    if (k === d) return j;
  }
  return -1;
}

/**
 * The deployed decision of `pipeline` (its detection at the pipeline's `alpha`) for queries within
 * `epsilon` of `originals` [n, ...], whose true labels are `labels`.
 */
export function rejectingTarget(
  pipeline: DefensePipeline,
  originals: tf.Tensor,
  labels: Int32Array,
  epsilon: number,
  seed = 1,
): RejectingTarget {
  const d = originals.size / originals.shape[0];
  const source = Float32Array.from(originals.dataSync() as Float32Array);
  const n = labels.length;
  for (let i = 0; i < n; i++) {
    const other = matchRow(source.subarray(i * d, (i + 1) * d), source.subarray((i + 1) * d), d, 2 * epsilon);
    if (other >= 0) {
      throw new RangeError(
        `rejectingTarget: originals ${i} and ${i + 1 + other} are within 2 * epsilon = ${2 * epsilon} of ` +
          "each other in L_inf; their queries could not be told apart",
      );
    }
  }
  const probabilities = outputsProbabilities(pipeline.split.model);
  const random = mulberry32(seed);
  let rejected = 0;
  return {
    scores(x: tf.Tensor): tf.Tensor2D {
      const decision = deployedDecision(pipeline, x, Math.floor(random() * 2 ** 31));
      const rows = x.shape[0];
      const classes = decision.scores.length / rows;
      const scores = Float32Array.from(decision.scores);
      const values = x.dataSync() as Float32Array;
      for (let i = 0; i < rows; i++) {
        if (decision.flagged[i] === 0) continue;
        const original = n === 1
          ? 0
          : matchRow(values.subarray(i * d, (i + 1) * d), source, d, epsilon + MATCH_SLACK);
        if (original < 0) {
          throw new RangeError(`rejectingTarget: a query lies farther than ${epsilon} from every original`);
        }
        rejected++;
        for (let k = 0; k < classes; k++) {
          const own = k === labels[original];
          scores[i * classes + k] = probabilities ? (own ? 1 : 0) : (own ? 1e4 : -1e4);
        }
      }
      return tf.tensor2d(scores, [rows, classes]);
    },
    inputRange: [...pipeline.split.inputRange] as [number, number],
    scoreKind: probabilities ? "probs" : "logits",
    differentiable: false,
    rejected: () => rejected,
  };
}
