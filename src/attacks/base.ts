/**
 * The outer loop every attack shares (Foolbox 3's `Attack.__call__`): validate, run the attack's own search,
 * restrict the result to the input range and the epsilon ball, query the target once more to decide success,
 * and measure distances. Fixed-epsilon and minimisation attacks differ only in how the budget enters.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { checkCriterion, criterionClasses, isAdversarial } from "./criteria.ts";
import { clipToRange, computeDistances, projectToBall } from "./norms.ts";
import { assertDifferentiable, checkBatch } from "./target.ts";
import type {
  Attack,
  AttackBudget,
  AttackKind,
  AttackResult,
  AttackTarget,
  Criterion,
  Norm,
} from "./types.ts";

/** Everything an attack's own search gets. It adds its queries to `queries` (index = example). */
export interface AttackContext {
  readonly target: AttackTarget;
  readonly x: tf.Tensor4D;
  readonly criterion: Criterion;
  readonly budget: AttackBudget;
  /** The budget's epsilon (fixed-epsilon attacks: the bound; minimisation attacks: Infinity or a bound to stop early). */
  readonly epsilon: number;
  readonly queries: Int32Array;
}

/** What an attack's own search returns: a candidate batch, and optionally its predictions (saves a query). */
export interface SearchOutcome {
  adversarial: tf.Tensor4D;
  /** Predicted labels of `adversarial` when the search already queried them after its last change. */
  predicted?: Int32Array;
}

/** Static description of an attack. */
export interface AttackSpec {
  readonly name: string;
  readonly norm: Norm;
  readonly kind: AttackKind;
  readonly params: Readonly<Record<string, unknown>>;
}

/** Absolute slack when comparing a distance to epsilon (float32 rounding of projected points). */
const EPSILON_SLACK = 1e-5;

function checkBudget(spec: AttackSpec, budget: AttackBudget, mode: Attack["mode"]): number {
  const epsilon = budget?.epsilon;
  if (typeof epsilon !== "number" || Number.isNaN(epsilon) || epsilon < 0) {
    throw new RangeError(`attack "${spec.name}": budget.epsilon must be a number >= 0, got ${epsilon}`);
  }
  if (mode === "fixed-epsilon" && !Number.isFinite(epsilon)) {
    throw new RangeError(`attack "${spec.name}" is a fixed-epsilon attack: budget.epsilon must be finite`);
  }
  if (budget.maxQueries !== undefined && !(budget.maxQueries >= 1)) {
    throw new RangeError(`attack "${spec.name}": budget.maxQueries must be >= 1, got ${budget.maxQueries}`);
  }
  return epsilon;
}

/** Default label of a budget that carries none. */
export function budgetLabelOf(norm: Norm, budget: AttackBudget): string {
  return budget.label ?? `${budget.source ?? "custom"} ${norm} epsilon=${budget.epsilon}`;
}

async function finish(
  spec: AttackSpec,
  context: AttackContext,
  outcome: SearchOutcome,
  restrict: boolean,
): Promise<AttackResult> {
  // Every success is decided on a query of exactly the returned tensor: either the search's own last query
  // (when restricting left it unchanged) or a fresh one.
  const { target, x, criterion, epsilon, queries } = context;
  const n = x.shape[0];
  const adversarial = tf.tidy(() =>
    restrict && spec.norm !== "l0"
      ? projectToBall(x, outcome.adversarial, spec.norm, epsilon, target.inputRange)
      : clipToRange(outcome.adversarial, target.inputRange)
  );
  let predicted = outcome.predicted;
  if (adversarial !== outcome.adversarial) {
    // The search's labels still hold only where restricting changed nothing at all.
    if (predicted !== undefined) {
      const changed = tf.tidy(() => tf.any(tf.notEqual(adversarial, outcome.adversarial)));
      if ((await changed.data())[0]) predicted = undefined;
      changed.dispose();
    }
    outcome.adversarial.dispose();
  }
  if (predicted === undefined) {
    const scores = tf.tidy(() => target.scores(adversarial));
    checkCriterion(criterion, n, scores.shape[1]);
    const labels = tf.tidy(() => tf.argMax(scores, 1));
    predicted = Int32Array.from((await labels.data()) as Int32Array);
    tf.dispose([scores, labels]);
    for (let i = 0; i < n; i++) queries[i] += 1;
  }
  const distances = await computeDistances(x, adversarial);
  const success = isAdversarial(criterion, predicted);
  const bound = epsilon + EPSILON_SLACK * Math.max(1, epsilon);
  const within = distances[spec.norm];
  for (let i = 0; i < n; i++) if (!(within[i] <= bound)) success[i] = 0;
  return {
    adversarial,
    success,
    queries,
    distances,
    predicted,
    attack: spec.name,
    budgetLabel: budgetLabelOf(spec.norm, context.budget),
  };
}

/** Number of classes, from the target's output on one example (validation only: not counted as a query). */
function numClassesOf(target: AttackTarget, x: tf.Tensor4D): number {
  if (x.shape[0] === 0) return Infinity;
  return tf.tidy(() => target.scores(x.slice([0, 0, 0, 0], [1, -1, -1, -1])).shape[1]);
}

function makeAttack(
  spec: AttackSpec,
  mode: Attack["mode"],
  search: (context: AttackContext) => Promise<SearchOutcome>,
): Attack {
  return {
    ...spec,
    mode,
    async run(target, x, criterion, budget) {
      const epsilon = checkBudget(spec, budget, mode);
      checkBatch(target, x, spec.name);
      checkCriterion(criterion, x.shape[0], numClassesOf(target, x));
      if (spec.kind === "white-box") assertDifferentiable(target, spec.name);
      const context: AttackContext = {
        target,
        x,
        criterion,
        budget,
        epsilon,
        queries: new Int32Array(x.shape[0]),
      };
      const outcome = await search(context);
      // Minimisation attacks return their smallest adversarial; only a finite budget restricts it.
      const restrict = mode === "fixed-epsilon" || Number.isFinite(epsilon);
      return await finish(spec, context, outcome, restrict);
    },
  };
}

/** An attack that perturbs each example within `budget.epsilon` (FGSM, BIM, PGD, ...). */
export function fixedEpsilonAttack(
  spec: AttackSpec,
  search: (context: AttackContext) => Promise<SearchOutcome>,
): Attack {
  return makeAttack(spec, "fixed-epsilon", search);
}

/**
 * An attack that minimises the perturbation (DeepFool, Boundary, PWA, ...). Its result is restricted to
 * `budget.epsilon` when finite, and counts as successful only within it.
 */
export function minimizationAttack(
  spec: AttackSpec,
  search: (context: AttackContext) => Promise<SearchOutcome>,
): Attack {
  return makeAttack(spec, "minimization", search);
}

/** Adds `amount` queries to each example in `indices` (all examples when absent). */
export function addQueries(queries: Int32Array, amount = 1, indices?: ArrayLike<number>): void {
  if (indices === undefined) { for (let i = 0; i < queries.length; i++) queries[i] += amount; }
  else for (let j = 0; j < indices.length; j++) queries[indices[j]] += amount;
}

/** The classes the criterion refers to, re-exported for attack modules. */
export { criterionClasses };
