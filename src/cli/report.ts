/**
 * `deno task report`: evaluation JSON (`deno task eval`'s eval.json, `deno task eval --certify`'s
 * certify.json) to one self-contained HTML page, its Markdown and the charts as SVG files.
 *
 *   deno task report --in a.json[,b.json,DIR] [--out out/report] [--title T]
 *
 * `--in` takes eval.json / certify.json files, or folders: every eval.json and certify.json inside, at any
 * depth. `--out` receives report.html, report.md and the charts' *.svg (default out/report); `--title` is
 * the page's title (default "Evaluation report").
 *
 * @module
 */
import { join, relative } from "node:path";
import { buildReport, type ReportSource } from "../report/build.ts";
import { listFlag, parseFlags, runMain, UsageError } from "./args.ts";

const INPUT_NAME = /^(eval|certify)\.json$/;

/** The JSON files under `dir` named eval.json or certify.json, sorted, at any depth. */
async function inputsUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) found.push(...await inputsUnder(path));
    else if (entry.isFile && INPUT_NAME.test(entry.name)) found.push(path);
  }
  return found.sort();
}

/** The paths given to `--in`, folders expanded; a missing path or an empty folder is a usage error naming it. */
async function resolveInputs(paths: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(path);
    } catch {
      throw new UsageError(`--in: ${path}: no such file or folder`);
    }
    if (!info.isDirectory) files.push(path);
    else {
      const inside = await inputsUnder(path);
      if (inside.length === 0) throw new UsageError(`--in: ${path}: no eval.json or certify.json inside`);
      files.push(...inside);
    }
  }
  return files;
}

/** Reads and parses one input, naming the file when it is not JSON. */
async function readInput(path: string): Promise<ReportSource> {
  const text = await Deno.readTextFile(path);
  try {
    return { path, json: JSON.parse(text) };
  } catch (error) {
    throw new SyntaxError(`${path}: not JSON: ${(error as Error).message}`);
  }
}

async function main(): Promise<void> {
  const flags = parseFlags({
    in: { type: "string" },
    out: { type: "string", default: "out/report" },
    title: { type: "string", default: "Evaluation report" },
  });
  if (flags.positionals.length > 0) {
    throw new UsageError(`unexpected argument "${flags.positionals[0]}" (inputs go to --in)`);
  }
  if (flags.in === undefined) throw new UsageError("--in: give eval.json / certify.json files or folders");
  const files = await resolveInputs(listFlag("in", flags.in));
  const sources = await Promise.all(files.map(readInput));
  const { html, markdown, charts } = buildReport(sources, { title: flags.title });
  await Deno.mkdir(flags.out, { recursive: true });
  const written = [join(flags.out, "report.html"), join(flags.out, "report.md")];
  await Deno.writeTextFile(written[0], html);
  await Deno.writeTextFile(written[1], markdown);
  for (const chart of charts) {
    const path = join(flags.out, chart.file);
    await Deno.writeTextFile(path, chart.svg);
    written.push(path);
  }
  console.log(`read: ${files.map((f) => relative(".", f)).join(", ")}`);
  console.log(`written: ${written.join(", ")}`);
}

if (import.meta.main) await runMain(main, import.meta.url);
