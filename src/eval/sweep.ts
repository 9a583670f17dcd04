/**
 * Sensitivity sweeps (the paper's Figs. 7-9): one defense setting varied over values, each variant evaluated
 * against the same attack on the same examples, with its random-noise control and its benign accuracy. The
 * variants are built by the caller (a setting override, or a recalibration at other k1 / k2 or another
 * layer); this module only runs and records them.
 *
 * @module
 */
import type { DefensePipeline } from "../stages/pipeline.ts";
import { type AttackSpec, type EvalSet, evaluate, type Protocol } from "./harness.ts";

/** One value of the swept setting and what it gave. */
export interface SensitivityPoint {
  /** The value (for a layer: its position in the list swept). */
  value: number;
  /** A name for the value where it is not a number (a layer's name). */
  label?: string;
  dsr: number;
  randomNoise: number;
  benignAccuracy: number;
  /** Adversarial examples the DSR is over. */
  adversarial: number;
}

/** A sweep over one setting: the optional `sweep` of eval.json. */
export interface SensitivitySweep {
  parameter: string;
  attack: string;
  budget: string;
  points: SensitivityPoint[];
}

/** One variant of the defense: the pipeline for a value, released by `dispose` after it ran. */
export interface SweepVariant {
  value: number;
  label?: string;
  pipeline: DefensePipeline;
  dispose(): void;
}

/**
 * Evaluates each variant (built one at a time by `variants`, so only one is held at once) against `spec` on
 * `set`, honest protocol; returns the sweep.
 */
export async function runSweep(
  parameter: string,
  variants: (() => Promise<SweepVariant>)[],
  set: EvalSet,
  spec: AttackSpec,
  options: {
    seed: number;
    protocols?: Protocol[];
    onProgress?: (stage: string, done: number, total: number) => void;
  },
): Promise<SensitivitySweep> {
  const points: SensitivityPoint[] = [];
  let attack = spec.attack.name;
  let budget = spec.budget.label ?? String(spec.budget.epsilon);
  for (const [i, build] of variants.entries()) {
    const variant = await build();
    try {
      const report = await evaluate([variant.pipeline], set, [spec], {
        seed: options.seed,
        protocols: ["honest"],
      });
      const row = report.rows[0];
      const score = row.defenses[variant.pipeline.name];
      attack = row.attack;
      budget = row.budget;
      points.push({
        value: variant.value,
        ...(variant.label === undefined ? {} : { label: variant.label }),
        dsr: score?.dsr ?? NaN,
        randomNoise: score?.randomNoise ?? NaN,
        benignAccuracy: report.benign.defenses[variant.pipeline.name].accuracy,
        adversarial: row.adversarial,
      });
    } finally {
      variant.dispose();
    }
    options.onProgress?.(`sweep ${parameter}`, i + 1, variants.length);
  }
  return { parameter, attack, budget, points };
}
