/**
 * `deno task report:screenshot`: renders an HTML file (the report) in headless Chromium, saves a PNG and
 * reports the page's console messages (an uncaught error, a failed script), which a page without scripts
 * must not have. Chromium comes from `$CHROMIUM` or `PATH` (Debian: `apt-get install chromium`).
 *
 *   deno task report:screenshot out/report/report.html [--out out/report/report.png] [--width 1280]
 *     [--height 4000]
 *
 * @module
 */
import { resolve } from "node:path";
import { numberFlag, parseFlags, runMain, UsageError } from "../src/cli/args.ts";

const CANDIDATES = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** The Chromium executable: `$CHROMIUM` when set (and a file), else the first usual name on `PATH`. */
export function findChromium(): string | undefined {
  const configured = Deno.env.get("CHROMIUM");
  if (configured) return isFile(configured) ? configured : undefined;
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter((d) => d.length > 0);
  return dirs.flatMap((dir) => CANDIDATES.map((name) => `${dir}/${name}`)).find(isFile);
}

/** What one headless run gave: its standard output (the DOM with `dumpDom`) and the page's console lines. */
export interface ChromiumRun {
  stdout: string;
  /** Console messages of the page (Chromium logs them to stderr as `...:CONSOLE:...`), and uncaught errors. */
  console: string[];
}

/** What to do with the page. */
export interface ChromiumOptions {
  /** Save a screenshot there (PNG). */
  screenshot?: string;
  /** Print the rendered DOM on stdout. */
  dumpDom?: boolean;
  width?: number;
  height?: number;
}

/** Opens `htmlPath` in headless Chromium as `options` asks; throws naming the fix when Chromium is absent. */
export async function runChromium(htmlPath: string, options: ChromiumOptions): Promise<ChromiumRun> {
  const chromium = findChromium();
  if (!chromium) {
    throw new Error(
      "Chromium not found: install it (Debian: apt-get install chromium) or set $CHROMIUM to its executable",
    );
  }
  const profile = await Deno.makeTempDir({ prefix: "report-chromium-" });
  try {
    const args = [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--hide-scrollbars",
      "--no-first-run",
      `--user-data-dir=${profile}`,
      "--enable-logging=stderr",
      "--v=0",
      `--window-size=${options.width ?? 1280},${options.height ?? 4000}`,
      ...(options.screenshot ? [`--screenshot=${resolve(options.screenshot)}`] : []),
      ...(options.dumpDom ? ["--dump-dom"] : []),
      `file://${resolve(htmlPath)}`,
    ];
    const output = await new Deno.Command(chromium, { args, stdout: "piped", stderr: "piped" }).output();
    const decoder = new TextDecoder();
    const stderr = decoder.decode(output.stderr);
    if (!output.success) throw new Error(`${chromium} exited with ${output.code}: ${stderr.slice(-2000)}`);
    const console = stderr.split("\n").filter((l) => /:CONSOLE|Uncaught/.test(l));
    return { stdout: decoder.decode(output.stdout), console };
  } finally {
    await Deno.remove(profile, { recursive: true });
  }
}

async function main(): Promise<void> {
  const flags = parseFlags({
    out: { type: "string" },
    width: { type: "string", default: "1280" },
    height: { type: "string", default: "4000" },
  });
  const [html] = flags.positionals;
  if (html === undefined || flags.positionals.length > 1) {
    throw new UsageError(
      "give one HTML file: deno task report:screenshot out/report/report.html [--out PNG]",
    );
  }
  await Deno.stat(html).catch(() => {
    throw new UsageError(`${html}: no such file`);
  });
  const png = flags.out ?? html.replace(/\.html?$/, "") + ".png";
  const run = await runChromium(html, {
    screenshot: png,
    width: numberFlag("width", flags.width, 100, 10000),
    height: numberFlag("height", flags.height, 100, 30000),
  });
  console.log(`written: ${png}`);
  if (run.console.length > 0) throw new Error(`${html}: console messages:\n${run.console.join("\n")}`);
  console.log("console: no messages");
}

if (import.meta.main) await runMain(main, import.meta.url);
