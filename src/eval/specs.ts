/**
 * Turns attack names and budget names into {@link AttackSpec}s: `paper` takes the paper's parameters and
 * epsilon (App. A Table 2), `standard` the standard budget for the input kind (SPEC.md section 7) with the
 * attack's own default parameters, and a number a custom epsilon in the attack's norm (defaults too).
 *
 * @module
 */
import {
  attackInfo,
  ATTACKS,
  budgetPreset,
  getAttack,
  type InputKind,
  paperAttackSettings,
  standardBudget,
} from "../attacks/mod.ts";
import type { AttackBudget } from "../attacks/types.ts";
import type { AttackSpec } from "./harness.ts";

/**
 * Specs for every attack name (or `all`) times every budget name (`paper`, `standard`, or a number).
 * Pairs that do not exist are skipped: `paper` for an attack the paper did not run, `standard` for L_0;
 * `onSkip` hears each with the reason. When attacks were asked for and every pair was skipped, there is
 * nothing to run: a RangeError naming the pairs. `overrides` replace paper parameters by attack name (e.g.
 * a shorter epsilon search in the demo).
 */
export function resolveSpecs(
  attackNames: string[],
  budgetNames: string[],
  kind: InputKind,
  overrides: Record<string, Record<string, unknown>> = {},
  onSkip: (reason: string) => void = () => {},
): AttackSpec[] {
  const names = attackNames.includes("all") ? ATTACKS.map((a) => a.name) : attackNames;
  // Overrides may name an attack by an alias ("cw" for "cw-l2"); they apply at every budget.
  const byName: Record<string, Record<string, unknown>> = {};
  for (const [key, params] of Object.entries(overrides)) {
    const name = attackInfo(key).name;
    byName[name] = { ...byName[name], ...params };
  }
  const specs: AttackSpec[] = [];
  const skipped: string[] = [];
  const skip = (reason: string) => {
    skipped.push(reason);
    onSkip(reason);
  };
  for (const name of names) {
    const info = attackInfo(name);
    const paper = paperAttackSettings.find((s) => s.attack === info.name);
    for (const budgetName of budgetNames) {
      let budget: AttackBudget;
      let params: Record<string, unknown> = {};
      if (budgetName === "paper") {
        if (!paper) {
          skip(`${info.name} at the paper budget: the paper did not run ${info.name}`);
          continue;
        }
        budget = budgetPreset(paper.budget);
        params = { ...paper.params };
      } else if (budgetName === "standard") {
        const standard = standardBudget(info.norm, kind);
        if (!standard) {
          skip(
            `${info.name} at the standard budget: there is no standard ${info.norm} budget for ${kind} inputs`,
          );
          continue;
        }
        budget = standard;
      } else {
        const epsilon = Number(budgetName);
        if (!Number.isFinite(epsilon) || epsilon <= 0) {
          throw new RangeError(`budget "${budgetName}": expected paper, standard or a positive number`);
        }
        budget = { epsilon, label: `${info.norm} ${budgetName}`, source: "custom" };
      }
      params = { ...params, ...(byName[info.name] ?? {}) };
      specs.push({ attack: getAttack(info.name, params), budget });
    }
  }
  if (specs.length === 0 && names.length > 0) {
    throw new RangeError(`nothing to run: ${skipped.join("; ")}`);
  }
  return specs;
}
