/**
 * The additive form of an evaluation: what one block of examples contributes (counts and sums, never
 * ratios), and the report made from any set of blocks. The harness evaluates a set block by block, each
 * block depending only on its own examples and its global index, so the blocks of a run split into shards
 * (`--shard K/S`: every S-th block from block K) on different machines add up to exactly the report of
 * the whole run: the sums are taken in block order either way. Wall-clock times are kept apart
 * ({@link BlockTiming}) so that a shard run twice gives identical tallies.
 *
 * @module
 */
import type { AttackRow, BenignSummary, DefenseInfo, DefenseScore, EvalReport } from "./harness.ts";

/** A sum over the finite values seen, and their count (a mean that merges exactly). */
export interface Mean {
  sum: number;
  count: number;
}

/** One defense against one attack on one block's adversarial examples. */
export interface DefenseTally {
  /** Adversarial examples classified correctly after defense. */
  honest: number;
  /** The random-noise control's correct examples (averaged over its draws, so possibly fractional). */
  noise: number;
  /** Its own random-choice control's correct examples, when it has one. */
  control?: number;
  protocols: Record<string, number>;
  l2: Mean;
  linf: Mean;
  psnr: Mean;
  tknc: Mean;
}

/** One attack at one budget on one block. */
export interface RowTally {
  attacked: number;
  adversarial: number;
  perturbation: Record<string, Mean>;
  defenses: Record<string, DefenseTally>;
}

/** What one block of examples contributes. */
export interface BlockTally {
  /** Index of the block: examples [block x blockSize, ...). */
  block: number;
  examples: number;
  bareCorrect: number;
  /** Per defense: benign examples right after defense, and labels the defense changed. */
  benign: Record<string, { correct: number; flips: number }>;
  /** One per attack spec, in the run's order. */
  rows: RowTally[];
}

/** Milliseconds one block took, by the same structure (not deterministic, so kept apart). */
export interface BlockTiming {
  block: number;
  bare: number;
  benign: Record<string, number>;
  rows: { attack: number; bare: number; defenses: Record<string, number> }[];
}

/** What every block of a run shares: the defenses and the attack rows' descriptions. */
export interface RunLayout {
  defenses: DefenseInfo[];
  rows: Omit<AttackRow, "attacked" | "adversarial" | "asr" | "perturbation" | "msPerExample" | "defenses">[];
}

/** A {@link Mean} over the finite values of `values`. */
export function meanOf(values: ArrayLike<number>): Mean {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    if (Number.isFinite(values[i])) {
      sum += values[i];
      count++;
    }
  }
  return { sum, count };
}

function addMean(a: Mean, b: Mean): Mean {
  return { sum: a.sum + b.sum, count: a.count + b.count };
}

function valueOf(mean: Mean): number {
  return mean.count === 0 ? NaN : mean.sum / mean.count;
}

function addRecords<T>(
  a: Record<string, T>,
  b: Record<string, T>,
  add: (x: T, y: T) => T,
): Record<string, T> {
  const out: Record<string, T> = { ...a };
  for (const [key, value] of Object.entries(b)) out[key] = key in out ? add(out[key], value) : value;
  return out;
}

function addDefense(a: DefenseTally, b: DefenseTally): DefenseTally {
  return {
    honest: a.honest + b.honest,
    noise: a.noise + b.noise,
    control: a.control === undefined && b.control === undefined
      ? undefined
      : (a.control ?? 0) + (b.control ?? 0),
    protocols: addRecords(a.protocols, b.protocols, (x, y) => x + y),
    l2: addMean(a.l2, b.l2),
    linf: addMean(a.linf, b.linf),
    psnr: addMean(a.psnr, b.psnr),
    tknc: addMean(a.tknc, b.tknc),
  };
}

function addRow(a: RowTally, b: RowTally): RowTally {
  return {
    attacked: a.attacked + b.attacked,
    adversarial: a.adversarial + b.adversarial,
    perturbation: addRecords(a.perturbation, b.perturbation, addMean),
    defenses: addRecords(a.defenses, b.defenses, addDefense),
  };
}

/**
 * Orders blocks by index and checks that none repeats; with `expected`, also that exactly blocks
 * 0..expected-1 are present. Throws a RangeError naming the repeated or missing blocks.
 */
export function checkBlocks(blocks: readonly { block: number }[], expected?: number): void {
  const seen = new Set<number>();
  for (const { block } of blocks) {
    if (seen.has(block)) throw new RangeError(`block ${block} appears twice (a shard merged twice?)`);
    seen.add(block);
  }
  if (expected === undefined) return;
  const missing = Array.from({ length: expected }, (_, i) => i).filter((i) => !seen.has(i));
  const extra = [...seen].filter((i) => i < 0 || i >= expected);
  if (missing.length > 0 || extra.length > 0) {
    throw new RangeError(
      `blocks ${missing.length > 0 ? `missing: ${missing.join(", ")}` : ""}${
        extra.length > 0 ? ` outside 0..${expected - 1}: ${extra.join(", ")}` : ""
      } (a shard not run or from another run?)`,
    );
  }
}

/**
 * The report of the given blocks: sums in block order, then ratios and means. `timings` (any order,
 * optional) give the ms columns (NaN without them).
 */
export function reportFromBlocks(
  layout: RunLayout,
  tallies: readonly BlockTally[],
  timings: readonly BlockTiming[] = [],
): EvalReport {
  checkBlocks(tallies);
  checkBlocks(timings);
  const ordered = [...tallies].sort((a, b) => a.block - b.block);
  const names = layout.defenses.map((d) => d.name);
  let examples = 0;
  let bareCorrect = 0;
  let benign: Record<string, { correct: number; flips: number }> = {};
  let rows: RowTally[] = layout.rows.map(() => ({
    attacked: 0,
    adversarial: 0,
    perturbation: {},
    defenses: {},
  }));
  for (const tally of ordered) {
    if (tally.rows.length !== layout.rows.length) {
      throw new RangeError(
        `block ${tally.block} has ${tally.rows.length} attack rows, the run ${layout.rows.length}`,
      );
    }
    examples += tally.examples;
    bareCorrect += tally.bareCorrect;
    benign = addRecords(
      benign,
      tally.benign,
      (a, b) => ({ correct: a.correct + b.correct, flips: a.flips + b.flips }),
    );
    rows = rows.map((row, r) => addRow(row, tally.rows[r]));
  }
  const ms = sumTimings(timings, layout.rows.length);
  const perExample = (total: number | undefined, count: number) =>
    total === undefined || count === 0 ? NaN : total / count;
  const summary: BenignSummary = {
    examples,
    accuracy: examples === 0 ? NaN : bareCorrect / examples,
    msPerExampleBare: perExample(ms.bare, examples),
    defenses: Object.fromEntries(names.map((name) => {
      const b = benign[name] ?? { correct: 0, flips: 0 };
      return [name, {
        accuracy: examples === 0 ? NaN : b.correct / examples,
        labelFlips: examples === 0 ? NaN : b.flips / examples,
        msPerExample: perExample(ms.benign[name], examples),
      }];
    })),
  };
  const reportRows: AttackRow[] = layout.rows.map((descriptor, r) => {
    const row = rows[r];
    const m = row.adversarial;
    const defenses: Record<string, DefenseScore> = {};
    if (m > 0) {
      for (const name of names) {
        const d = row.defenses[name];
        if (d === undefined) continue;
        defenses[name] = {
          dsr: d.honest / m,
          randomNoise: d.noise / m,
          ownControl: d.control === undefined ? undefined : d.control / m,
          protocols: Object.fromEntries(Object.entries(d.protocols).map(([p, v]) => [p, v / m])),
          change: { l2: valueOf(d.l2), linf: valueOf(d.linf) },
          psnr: valueOf(d.psnr),
          tknc: valueOf(d.tknc),
          msPerExample: perExample(ms.rows[r].defenses[name], m),
        };
      }
    }
    return {
      ...descriptor,
      attacked: row.attacked,
      adversarial: m,
      asr: row.attacked === 0 ? NaN : m / row.attacked,
      perturbation: Object.fromEntries(Object.entries(row.perturbation).map(([k, v]) => [k, valueOf(v)])),
      msPerExample: {
        attack: perExample(ms.rows[r].attack, row.attacked),
        bare: perExample(ms.rows[r].bare, row.attacked),
      },
      defenses,
    };
  });
  return { defenses: layout.defenses, benign: summary, rows: reportRows };
}

function sumTimings(
  timings: readonly BlockTiming[],
  rowCount: number,
): {
  bare?: number;
  benign: Record<string, number>;
  rows: { attack?: number; bare?: number; defenses: Record<string, number> }[];
} {
  const total = {
    bare: undefined as number | undefined,
    benign: {} as Record<string, number>,
    rows: Array.from({ length: rowCount }, () => ({
      attack: undefined as number | undefined,
      bare: undefined as number | undefined,
      defenses: {} as Record<string, number>,
    })),
  };
  const plus = (a: number | undefined, b: number) => (a ?? 0) + b;
  for (const timing of [...timings].sort((a, b) => a.block - b.block)) {
    total.bare = plus(total.bare, timing.bare);
    total.benign = addRecords(total.benign, timing.benign, (a, b) => a + b);
    timing.rows.forEach((row, r) => {
      const into = total.rows[r];
      into.attack = plus(into.attack, row.attack);
      into.bare = plus(into.bare, row.bare);
      into.defenses = addRecords(into.defenses, row.defenses, (a, b) => a + b);
    });
  }
  return total;
}
