/**
 * Worst-case ensembles: run attacks in turn, each only on the examples no earlier member broke, and keep per
 * example the first adversarial found (AutoAttack's protocol). An example counts as broken when any member
 * breaks it; queries are summed over the members that ran on it (plus the final check).
 *
 * - `autoattack` (Croce & Hein 2020, "standard" version without FAB-T): APGD-CE, APGD-T (targeted DLR over
 *   the 9 most likely other classes), Square (5000 queries, p_init 0.8). L_inf, or L2 as `autoattack-l2`.
 * - `autoattack-paper`: the paper's "Auto" row (App. A Table 2), FGSM (L_inf 0.2), PGD (L_inf 0.2, step
 *   0.1; ART's defaults: 100 iterations, no random start) and UAP (L_inf 0.1, max_iter 3, learned on the
 *   attacked batch as ART's `generate` does).
 *
 * A member with its own epsilon runs at `min(member epsilon, budget.epsilon)`, so the ensemble never exceeds
 * the budget. `budget.maxQueries` is passed to every member (it caps each member, not their sum).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { fixedEpsilonAttack, type SearchOutcome } from "./base.ts";
import { subsetCriterion } from "./criteria.ts";
import { apgdCe, type ApgdParams, apgdTargetedDlr } from "./apgd.ts";
import { fgsm } from "./fgsm.ts";
import { pgd } from "./pgd.ts";
import { indicesWhere, replaceRows } from "./query.ts";
import { square, squareL2 } from "./square.ts";
import { uap } from "./uap.ts";
import type { Attack, Norm } from "./types.ts";

/** One member of a worst-case ensemble. */
export interface EnsembleMember {
  readonly attack: Attack;
  /** The member's own bound (input units), capped by the budget's epsilon; default: the budget's. */
  readonly epsilon?: number;
}

/** An attack that runs `members` in turn on the still-unbroken examples and keeps the first success. */
export function worstCaseEnsemble(
  name: string,
  norm: Norm,
  members: readonly EnsembleMember[],
  params: Readonly<Record<string, unknown>> = {},
): Attack {
  if (members.length === 0) throw new RangeError(`attack "${name}": an ensemble needs at least one member`);
  const kind = members.some((m) => m.attack.kind === "white-box") ? "white-box" : "black-box";
  return fixedEpsilonAttack(
    { name, norm, kind, params: { ...params, members: members.map((m) => m.attack.name) } },
    async (context): Promise<SearchOutcome> => {
      const { target, x, criterion, budget, epsilon, queries } = context;
      const n = x.shape[0];
      let result = x.clone() as tf.Tensor4D;
      const broken = new Uint8Array(n);
      for (const member of members) {
        const active = indicesWhere(broken);
        if (active.length === 0) break;
        const subX = active.length === n ? x : tf.gather(x, active) as tf.Tensor4D;
        const memberEpsilon = Math.min(member.epsilon ?? Infinity, epsilon);
        const outcome = await member.attack.run(target, subX, subsetCriterion(criterion, active), {
          ...budget,
          epsilon: memberEpsilon,
        });
        if (subX !== x) subX.dispose();
        active.forEach((i, a) => queries[i] += outcome.queries[a]);
        const won = Int32Array.from(active.keys()).filter((a) => outcome.success[a] === 1);
        if (won.length > 0) {
          const rows = tf.gather(outcome.adversarial, won);
          const merged = replaceRows(result, Int32Array.from(won, (a) => active[a]), rows);
          tf.dispose([rows, result]);
          result = merged;
          won.forEach((a) => broken[active[a]] = 1);
        }
        outcome.adversarial.dispose();
      }
      return { adversarial: result };
    },
  );
}

/** Parameters of {@link autoAttack}. */
export interface AutoAttackParams {
  /** APGD iterations (default 100). */
  steps?: number;
  /** APGD restarts (default 1). */
  restarts?: number;
  /** APGD-T target classes (default 9). */
  targetClasses?: number;
  /** Square iterations (default 5000). */
  squareQueries?: number;
  seed?: number;
}

/** AutoAttack-style ensemble: APGD-CE, APGD-T (targeted DLR), Square; per-example worst case. */
export function autoAttack(params: AutoAttackParams = {}, norm: "linf" | "l2" = "linf"): Attack {
  const apgd: ApgdParams = {
    steps: params.steps ?? 100,
    restarts: params.restarts ?? 1,
    seed: params.seed ?? 0,
  };
  const squareParams = { steps: params.squareQueries ?? 5000, pInit: 0.8, seed: params.seed ?? 0 };
  return worstCaseEnsemble(
    norm === "linf" ? "autoattack" : "autoattack-l2",
    norm,
    [
      { attack: apgdCe(apgd, norm) },
      { attack: apgdTargetedDlr({ ...apgd, targetClasses: params.targetClasses ?? 9 }, norm) },
      { attack: (norm === "linf" ? square : squareL2)(squareParams) },
    ],
    {
      ...apgd,
      targetClasses: params.targetClasses ?? 9,
      squareQueries: squareParams.steps,
    },
  );
}

/** Parameters of {@link autoAttackPaper}. */
export interface AutoAttackPaperParams {
  /** UAP shuffling seed. */
  seed?: number;
}

/** The paper's "Auto" row: FGSM (0.2), PGD (0.2, step 0.1), UAP (0.1, 3 passes); per-example worst case. */
export function autoAttackPaper(params: AutoAttackPaperParams = {}): Attack {
  return worstCaseEnsemble(
    "autoattack-paper",
    "linf",
    [
      { attack: fgsm(), epsilon: 0.2 },
      { attack: pgd({ steps: 100, stepSize: 0.1, randomStart: false }), epsilon: 0.2 },
      { attack: uap({ maxIter: 3, seed: params.seed ?? 0 }), epsilon: 0.1 },
    ],
    { seed: params.seed ?? 0 },
  );
}
