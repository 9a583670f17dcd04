/**
 * The attack registry: `ATTACKS` lists every attack with its norm, kind and parameter names;
 * `getAttack(name, params)` builds one, rejecting unknown names and parameters with a clear error.
 *
 * @module
 */
import { bim, bimL2 } from "./bim.ts";
import { fgm, fgsm } from "./fgsm.ts";
import { miFgsm } from "./mi_fgsm.ts";
import { pgd, pgdL2 } from "./pgd.ts";
import { deepFool, deepFoolLinf } from "./deepfool.ts";
import { auna } from "./auna.ts";
import { pwa } from "./pwa.ts";
import { boundary } from "./boundary.ts";
import { square, squareL2 } from "./square.ts";
import { eot, type EotParams } from "./eot.ts";
import { jsma } from "./jsma.ts";
import { uap, uapL2 } from "./uap.ts";
import { carliniWagnerL2 } from "./cw.ts";
import { onePixel } from "./one_pixel.ts";
import { apgdCe, apgdDlr, type ApgdParams, apgdTargetedDlr } from "./apgd.ts";
import { autoAttack, autoAttackPaper, type AutoAttackParams } from "./autoattack.ts";
import type { Attack, AttackKind, Norm } from "./types.ts";

/** One registry entry. */
export interface AttackInfo {
  readonly name: string;
  readonly norm: Norm;
  readonly kind: AttackKind;
  readonly mode: Attack["mode"];
  /** One line on what it does. */
  readonly summary: string;
  /** The parameter names `getAttack` accepts for it. */
  readonly params: readonly string[];
  // deno-lint-ignore no-explicit-any
  readonly create: (params: any) => Attack;
}

const GRADIENT_PARAMS = ["steps", "stepSize", "relStepSize"] as const;
const PGD_PARAMS = [...GRADIENT_PARAMS, "randomStart", "restarts", "loss", "seed"] as const;
const APGD_PARAMS = ["steps", "restarts", "rho", "momentum", "randomStart", "seed"] as const;
const UAP_PARAMS = ["maxIter", "delta", "inner", "innerSteps", "batchSize", "seed"] as const;
const AUTOATTACK_PARAMS = ["steps", "restarts", "targetClasses", "squareQueries", "seed"] as const;

/** Every registered attack. */
export const ATTACKS: readonly AttackInfo[] = [
  {
    name: "fgsm",
    norm: "linf",
    kind: "white-box",
    mode: "fixed-epsilon",
    summary: "one signed-gradient step of size epsilon (optionally the paper's epsilon line search)",
    params: ["epsilonSearch"],
    create: fgsm,
  },
  {
    name: "fgm-l2",
    norm: "l2",
    kind: "white-box",
    mode: "fixed-epsilon",
    summary: "one L2-normalised gradient step of size epsilon",
    params: ["epsilonSearch"],
    create: fgm,
  },
  {
    name: "bim",
    norm: "linf",
    kind: "white-box",
    mode: "fixed-epsilon",
    summary: "iterated FGSM with projection, from the input",
    params: GRADIENT_PARAMS,
    create: bim,
  },
  {
    name: "bim-l2",
    norm: "l2",
    kind: "white-box",
    mode: "fixed-epsilon",
    summary: "iterated FGM with L2 projection, from the input",
    params: GRADIENT_PARAMS,
    create: bimL2,
  },
  {
    name: "mi-fgsm",
    norm: "linf",
    kind: "white-box",
    mode: "fixed-epsilon",
    summary: "BIM with momentum over L1-normalised gradients",
    params: [...GRADIENT_PARAMS, "decay"],
    create: miFgsm,
  },
  {
    name: "pgd-linf",
    norm: "linf",
    kind: "white-box",
    mode: "fixed-epsilon",
    summary: "projected gradient ascent from a random start, with restarts",
    params: PGD_PARAMS,
    create: pgd,
  },
  {
    name: "pgd-l2",
    norm: "l2",
    kind: "white-box",
    mode: "fixed-epsilon",
    summary: "L2 projected gradient ascent from a random start, with restarts",
    params: PGD_PARAMS,
    create: pgdL2,
  },
  {
    name: "deepfool-l2",
    norm: "l2",
    kind: "white-box",
    mode: "minimization",
    summary: "steps to the nearest linearised boundary among the top classes, with overshoot",
    params: ["steps", "candidates", "overshoot"],
    create: deepFool,
  },
  {
    name: "deepfool-linf",
    norm: "linf",
    kind: "white-box",
    mode: "minimization",
    summary: "DeepFool under L_inf",
    params: ["steps", "candidates", "overshoot"],
    create: deepFoolLinf,
  },
  {
    name: "eot",
    norm: "l2",
    kind: "white-box",
    mode: "fixed-epsilon",
    summary: "runs a base attack on the target averaged over random transformations",
    params: ["base", "baseParams", "transform", "samples", "seed"],
    create: (p: EotParams & { base?: string; baseParams?: Record<string, unknown> }) =>
      eot(getAttack(p.base ?? "pgd-l2", p.baseParams ?? {}), p),
  },
  {
    name: "auna",
    norm: "l2",
    kind: "black-box",
    mode: "minimization",
    summary: "additive uniform noise of growing amplitude until the label flips (labels only)",
    params: ["steps", "maxAmplitude", "seed"],
    create: auna,
  },
  {
    name: "pwa",
    norm: "l0",
    kind: "black-box",
    mode: "minimization",
    summary: "pointwise: reset changed pixels while the example stays adversarial (labels only)",
    params: ["passes", "startSteps", "seed"],
    create: pwa,
  },
  {
    name: "boundary",
    norm: "l2",
    kind: "black-box",
    mode: "minimization",
    summary: "decision-based random walk along the boundary towards the input",
    params: ["steps", "sphericalStep", "stepSize", "stepAdaptation", "updateEvery", "seed"],
    create: boundary,
  },
  {
    name: "square-linf",
    norm: "linf",
    kind: "black-box",
    mode: "fixed-epsilon",
    summary: "score-based random search over square windows",
    params: ["steps", "pInit", "seed"],
    create: square,
  },
  {
    name: "square-l2",
    norm: "l2",
    kind: "black-box",
    mode: "fixed-epsilon",
    summary: "score-based random search over square windows (simplified L2 update)",
    params: ["steps", "pInit", "seed"],
    create: squareL2,
  },
  {
    name: "jsma",
    norm: "l0",
    kind: "white-box",
    mode: "minimization",
    summary: "saliency map: move the element that most raises the target and lowers the others by theta",
    params: ["theta", "maxIter", "maxPerturbationsPerPixel"],
    create: jsma,
  },
  {
    name: "uap",
    norm: "linf",
    kind: "white-box",
    mode: "fixed-epsilon",
    summary: "one universal perturbation learned with DeepFool (or PGD) steps over the batch",
    params: UAP_PARAMS,
    create: uap,
  },
  {
    name: "uap-l2",
    norm: "l2",
    kind: "white-box",
    mode: "fixed-epsilon",
    summary: "universal perturbation under L2",
    params: UAP_PARAMS,
    create: uapL2,
  },
  {
    name: "cw-l2",
    norm: "l2",
    kind: "white-box",
    mode: "minimization",
    summary: "Carlini-Wagner L2: Adam in tanh space, binary search over c, confidence margin kappa",
    params: ["binarySearchSteps", "steps", "stepSize", "confidence", "initialConst", "abortEarly"],
    create: carliniWagnerL2,
  },
  {
    name: "one-pixel",
    norm: "l0",
    kind: "black-box",
    mode: "fixed-epsilon",
    summary: "differential evolution over (row, column, value) of a few pixels (scores only)",
    params: ["pixels", "populationSize", "maxIter", "mutation", "seed"],
    create: onePixel,
  },
  {
    name: "apgd-ce",
    norm: "linf",
    kind: "white-box",
    mode: "fixed-epsilon",
    summary: "auto-PGD on cross-entropy: momentum 0.75, step halving at checkpoints",
    params: APGD_PARAMS,
    create: (p: ApgdParams) => apgdCe(p, "linf"),
  },
  {
    name: "apgd-ce-l2",
    norm: "l2",
    kind: "white-box",
    mode: "fixed-epsilon",
    summary: "auto-PGD on cross-entropy under L2",
    params: APGD_PARAMS,
    create: (p: ApgdParams) => apgdCe(p, "l2"),
  },
  {
    name: "apgd-dlr",
    norm: "linf",
    kind: "white-box",
    mode: "fixed-epsilon",
    summary: "auto-PGD on the DLR loss",
    params: APGD_PARAMS,
    create: (p: ApgdParams) => apgdDlr(p, "linf"),
  },
  {
    name: "apgd-t-dlr",
    norm: "linf",
    kind: "white-box",
    mode: "fixed-epsilon",
    summary: "auto-PGD on the targeted DLR loss towards each of the top other classes in turn",
    params: [...APGD_PARAMS, "targetClasses"],
    create: (p: ApgdParams) => apgdTargetedDlr(p, "linf"),
  },
  {
    name: "apgd-t-dlr-l2",
    norm: "l2",
    kind: "white-box",
    mode: "fixed-epsilon",
    summary: "targeted-DLR auto-PGD under L2",
    params: [...APGD_PARAMS, "targetClasses"],
    create: (p: ApgdParams) => apgdTargetedDlr(p, "l2"),
  },
  {
    name: "autoattack",
    norm: "linf",
    kind: "white-box",
    mode: "fixed-epsilon",
    summary: "APGD-CE, APGD-T (DLR), Square; per-example worst case, queries summed",
    params: AUTOATTACK_PARAMS,
    create: (p: AutoAttackParams) => autoAttack(p, "linf"),
  },
  {
    name: "autoattack-l2",
    norm: "l2",
    kind: "white-box",
    mode: "fixed-epsilon",
    summary: "the AutoAttack-style ensemble under L2",
    params: AUTOATTACK_PARAMS,
    create: (p: AutoAttackParams) => autoAttack(p, "l2"),
  },
  {
    name: "autoattack-paper",
    norm: "linf",
    kind: "white-box",
    mode: "fixed-epsilon",
    summary: "the paper's Auto row: FGSM 0.2, PGD 0.2 (step 0.1), UAP 0.1 (3 passes); worst case",
    params: ["seed"],
    create: autoAttackPaper,
  },
];

/** Alternative names accepted by {@link getAttack}. */
export const ATTACK_ALIASES: Readonly<Record<string, string>> = {
  pgd: "pgd-linf",
  fgm: "fgm-l2",
  "bim-linf": "bim",
  mifgsm: "mi-fgsm",
  deepfool: "deepfool-l2",
  square: "square-linf",
  "apgd-t": "apgd-t-dlr",
  cw: "cw-l2",
  pixel: "one-pixel",
  auto: "autoattack-paper",
};

/** The registry entry for `name` (or an alias); throws listing the known names. */
export function attackInfo(name: string): AttackInfo {
  const resolved = ATTACK_ALIASES[name] ?? name;
  const info = ATTACKS.find((a) => a.name === resolved);
  if (info === undefined) {
    throw new RangeError(`unknown attack "${name}"; known: ${ATTACKS.map((a) => a.name).join(", ")}`);
  }
  return info;
}

/** Builds the attack `name` with `params` (unknown parameter names are an error). */
export function getAttack(name: string, params: Record<string, unknown> = {}): Attack {
  const info = attackInfo(name);
  for (const key of Object.keys(params)) {
    if (!info.params.includes(key)) {
      throw new RangeError(
        `attack "${info.name}" has no parameter "${key}"; accepted: ${info.params.join(", ") || "(none)"}`,
      );
    }
  }
  return info.create(params);
}
