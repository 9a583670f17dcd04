/**
 * Shards of an evaluation (`deno task eval --shard K/S`): shard K of S evaluates every S-th block of
 * examples from block K (`tally.ts`), e.g. one pod of a Kubernetes Indexed Job each. A shard's file holds
 * the run's identity (everything that fixes the result: model hash, data, examples, attacks, defenses,
 * seed, block size) and its blocks' tallies, and nothing that varies between runs, so a shard run twice
 * writes the same file; its wall-clock times go to a file of their own. Merging checks that every shard
 * comes from the same run and that each block is there exactly once, then makes the report.
 *
 * @module
 */
import type { EvalReport, EvalRun } from "./harness.ts";
import { type BlockTally, type BlockTiming, checkBlocks, reportFromBlocks, type RunLayout } from "./tally.ts";

/** Which share of the blocks a run evaluates: `index` of `count` (0-based). */
export interface Shard {
  index: number;
  count: number;
}

/** What a shard writes (deterministic). */
export interface ShardFile {
  kind: "eval-shard";
  shard: Shard;
  /** Everything that fixes the result; equal in every shard of one run. */
  identity: Record<string, unknown>;
  layout: RunLayout;
  blockSize: number;
  blockCount: number;
  tallies: BlockTally[];
}

/** What a shard writes beside it: its blocks' milliseconds. */
export interface ShardTimingFile {
  kind: "eval-shard-timing";
  shard: Shard;
  timings: BlockTiming[];
}

/** Parses `K/S` (0 <= K < S); throws a RangeError naming the value. */
export function parseShard(value: string): Shard {
  const match = value.match(/^(\d+)\/(\d+)$/);
  const index = match ? Number(match[1]) : NaN;
  const count = match ? Number(match[2]) : NaN;
  if (!(count >= 1 && index >= 0 && index < count)) {
    throw new RangeError(`shard "${value}": expected K/S with 0 <= K < S, e.g. 0/4`);
  }
  return { index, count };
}

/** Whether block `block` belongs to `shard`. */
export function inShard(shard: Shard, block: number): boolean {
  return block % shard.count === shard.index;
}

/** The file name of a shard's tallies (`.timing.json` beside it for its times). */
export function shardFileName(shard: Shard): string {
  return `shard-${shard.index}-of-${shard.count}.json`;
}

/** The two files a shard writes. */
export function shardFiles(
  run: EvalRun,
  shard: Shard,
  identity: Record<string, unknown>,
): { tallies: ShardFile; timing: ShardTimingFile } {
  return {
    tallies: {
      kind: "eval-shard",
      shard,
      identity,
      layout: run.layout,
      blockSize: run.blockSize,
      blockCount: run.blockCount,
      tallies: run.tallies,
    },
    timing: { kind: "eval-shard-timing", shard, timings: run.timings },
  };
}

/**
 * The report of a whole run from its shards' files (`names` name them in errors); `timings` optional.
 * Throws a RangeError when a file is not a shard, the shards come from different runs, or a block is
 * missing or repeated.
 */
export function mergeShards(
  shards: readonly ShardFile[],
  names: readonly string[],
  timings: readonly ShardTimingFile[] = [],
): { report: EvalReport; identity: Record<string, unknown> } {
  if (shards.length === 0) throw new RangeError("no shard files to merge");
  shards.forEach((shard, i) => {
    if (shard?.kind !== "eval-shard") throw new RangeError(`${names[i]}: not an evaluation shard file`);
  });
  const [first] = shards;
  const fixed = (s: ShardFile) =>
    JSON.stringify({
      identity: s.identity,
      layout: s.layout,
      blockSize: s.blockSize,
      blockCount: s.blockCount,
    });
  shards.forEach((shard, i) => {
    if (fixed(shard) !== fixed(first)) {
      throw new RangeError(
        `${names[i]} comes from another run than ${names[0]} (model, data, attacks or settings differ)`,
      );
    }
  });
  const tallies = shards.flatMap((s) => s.tallies);
  checkBlocks(tallies, first.blockCount);
  return {
    report: reportFromBlocks(first.layout, tallies, timings.flatMap((t) => t.timings)),
    identity: first.identity,
  };
}
