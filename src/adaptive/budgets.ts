/**
 * Budgets of the adaptive attacks, each labelled with where its number came from. The paper bounds none of
 * its adaptive attacks: ALA / I-ALA get the L_inf distance their sign steps can reach (`s`, `20 s`);
 * S-ALA, R-ALA and the pipeline attacks get the standard budget of the input kind (SPEC.md section 7).
 *
 * @module
 */
import { budgetPreset } from "../attacks/presets.ts";
import type { AttackBudget, Norm } from "../attacks/types.ts";

/** The ALA-family budgets: what `s = 0.01` sign steps reach (paper App. B gives no bound). */
export const adaptiveBudgets = {
  "paper-ala": {
    epsilon: 0.01,
    label: "paper App. B: ALA, one sign step s=0.01 (L_inf 0.01)",
    source: "paper",
  },
  "paper-i-ala": {
    epsilon: 0.2,
    label: "paper App. B: I-ALA, 20 sign steps s=0.01 (L_inf 0.2)",
    source: "paper",
  },
} as const satisfies Record<string, AttackBudget>;

/** Small grey images (MNIST-like) or 32x32 colour, for the standard budgets. */
export type InputKind = "grey28" | "colour32";

/** The input kind of an input shape [h, w, c]: one channel is grey. */
export function inputKindOf(shape: readonly number[]): InputKind {
  return shape[shape.length - 1] === 1 ? "grey28" : "colour32";
}

/**
 * Standard budget for a norm and input kind: L_inf 0.3 (grey) or 8/255 (colour), L2 0.5 (colour) or 2.0
 * (grey: SPEC.md names none; the common MNIST budget, as `src/eval/specs.ts` uses).
 */
export function standardBudget(norm: Norm, kind: InputKind): AttackBudget {
  if (norm === "linf") {
    return budgetPreset(kind === "grey28" ? "standard-linf-0.3-grey" : "standard-linf-8/255");
  }
  if (norm === "l2") {
    return kind === "grey28"
      ? {
        epsilon: 2,
        label: "L2 2.0 on 28x28 grey (common MNIST budget; SPEC.md names none)",
        source: "custom",
      }
      : budgetPreset("standard-l2-0.5");
  }
  throw new RangeError(`no standard budget for norm ${norm}`);
}
