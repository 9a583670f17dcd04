/**
 * The attack library: one module per attack behind one interface (see README.md).
 *
 * @module
 */
export type {
  Attack,
  AttackBudget,
  AttackKind,
  AttackResult,
  AttackTarget,
  BudgetSource,
  Criterion,
  Distances,
  MisclassificationCriterion,
  Norm,
  TargetedMisclassificationCriterion,
} from "./types.ts";
export { isAdversarial, misclassification, subsetCriterion, targetedMisclassification } from "./criteria.ts";
export { type ModelTargetOptions, predictLabels, targetFromModel } from "./target.ts";
export { computeDistances, exactSign, projectToBall } from "./norms.ts";
export { type AttackContext, fixedEpsilonAttack, minimizationAttack, type SearchOutcome } from "./base.ts";
export { gradientDescent, type GradientDescentOptions } from "./gradient_descent.ts";
export { attackLoss, lossGradient, type LossKind } from "./loss.ts";
export { fgm, fgsm, type FgsmParams } from "./fgsm.ts";
export { bim, bimL2, type BimParams } from "./bim.ts";
export { miFgsm, type MiFgsmParams } from "./mi_fgsm.ts";
export { pgd, pgdL2, type PgdParams } from "./pgd.ts";
export { deepFool, deepFoolLinf, type DeepFoolParams } from "./deepfool.ts";
export { auna, type AunaParams, blendedNoiseStart } from "./auna.ts";
export { pwa, type PwaParams } from "./pwa.ts";
export { boundary, type BoundaryParams } from "./boundary.ts";
export { square, squareFraction, squareL2, type SquareParams } from "./square.ts";
export { eot, type EotParams, eotTarget, type Transform, transforms } from "./eot.ts";
export { bpdaTarget } from "./bpda.ts";
export { bpda, stopGradient } from "../engine/bpda.ts";
export { jsma, type JsmaParams } from "./jsma.ts";
export { uap, type UapAttack, uapL2, type UapParams, type UniversalPerturbation } from "./uap.ts";
export { carliniWagnerL2, type CarliniWagnerParams, criterionMargins, logitsOf } from "./cw.ts";
export { onePixel, type OnePixelParams } from "./one_pixel.ts";
export {
  apgdCe,
  apgdCheckpoints,
  apgdDlr,
  type ApgdParams,
  apgdTargetedDlr,
  targetedDlrLoss,
} from "./apgd.ts";
export {
  autoAttack,
  autoAttackPaper,
  type AutoAttackPaperParams,
  type AutoAttackParams,
  type EnsembleMember,
  worstCaseEnsemble,
} from "./autoattack.ts";
export { ATTACK_ALIASES, type AttackInfo, attackInfo, ATTACKS, getAttack } from "./registry.ts";
export {
  type BudgetPreset,
  budgetPreset,
  type BudgetPresetName,
  budgetPresets,
  type InputKind,
  inputKindOf,
  type PaperAttackSetting,
  paperAttackSettings,
  standardBudget,
} from "./presets.ts";
export { Rng } from "./rng.ts";
