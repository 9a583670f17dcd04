/**
 * Cohen, Rosenfeld and Kolter (2019)'s PREDICT and CERTIFY, decided from Monte Carlo class counts of the
 * base classifier under Gaussian noise: the smoothed classifier g(x) = argmax_c P(f(x + e) = c), e ~
 * N(0, sigma^2 I), abstains unless the counts make its answer significant, and where it answers with
 * probability at least pA, g is constant within L2 radius sigma * Phi^-1(pA). Free of I/O and of tensors.
 *
 * @module
 */
import { betaQuantile, regularizedBeta } from "../stats/binomial.ts";
import { normalQuantile } from "../stats/normal.ts";

/** The label of an abstention. */
export const ABSTAIN = -1;

/** What a certificate is asked for: selection and estimation samples, the failure probability, the seed. */
export interface CertifyRequest {
  n0: number;
  n: number;
  alpha: number;
  seed: number;
}

/** Limits on the samples one request may ask for (a request's cost grows with them). */
export const SMOOTHING_LIMITS = { maxSamples: 100_000, maxN0: 10_000 } as const;

/** Checks a certification request against the stage's limits; the message names the field. */
export function checkCertifyRequest(request: CertifyRequest): void {
  const { n0, n, alpha, seed } = request;
  if (!Number.isInteger(n0) || n0 < 1 || n0 > SMOOTHING_LIMITS.maxN0) {
    throw new RangeError(`n0 = ${n0} must be an integer in [1, ${SMOOTHING_LIMITS.maxN0}]`);
  }
  if (!Number.isInteger(n) || n < 1 || n > SMOOTHING_LIMITS.maxSamples) {
    throw new RangeError(`n = ${n} must be an integer in [1, ${SMOOTHING_LIMITS.maxSamples}]`);
  }
  if (!(alpha > 0 && alpha < 0.5)) throw new RangeError(`alpha = ${alpha} must be in (0, 0.5)`);
  if (!Number.isInteger(seed) || seed < 0) {
    throw new RangeError(`seed = ${seed} must be a non-negative integer`);
  }
}

/** What CERTIFY says of one input. */
export interface Certificate {
  /** The smoothed class, or {@link ABSTAIN}. */
  label: number;
  /** Certified L2 radius in the model's input space (0 when abstaining). */
  radius: number;
  /** One-sided (1 - alpha) Clopper-Pearson lower bound on the top class's probability under noise. */
  pALower: number;
  /** Estimation samples (the selection samples `n0` not counted). */
  n: number;
}

/** Index of the largest count (the first on ties), and of the second largest. */
export function topTwo(counts: ArrayLike<number>): [number, number] {
  let first = 0;
  for (let c = 1; c < counts.length; c++) if (counts[c] > counts[first]) first = c;
  let second = first === 0 ? 1 : 0;
  for (let c = 0; c < counts.length; c++) {
    if (c !== first && counts[c] > counts[second]) second = c;
  }
  return [first, second];
}

/**
 * One-sided (1 - alpha) Clopper-Pearson lower confidence bound on a binomial proportion from `k` of `n`
 * (Cohen et al.'s LowerConfBound: the lower end of the two-sided 1 - 2 alpha interval).
 */
export function lowerConfidenceBound(k: number, n: number, alpha: number): number {
  checkCounts(k, n);
  checkAlpha(alpha);
  return k === 0 ? 0 : betaQuantile(alpha, k, n - k + 1);
}

/** Two-sided exact binomial test of `k` successes in `n` trials against p = 1/2 (scipy's binom_test). */
export function binomialTestHalf(k: number, n: number): number {
  checkCounts(k, n);
  // P(X <= j) for X ~ Bin(n, 1/2) is I_{1/2}(n - j, j + 1); the test doubles the smaller tail.
  const j = Math.min(k, n - k);
  const tail = j === n ? 1 : regularizedBeta(0.5, n - j, j + 1);
  return Math.min(1, 2 * tail);
}

/** The certified L2 radius for a lower bound `pALower` (> 1/2) at noise `sigma`. */
export function certifiedRadius(pALower: number, sigma: number): number {
  return pALower > 0.5 ? sigma * normalQuantile(pALower) : 0;
}

/**
 * The largest radius CERTIFY can give with `n` samples at `alpha` (every sample voting for one class):
 * sigma * Phi^-1(alpha^(1/n)), e.g. 2.46 sigma for n = 1,000 and alpha = 0.001.
 */
export function maxCertifiableRadius(sigma: number, n: number, alpha: number): number {
  checkAlpha(alpha);
  return certifiedRadius(alpha ** (1 / n), sigma);
}

/**
 * PREDICT from the counts of `n` noisy samples: the top class when a two-sided binomial test of its count
 * against the runner-up's rejects equality at `alpha`, else {@link ABSTAIN}. Its answer differs from g(x)
 * with probability at most alpha.
 */
export function predictFromCounts(counts: ArrayLike<number>, alpha: number): number {
  checkAlpha(alpha);
  const [first, second] = topTwo(counts);
  const nA = counts[first];
  const nB = counts[second];
  return binomialTestHalf(nA, nA + nB) <= alpha ? first : ABSTAIN;
}

/**
 * CERTIFY from the selection counts (`n0` samples, which pick the class) and independent estimation counts
 * (`n` samples, which bound its probability): abstains when the lower bound is not above 1/2. With
 * probability at least 1 - alpha over the samples, a non-abstaining answer is g(x) and g is constant
 * within the radius.
 */
export function certifyFromCounts(
  selection: ArrayLike<number>,
  estimation: ArrayLike<number>,
  sigma: number,
  alpha: number,
): Certificate {
  if (!(sigma > 0)) throw new RangeError(`sigma = ${sigma} must be positive`);
  const [guess] = topTwo(selection);
  let n = 0;
  for (let c = 0; c < estimation.length; c++) n += estimation[c];
  const pALower = lowerConfidenceBound(estimation[guess], n, alpha);
  if (pALower <= 0.5) return { label: ABSTAIN, radius: 0, pALower, n };
  return { label: guess, radius: certifiedRadius(pALower, sigma), pALower, n };
}

function checkCounts(k: number, n: number): void {
  if (!Number.isInteger(k) || !Number.isInteger(n) || n <= 0 || k < 0 || k > n) {
    throw new RangeError(`need integer counts 0 <= k <= n, n > 0; got k = ${k}, n = ${n}`);
  }
}

function checkAlpha(alpha: number): void {
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha = ${alpha} must be in (0, 1)`);
}
