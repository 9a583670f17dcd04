/**
 * One-pixel attack (Su, Vargas & Sakurai 2019): differential evolution over candidates
 * `(row, column, value per channel)` for each of `pixels` pixels. DE/rand/1 without crossover (the paper's
 * variant): child = parent_r1 + F * (parent_r2 - parent_r3), with positions rounded and clamped to the image
 * and values clamped to the input range; a child replaces its parent when its fitness is lower. Fitness is
 * the probability of the true class (targeted: 1 - probability of the target; logits go through softmax).
 * An example stops at its first adversarial candidate.
 *
 * Score-based black-box. Every candidate image scored is one query of its example: at most
 * `populationSize * (maxIter + 1) + 1` per example, and `budget.maxQueries` stops the generations earlier.
 * The budget's L0 epsilon must allow `pixels` pixels.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { queryCap } from "./auna.ts";
import { type AttackContext, fixedEpsilonAttack, type SearchOutcome } from "./base.ts";
import { criterionClasses } from "./criteria.ts";
import { queryScores } from "./query.ts";
import { Rng } from "./rng.ts";
import type { Attack } from "./types.ts";

/** Parameters of {@link onePixel}. Defaults follow Su et al. */
export interface OnePixelParams {
  /** Pixels changed (default 1). */
  pixels?: number;
  /** Candidates per example (default 400). */
  populationSize?: number;
  /** Generations (default 100). */
  maxIter?: number;
  /** Differential weight F (default 0.5). */
  mutation?: number;
  seed?: number;
}

/** Largest number of candidate images scored in one query batch (bounds memory). */
const QUERY_CHUNK = 4096;

async function search(context: AttackContext, params: Required<OnePixelParams>): Promise<SearchOutcome> {
  const { target, x, criterion, epsilon, queries } = context;
  const [n, h, w, c] = x.shape;
  const d = h * w * c;
  if (epsilon < params.pixels) {
    throw new RangeError(
      `attack "one-pixel": budget.epsilon = ${epsilon} (L0) allows fewer than pixels = ${params.pixels}`,
    );
  }
  const [lo, hi] = target.inputRange;
  const rng = new Rng(params.seed);
  const source = (await x.data()) as Float32Array;
  const classes = criterionClasses(criterion);
  const targeted = criterion.kind === "targeted";
  const genes = params.pixels * (2 + c);
  const size = params.populationSize;
  const cap = queryCap(context);
  const clampGene = (g: number, value: number) => {
    const k = g % (2 + c);
    if (k === 0) return Math.min(h - 1, Math.max(0, value));
    if (k === 1) return Math.min(w - 1, Math.max(0, value));
    return Math.min(hi, Math.max(lo, value));
  };
  const render = (i: number, candidate: Float32Array, out: Float32Array, offset: number) => {
    out.set(source.subarray(i * d, (i + 1) * d), offset);
    for (let p = 0; p < params.pixels; p++) {
      const base = p * (2 + c);
      const pixel = Math.round(candidate[base]) * w + Math.round(candidate[base + 1]);
      for (let k = 0; k < c; k++) out[offset + pixel * c + k] = candidate[base + 2 + k];
    }
  };
  /** Scores `candidates` (per example in `owners`); returns fitness and adversarial flags. */
  const evaluate = async (owners: Int32Array, candidates: Float32Array) => {
    const fitness = new Float32Array(owners.length);
    const adversarial = new Uint8Array(owners.length);
    for (let start = 0; start < owners.length; start += QUERY_CHUNK) {
      const end = Math.min(owners.length, start + QUERY_CHUNK);
      const images = new Float32Array((end - start) * d);
      for (let r = start; r < end; r++) {
        render(owners[r], candidates.subarray(r * genes, (r + 1) * genes), images, (r - start) * d);
      }
      const batch = tf.tensor4d(images, [end - start, h, w, c]);
      const owned = owners.subarray(start, end);
      const { scores, numClasses } = await queryScores(target, batch, queries, owned);
      batch.dispose();
      for (let r = start; r < end; r++) {
        const row = scores.subarray((r - start) * numClasses, (r - start + 1) * numClasses);
        let top = 0, max = -Infinity, sum = 0;
        for (let k = 0; k < numClasses; k++) if (row[k] > max) [max, top] = [row[k], k];
        if (target.scoreKind === "logits") {
          for (let k = 0; k < numClasses; k++) sum += Math.exp(row[k] - max);
        }
        const probability = (k: number) =>
          target.scoreKind === "probs" ? row[k] : Math.exp(row[k] - max) / sum;
        const aim = classes[owners[r]];
        fitness[r] = targeted ? 1 - probability(aim) : probability(aim);
        adversarial[r] = (top === aim) === targeted ? 1 : 0;
      }
    }
    return { fitness, adversarial };
  };
  const population = new Float32Array(n * size * genes);
  for (let i = 0; i < n * size; i++) {
    for (let g = 0; g < genes; g++) {
      const k = g % (2 + c);
      population[i * genes + g] = k === 0
        ? rng.uniform(0, h)
        : k === 1
        ? rng.uniform(0, w)
        : rng.uniform(lo, hi);
      population[i * genes + g] = clampGene(g, population[i * genes + g]);
    }
  }
  const fitness = new Float32Array(n * size).fill(Infinity);
  const winner = new Int32Array(n).fill(-1);
  const score = async (active: Int32Array, candidates: Float32Array) => {
    const owners = new Int32Array(active.length * size);
    active.forEach((i, a) => owners.fill(i, a * size, (a + 1) * size));
    return await evaluate(owners, candidates);
  };
  const activeNow = () =>
    Int32Array.from(winner.keys()).filter((i) => winner[i] < 0 && queries[i] + size + 1 <= cap);
  let active = activeNow();
  if (active.length > 0) {
    const initial = new Float32Array(active.length * size * genes);
    active.forEach((i, a) =>
      initial.set(population.subarray(i * size * genes, (i + 1) * size * genes), a * size * genes)
    );
    const scored = await score(active, initial);
    active.forEach((i, a) => {
      for (let s = 0; s < size; s++) {
        fitness[i * size + s] = scored.fitness[a * size + s];
        if (scored.adversarial[a * size + s] && winner[i] < 0) winner[i] = s;
      }
    });
  }
  for (let generation = 0; generation < params.maxIter; generation++) {
    active = activeNow();
    if (active.length === 0) break;
    const children = new Float32Array(active.length * size * genes);
    active.forEach((i, a) => {
      for (let s = 0; s < size; s++) {
        let r1 = rng.int(size), r2 = rng.int(size), r3 = rng.int(size);
        while (r1 === s) r1 = rng.int(size);
        while (r2 === s || r2 === r1) r2 = rng.int(size);
        while (r3 === s || r3 === r1 || r3 === r2) r3 = rng.int(size);
        const at = (r: number, g: number) => population[(i * size + r) * genes + g];
        for (let g = 0; g < genes; g++) {
          children[(a * size + s) * genes + g] = clampGene(
            g,
            at(r1, g) + params.mutation * (at(r2, g) - at(r3, g)),
          );
        }
      }
    });
    const scored = await score(active, children);
    active.forEach((i, a) => {
      for (let s = 0; s < size; s++) {
        const child = a * size + s;
        if (scored.adversarial[child] && winner[i] < 0) winner[i] = s;
        if (scored.fitness[child] < fitness[i * size + s] || (scored.adversarial[child] && winner[i] === s)) {
          fitness[i * size + s] = scored.fitness[child];
          population.set(children.subarray(child * genes, (child + 1) * genes), (i * size + s) * genes);
        }
      }
    });
  }
  const adversarial = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    let chosen = winner[i];
    if (chosen < 0) {
      chosen = 0;
      for (let s = 1; s < size; s++) if (fitness[i * size + s] < fitness[i * size + chosen]) chosen = s;
    }
    render(
      i,
      population.subarray((i * size + chosen) * genes, (i * size + chosen + 1) * genes),
      adversarial,
      i * d,
    );
  }
  return { adversarial: tf.tensor4d(adversarial, x.shape) };
}

/** One-pixel attack (L0; see the module doc). */
export function onePixel(params: OnePixelParams = {}): Attack {
  const resolved: Required<OnePixelParams> = {
    pixels: params.pixels ?? 1,
    populationSize: params.populationSize ?? 400,
    maxIter: params.maxIter ?? 100,
    mutation: params.mutation ?? 0.5,
    seed: params.seed ?? 0,
  };
  const bad = (field: string, value: unknown) =>
    new RangeError(`attack "one-pixel": ${field} = ${value} is invalid`);
  if (!Number.isInteger(resolved.pixels) || resolved.pixels < 1) throw bad("pixels", params.pixels);
  if (!Number.isInteger(resolved.populationSize) || resolved.populationSize < 4) {
    throw bad("populationSize", params.populationSize);
  }
  if (!Number.isInteger(resolved.maxIter) || resolved.maxIter < 0) throw bad("maxIter", params.maxIter);
  if (!(resolved.mutation > 0 && resolved.mutation <= 2)) throw bad("mutation", params.mutation);
  return fixedEpsilonAttack(
    { name: "one-pixel", norm: "l0", kind: "black-box", params: resolved },
    (context) => search(context, resolved),
  );
}
