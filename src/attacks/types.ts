/**
 * The one interface every attack implements (Foolbox 3 style): an attack is a value with a name, a norm and
 * a kind, and a `run` that takes a target (a plain scoring function), a batch, a criterion and a budget.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";

/** Perturbation norm an attack bounds or minimises. `l0` counts changed pixel positions (any channel). */
export type Norm = "linf" | "l2" | "l0";

/** White-box attacks read gradients; black-box attacks only query scores or decisions. */
export type AttackKind = "white-box" | "black-box";

/**
 * What an attack attacks: a scoring function over a batch, so the same attack runs on a bare model or on a
 * whole defended pipeline (adaptive attacks).
 */
export interface AttackTarget {
  /** Batch -> scores [n, classes]. Must be built from tf ops when `differentiable` is not false. */
  scores(x: tf.Tensor): tf.Tensor2D;
  /** Valid input range; every adversarial example is clipped into it. */
  readonly inputRange: [number, number];
  /** Whether `scores` returns softmax probabilities or logits (decides the loss). */
  readonly scoreKind: "probs" | "logits";
  /** False for a target that gradients cannot flow through (only black-box attacks may run on it). */
  readonly differentiable?: boolean;
}

/** Untargeted: adversarial when the predicted label differs from `labels[i]`. */
export interface MisclassificationCriterion {
  readonly kind: "misclassification";
  readonly labels: Int32Array;
}

/** Targeted: adversarial when the predicted label equals `targets[i]`. */
export interface TargetedMisclassificationCriterion {
  readonly kind: "targeted";
  readonly targets: Int32Array;
}

/** When an example counts as adversarial: a value, not a flag. */
export type Criterion = MisclassificationCriterion | TargetedMisclassificationCriterion;

/** Where a budget number came from: the paper's App. A Table 2, a standard benchmark budget, or the caller. */
export type BudgetSource = "paper" | "standard" | "custom";

/**
 * The perturbation budget of one run. Fixed-epsilon attacks perturb up to `epsilon`; minimisation attacks
 * find the smallest perturbation they can and count as successful only within `epsilon` (Infinity = no bound).
 */
export interface AttackBudget {
  /** Bound in the attack's norm (input units; for `l0` a number of pixel positions). */
  readonly epsilon: number;
  /** Human-readable provenance, copied to every result, e.g. "standard L_inf 8/255 (32x32 colour)". */
  readonly label?: string;
  readonly source?: BudgetSource;
  /** Per-example query limit for black-box attacks (their own default when absent). */
  readonly maxQueries?: number;
}

/** Per-example distances between the benign and the adversarial batch, in every norm. */
export interface Distances {
  readonly linf: Float32Array;
  readonly l2: Float32Array;
  /** Number of pixel positions (h, w) where any channel changed by more than 1e-7. */
  readonly l0: Float32Array;
}

/** What `run` returns. Index i is example i of the input batch. */
export interface AttackResult {
  /** The perturbed batch, clipped into the input range; the caller disposes it. */
  readonly adversarial: tf.Tensor4D;
  /** 1 where the adversarial example meets the criterion and the budget (checked on a final query). */
  readonly success: Uint8Array;
  /** Model queries spent per example (one forward or one forward+backward of that example = 1 query). */
  readonly queries: Int32Array;
  /** Distances in every norm; `distances[attack.norm]` is the one the budget bounds. */
  readonly distances: Distances;
  /** The label predicted for each adversarial example on the final query. */
  readonly predicted: Int32Array;
  /** Name of the attack and the budget's label, so every number says where it came from. */
  readonly attack: string;
  readonly budgetLabel: string;
}

/** An attack: a value behind one interface. */
export interface Attack {
  /** Registry name, e.g. "pgd-linf". */
  readonly name: string;
  readonly norm: Norm;
  readonly kind: AttackKind;
  /** "fixed-epsilon" attacks perturb up to the budget; "minimization" attacks minimise the distance. */
  readonly mode: "fixed-epsilon" | "minimization";
  /** The parameters the attack was built with (for reports). */
  readonly params: Readonly<Record<string, unknown>>;
  run(
    target: AttackTarget,
    x: tf.Tensor4D,
    criterion: Criterion,
    budget: AttackBudget,
  ): Promise<AttackResult>;
}
