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
];

/** Alternative names accepted by {@link getAttack}. */
export const ATTACK_ALIASES: Readonly<Record<string, string>> = {
  pgd: "pgd-linf",
  fgm: "fgm-l2",
  "bim-linf": "bim",
  mifgsm: "mi-fgsm",
  deepfool: "deepfool-l2",
  square: "square-linf",
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
