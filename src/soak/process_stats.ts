/**
 * Memory of a process by pid, from `/proc/<pid>/status` (Linux): what the soak samples of the server child.
 *
 * @module
 */

/** Resident set size of process `pid` in MiB, or undefined when it cannot be read (gone, not Linux). */
export async function rssMiB(pid: number): Promise<number | undefined> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
    return kb === undefined ? undefined : Math.round(Number(kb) / 102.4) / 10;
  } catch {
    return undefined;
  }
}
