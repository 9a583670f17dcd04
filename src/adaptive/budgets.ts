/**
 * Budgets of the adaptive attacks, each labelled with where its number came from. The paper bounds none of
 * its adaptive attacks: ALA / I-ALA get the L_inf distance their sign steps can reach (`s`, `20 s`);
 * S-ALA, R-ALA and the pipeline attacks get the standard budget of the input kind (SPEC.md section 7).
 *
 * @module
 */
import type { AttackBudget } from "../attacks/types.ts";

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
