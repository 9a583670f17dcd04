/**
 * Command-line parsing shared by the tasks: typed flags with clear errors naming the flag.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parseStageSettings } from "../stages/registry.ts";
import type { Preprocessing } from "../engine/preprocess.ts";

/** A command-line mistake; the task prints the message and exits with status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

type FlagSpec = Record<string, { type: "string" | "boolean"; default?: string | boolean; short?: string }>;

/** Parses `Deno.args` against `spec`; unknown flags are a {@link UsageError}. */
export function parseFlags<S extends FlagSpec>(
  spec: S,
  args: string[] = Deno.args,
): { [K in keyof S]: S[K]["type"] extends "boolean" ? boolean : string } & { positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options: spec, allowPositionals: true, strict: true });
    return { ...values, positionals } as never;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Parses a number flag, naming the flag when it is not a finite number within [min, max]. */
export function numberFlag(name: string, value: string, min = -Infinity, max = Infinity): number {
  const parsed = Number(value);
  if (value.trim() === "" || !Number.isFinite(parsed) || parsed < min || parsed > max) {
    throw new UsageError(`--${name}: expected a number in [${min}, ${max}], got "${value}"`);
  }
  return parsed;
}

/** Parses a flag that must be one of `choices`. */
export function choiceFlag<T extends string>(name: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`--${name}: expected one of ${choices.join(", ")}, got "${value}"`);
  }
  return value as T;
}

/** Parses a comma-separated list flag; an empty list is a {@link UsageError} naming the flag. */
export function listFlag(name: string, value: string): string[] {
  const items = value.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (items.length === 0) throw new UsageError(`--${name}: expected a comma-separated list, got "${value}"`);
  return items;
}

/**
 * Parses `--settings stage.setting=value,...` into settings per stage name (numbers where they parse); the
 * same form serves other flags (`--attack-params attack.param=value`).
 */
export function settingsFlag(
  value: string,
  flag = "settings",
  what = "stage",
): Record<string, Record<string, number | string>> {
  listFlag(flag, value);
  try {
    return parseStageSettings(value);
  } catch (error) {
    throw new UsageError(`--${flag}: ${(error as Error).message.replace("stage.", `${what}.`)}`);
  }
}

/**
 * The usage text of a task: its module's doc comment (the first `/** ... *\/` block of the file at
 * `moduleUrl`), without the comment markers and the `@module` tag. The doc comment is the one place a task's
 * flags are written down.
 */
export async function moduleUsage(moduleUrl: string): Promise<string> {
  const source = await Deno.readTextFile(new URL(moduleUrl));
  const match = source.match(/\/\*\*([\s\S]*?)\*\//);
  if (match === null) return "";
  return match[1].split("\n").map((line) => line.replace(/^\s*\* ?/, "")).filter((line) =>
    line.trim() !== "@module"
  ).join("\n").trim();
}

/**
 * Runs a task's main function: `--help` / `-h` prints the task's usage (its module doc, see
 * {@link moduleUsage}) and exits 0; usage errors and other failures print one clear line and set the exit
 * code (2 and 1).
 */
export async function runMain(main: () => Promise<void>, moduleUrl: string): Promise<void> {
  if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
    console.log(await moduleUsage(moduleUrl));
    return;
  }
  try {
    await main();
  } catch (error) {
    const usage = error instanceof UsageError;
    console.error(`${usage ? "usage error" : "error"}: ${(error as Error).message}`);
    Deno.exit(usage ? 2 : 1);
  }
}

/** The flags that say what a user's model expects of its input (see `engine/preprocess.ts`). */
export const PREPROCESSING_FLAGS = {
  "input-range": { type: "string" },
  mean: { type: "string" },
  std: { type: "string" },
} as const;

/**
 * Reads {@link PREPROCESSING_FLAGS}: `--input-range 0,255`, `--mean 0.485,0.456,0.406`, `--std ...`;
 * undefined when none is given.
 */
export function preprocessingFromFlags(
  flags: { "input-range"?: string; mean?: string; std?: string },
): Preprocessing | undefined {
  const numbers = (name: string, value: string | undefined) =>
    value === undefined ? undefined : listFlag(name, value).map((v) => numberFlag(name, v));
  const range = numbers("input-range", flags["input-range"]);
  if (range !== undefined && !(range.length === 2 && range[0] < range[1])) {
    throw new UsageError(`--input-range: expected LO,HI with LO < HI, got "${flags["input-range"]}"`);
  }
  const p: Preprocessing = {
    ...(range ? { range: [range[0], range[1]] as [number, number] } : {}),
    ...(flags.mean !== undefined ? { mean: numbers("mean", flags.mean) } : {}),
    ...(flags.std !== undefined ? { std: numbers("std", flags.std) } : {}),
  };
  return Object.keys(p).length === 0 ? undefined : p;
}
