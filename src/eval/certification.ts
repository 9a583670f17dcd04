/**
 * The certified-robustness evaluation of randomized smoothing (Cohen et al. 2019's protocol): per variant
 * (the frozen model with or without a denoiser, a noise-trained model), CERTIFY on every test example and
 * the certified accuracy at each L2 radius (correct and certified at a radius at least that large), beside
 * the same model without smoothing (its clean accuracy and its accuracy under an L2 PGD attack) and the
 * random-noise control (the base classifier on one noisy copy). The empirical side is SmoothAdv, the
 * adaptive attack on the smoothed classifier, at the same radii, on a subset: its accuracy may not fall
 * below the certified figure, and each example certified at a radius it was then broken within is
 * counted as a violation. Free of I/O.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { pgdL2 } from "../attacks/pgd.ts";
import { misclassification } from "../attacks/criteria.ts";
import { targetFromModel } from "../attacks/target.ts";
import { smoothAdv } from "../adaptive/smooth_adv.ts";
import type { SplitModel } from "../nip/types.ts";
import { ABSTAIN, type Certificate, maxCertifiableRadius, topTwo } from "../smoothing/cohen.ts";
import { DefensePipeline } from "../stages/pipeline.ts";
import type { DefenseStage } from "../stages/stage.ts";
import type { EvalSet } from "./harness.ts";

/** One smoothed classifier to evaluate: an answering stage with `certify` over its model. */
export interface CertificationVariant {
  /** Row name, e.g. `denoiser (stability)`. */
  name: string;
  stage: DefenseStage;
  split: SplitModel;
}

/** The SmoothAdv part of the evaluation. */
export interface SmoothAdvSettings {
  /** L2 radii attacked (0 is skipped). */
  epsilons: number[];
  /** Test examples attacked (the first of the set). */
  n: number;
  steps: number;
  /** Noise draws per step. */
  samples: number;
  /** A stronger run (more steps and draws), which must not do better for the defense. */
  strongerSteps: number;
  strongerSamples: number;
}

/** Settings of {@link evaluateCertification}. */
export interface CertificationOptions {
  n0: number;
  n: number;
  alpha: number;
  radii: number[];
  /** Examples certified per call (progress granularity). */
  chunk?: number;
  seed: number;
  adaptive?: SmoothAdvSettings;
  onProgress?: (stage: string, done: number, total: number) => void;
}

/** The certified accuracy at one radius. */
export interface RadiusAccuracy {
  radius: number;
  accuracy: number;
}

/** SmoothAdv at one radius, on the attacked subset. */
export interface EmpiricalAtRadius {
  epsilon: number;
  /** The smoothed class (the plurality of PREDICT's draws) of the attacked input is the true one. */
  empiricalAccuracy: number;
  /** The same with the stronger attack. */
  strongerEmpiricalAccuracy: number;
  /** Per example, the worse of the two attacks: right only if both leave the smoothed class right. */
  worstEmpiricalAccuracy?: number;
  /** PREDICT's answer (abstentions count as wrong) on the stronger attack's inputs. */
  predictAccuracy: number;
  /** Certified accuracy at this radius on the same subset. */
  certifiedAccuracy: number;
  /** Examples certified correct at a radius >= epsilon whose attacked input changed the smoothed class. */
  violations: number;
  /** The bare model (no smoothing) under L2 PGD at this radius, same subset. */
  bareAccuracy: number;
}

/** One variant's results. */
export interface VariantCertification {
  name: string;
  description: string;
  settings: Record<string, number | string | boolean>;
  examples: number;
  certified: RadiusAccuracy[];
  /** CERTIFY abstained. */
  abstentionRate: number;
  /** CERTIFY answered the true class (radius >= 0). */
  certifyAccuracy: number;
  /** The largest radius these settings can certify. */
  maxRadius: number;
  /** PREDICT on the benign inputs: accuracy (abstentions wrong) and abstention rate. */
  predictAccuracy: number;
  predictAbstentionRate: number;
  /** The same model without smoothing, on the clean inputs. */
  bareAccuracy: number;
  /** Random-noise control: the base classifier on one noisy copy (sigma) of each input. */
  noisyBaseAccuracy: number;
  /** Wall-clock seconds of CERTIFY per example, and forwards per example (n0 + n). */
  certifySecondsPerExample: number;
  certifyForwardsPerExample: number;
  predictSecondsPerExample: number;
  predictForwardsPerExample: number;
  /** Each example's certificate and whether it is right. */
  perExample: { label: number; radius: number; pALower: number; correct: boolean }[];
  empirical?: EmpiricalAtRadius[];
  /** Set when a stronger attack did better for the defense somewhere (something is wrong). */
  warnings: string[];
}

/** Fraction of `certificates` right at radius >= `radius`. */
export function certifiedAccuracy(
  certificates: readonly Certificate[],
  labels: ArrayLike<number>,
  radius: number,
): number {
  if (certificates.length === 0) return Number.NaN;
  let count = 0;
  certificates.forEach((c, i) => {
    if (c.label !== ABSTAIN && c.label === labels[i] && c.radius >= radius) count++;
  });
  return count / certificates.length;
}

function accuracy(predicted: ArrayLike<number>, labels: ArrayLike<number>): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) correct++;
  return correct / labels.length;
}

function modelLabels(split: SplitModel, x: tf.Tensor): Int32Array {
  return tf.tidy(() =>
    (split.model.apply(x, { training: false }) as tf.Tensor).argMax(-1).dataSync() as Int32Array
  );
}

/** PREDICT through the stage (labels, -1 = abstain), its plurality class and the bare model's labels. */
function predictWithStage(
  variant: CertificationVariant,
  x: tf.Tensor,
  seed: number,
): { predicted: Int32Array; plurality: Int32Array; bare: Int32Array } {
  // A pipeline of the one stage gives the bare model's verdict and the stage's answer from one call; it is
  // not disposed, since the variant owns the stage.
  const outcome = new DefensePipeline(variant.split, [variant.stage]).run(x, { seed });
  outcome.defended.dispose();
  const m = x.shape[0];
  const classes = outcome.scoresAfter!.length / m;
  const plurality = Int32Array.from(
    { length: m },
    (_, i) => topTwo(outcome.scoresAfter!.subarray(i * classes, (i + 1) * classes))[0],
  );
  return { predicted: outcome.labelsAfter!, plurality, bare: outcome.labelsBefore };
}

/** Runs `work` on consecutive slices of `x` of `chunk` examples, reporting progress. */
async function inChunks(
  x: tf.Tensor,
  chunk: number,
  work: (slice: tf.Tensor, start: number) => void,
  progress: (done: number, total: number) => void,
): Promise<void> {
  const m = x.shape[0];
  for (let start = 0; start < m; start += chunk) {
    const size = Math.min(chunk, m - start);
    const slice = x.slice(start, size);
    try {
      work(slice, start);
    } finally {
      slice.dispose();
    }
    progress(start + size, m);
    // Lets the progress bar draw between chunks.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

/** Runs the evaluation of one variant on `set`. */
export async function certifyVariant(
  variant: CertificationVariant,
  set: EvalSet,
  options: CertificationOptions,
): Promise<VariantCertification> {
  const { stage, split } = variant;
  if (!stage.certify || !stage.answer) throw new RangeError(`stage ${stage.name} does not certify`);
  const m = set.x.shape[0];
  const chunk = options.chunk ?? 10;
  const sigma = Number(stage.settings.sigma);
  const predictN = Number(stage.settings["predict-n"]);
  const progress = (label: string) => (done: number, total: number) =>
    options.onProgress?.(`${variant.name}: ${label}`, done, total);

  const certificates: Certificate[] = [];
  let started = performance.now();
  await inChunks(set.x, chunk, (x, start) => {
    certificates.push(
      ...stage.certify!(x, {
        n0: options.n0,
        n: options.n,
        alpha: options.alpha,
        seed: options.seed + start,
      }),
    );
  }, progress(`CERTIFY (n0 ${options.n0}, n ${options.n})`));
  const certifySeconds = (performance.now() - started) / 1000;

  const predicted = new Int32Array(m);
  const bare = new Int32Array(m);
  started = performance.now();
  await inChunks(set.x, chunk, (x, start) => {
    const out = predictWithStage(variant, x, options.seed + 7919 + start);
    predicted.set(out.predicted, start);
    bare.set(out.bare, start);
  }, progress(`PREDICT (n ${predictN})`));
  const predictSeconds = (performance.now() - started) / 1000;

  const noisy = tf.tidy(() => {
    const noise = tf.randomNormal(set.x.shape, 0, sigma, "float32", options.seed);
    return modelLabels(split, set.x.add(noise));
  });
  const result: VariantCertification = {
    name: variant.name,
    description: stage.description,
    settings: { ...stage.settings },
    examples: m,
    certified: options.radii.map((radius) => ({
      radius,
      accuracy: certifiedAccuracy(certificates, set.labels, radius),
    })),
    abstentionRate: certificates.filter((c) => c.label === ABSTAIN).length / m,
    certifyAccuracy: certifiedAccuracy(certificates, set.labels, 0),
    maxRadius: maxCertifiableRadius(sigma, options.n, options.alpha),
    predictAccuracy: accuracy(predicted, set.labels),
    predictAbstentionRate: predicted.filter((l) => l === ABSTAIN).length / m,
    bareAccuracy: accuracy(bare, set.labels),
    noisyBaseAccuracy: accuracy(noisy, set.labels),
    certifySecondsPerExample: certifySeconds / m,
    certifyForwardsPerExample: options.n0 + options.n,
    predictSecondsPerExample: predictSeconds / m,
    predictForwardsPerExample: predictN,
    perExample: certificates.map((c, i) => ({
      label: c.label,
      radius: c.radius,
      pALower: c.pALower,
      correct: c.label === set.labels[i],
    })),
    warnings: [],
  };
  if (options.adaptive) {
    result.empirical = await empiricalCheck(
      variant,
      set,
      certificates,
      options.adaptive,
      options,
      result.warnings,
    );
  }
  return result;
}

/** SmoothAdv (and L2 PGD on the bare model) at each radius on the first `settings.n` examples. */
async function empiricalCheck(
  variant: CertificationVariant,
  set: EvalSet,
  certificates: readonly Certificate[],
  settings: SmoothAdvSettings,
  options: CertificationOptions,
  warnings: string[],
): Promise<EmpiricalAtRadius[]> {
  const n = Math.min(settings.n, set.x.shape[0]);
  const x = set.x.slice(0, n) as tf.Tensor4D;
  const labels = set.labels.subarray(0, n);
  const range = variant.split.inputRange;
  const results: EmpiricalAtRadius[] = [];
  try {
    const epsilons = settings.epsilons.filter((e) => e > 0);
    for (const [k, epsilon] of epsilons.entries()) {
      options.onProgress?.(`${variant.name}: SmoothAdv at L2 ${epsilon}`, k, epsilons.length);
      const attack = (steps: number, samples: number, seed: number) => {
        const adversarial = smoothAdv(variant.stage, x, labels, { epsilon, steps, samples, range, seed });
        try {
          return predictWithStage(variant, adversarial, seed);
        } finally {
          adversarial.dispose();
        }
      };
      const weak = attack(settings.steps, settings.samples, options.seed + 101 * (k + 1));
      const strong = attack(settings.strongerSteps, settings.strongerSamples, options.seed + 103 * (k + 1));
      const bareResult = await pgdL2({ steps: 50 }).run(
        targetFromModel(variant.split.model),
        x,
        misclassification(labels),
        { epsilon, label: `L2 ${epsilon}` },
      );
      bareResult.adversarial.dispose();
      let violations = 0;
      let bothRight = 0;
      for (let i = 0; i < n; i++) {
        const c = certificates[i];
        const certifiedHere = c.label === labels[i] && c.radius >= epsilon;
        const survives = weak.plurality[i] === labels[i] && strong.plurality[i] === labels[i];
        if (survives) bothRight++;
        if (certifiedHere && !survives) violations++;
      }
      const row: EmpiricalAtRadius = {
        epsilon,
        empiricalAccuracy: accuracy(weak.plurality, labels),
        strongerEmpiricalAccuracy: accuracy(strong.plurality, labels),
        worstEmpiricalAccuracy: bothRight / n,
        predictAccuracy: accuracy(strong.predicted, labels),
        certifiedAccuracy: certifiedAccuracy(certificates.slice(0, n), labels, epsilon),
        violations,
        bareAccuracy: accuracy(bareResult.predicted, labels),
      };
      if (row.strongerEmpiricalAccuracy > row.empiricalAccuracy) {
        warnings.push(
          `L2 ${epsilon}: the stronger SmoothAdv left more correct (${row.strongerEmpiricalAccuracy}) than the ` +
            `weaker (${row.empiricalAccuracy}); report the worse of the two`,
        );
      }
      if (row.worstEmpiricalAccuracy! < row.certifiedAccuracy) {
        warnings.push(
          `L2 ${epsilon}: empirical accuracy below the certified one (${violations} certified examples broken)`,
        );
      }
      results.push(row);
    }
  } finally {
    x.dispose();
  }
  return results;
}
