/** Runs a task's entry point (`src/cli/<script>.ts`) in a child Deno, for the CLI tests. */

/** What a finished task printed and its exit code. */
export interface TaskResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `src/cli/<script>.ts` with `args` (colour off) and collects its output. */
export async function runTask(script: string, args: string[]): Promise<TaskResult> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `src/cli/${script}.ts`, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}
