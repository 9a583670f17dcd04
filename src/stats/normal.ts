/**
 * The standard normal distribution: its CDF Phi and quantile Phi^-1, to near double precision. Randomized
 * smoothing's certified radius is `sigma * Phi^-1(pA)`, so the quantile must be exact where pA is close
 * to 1 (Phi^-1(1 - 1e-10) = 6.36). Free of I/O.
 *
 * @module
 */
import { lnGamma } from "./binomial.ts";

/** The regularized lower incomplete gamma function P(a, x) (series below a + 1, continued fraction above). */
export function regularizedGammaP(a: number, x: number): number {
  if (x <= 0) return 0;
  if (x >= a + 1) return 1 - regularizedGammaQ(a, x);
  let term = 1 / a;
  let sum = term;
  for (let n = 1; n < 500; n++) {
    term *= x / (a + n);
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * 1e-16) break;
  }
  return Math.exp(-x + a * Math.log(x) - lnGamma(a)) * sum;
}

/**
 * The regularized upper incomplete gamma function Q(a, x) = 1 - P(a, x) for x >= a + 1, by its continued
 * fraction (modified Lentz), computed directly so that a tail near 0 keeps its precision.
 */
function regularizedGammaQ(a: number, x: number): number {
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 500; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x + a * Math.log(x) - lnGamma(a)) * h;
}

/** Phi(x), the standard normal CDF. */
export function normalCdf(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  // Phi(x) = (1 + sign(x) P(1/2, x^2 / 2)) / 2; the lower tail beyond sqrt(3) is Q(1/2, x^2 / 2) / 2, direct.
  if (x >= 0) return 0.5 + regularizedGammaP(0.5, (x * x) / 2) / 2;
  return x * x / 2 < 1.5 ? 0.5 - regularizedGammaP(0.5, (x * x) / 2) / 2 : upperTail(-x);
}

/** 1 - Phi(z) for z > sqrt(3), without the cancellation of 1 - Phi. */
function upperTail(z: number): number {
  return regularizedGammaQ(0.5, (z * z) / 2) / 2;
}

/** Phi^-1(p), the standard normal quantile, for p in (0, 1); -Infinity at 0 and Infinity at 1. */
export function normalQuantile(p: number): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`normalQuantile: p = ${p} must be in [0, 1]`);
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  // Acklam's rational approximation (relative error 1.15e-9), then two Halley steps on the exact CDF.
  const a = [
    -39.69683028665376,
    220.9460984245205,
    -275.9285104469687,
    138.357751867269,
    -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406,
    161.5858368580409,
    -155.6989798598866,
    66.80131188771972,
    -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293,
    -0.3223964580411365,
    -2.400758277161838,
    -2.549732539343734,
    4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  let x: number;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - low) {
    const q = p - 0.5;
    const r = q * q;
    x = ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
      (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  for (let step = 0; step < 2; step++) {
    // Work on the smaller tail so that p near 1 keeps its precision.
    const error = x > 0 ? (1 - p) - upperTailOrComplement(x) : normalCdf(x) - p;
    const u = error * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
    x = x - u / (1 + (x * u) / 2);
  }
  return x;
}

function upperTailOrComplement(x: number): number {
  return x * x / 2 < 1.5 ? 1 - normalCdf(x) : upperTail(x);
}
