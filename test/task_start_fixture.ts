/**
 * The sidecar as an operator starts it: `deno task start` (the permissions of deno.json's task) as a child
 * process, the server process it spawns, its JSON log lines, and the sockets that process listens on
 * (read from /proc, so Linux only).
 */
import { fileURLToPath } from "node:url";

/** The repository root, where `deno task start` runs. */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Whether /proc exposes processes' children and sockets here. */
export const hasProc = Deno.build.os === "linux";

/** A port that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A running `deno task start`. */
export interface StartedTask {
  /** The process spawned: `deno task`, which runs the server as its child. */
  task: Deno.ChildProcess;
  /** The server's own process id. */
  serverPid: number;
  /** Log lines so far (JSON). */
  lines: string[];
  /** Resolves when the task's stderr closes. */
  drained: Promise<void>;
}

/** Runs `deno task start ...args` and resolves when the server logs "listening" (or throws with its log). */
export async function startTask(args: string[], env: Record<string, string> = {}): Promise<StartedTask> {
  const task = new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "start", ...args],
    cwd: ROOT,
    env,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const drained = (async () => {
    let buffer = "";
    for await (const chunk of task.stderr.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      const parts = buffer.split("\n");
      buffer = parts.pop()!;
      lines.push(...parts);
    }
    if (buffer) lines.push(buffer);
  })();
  let exited = false;
  task.status.then(() => exited = true);
  const deadline = Date.now() + 60_000;
  while (!lines.some((l) => l.includes('"listening"'))) {
    if (exited || Date.now() > deadline) {
      if (!exited) task.kill("SIGKILL");
      await drained;
      throw new Error(`deno task start did not start:\n${lines.join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { task, serverPid: childPids(task.pid)[0], lines, drained };
}

/** The direct children of a process. */
export function childPids(pid: number): number[] {
  const text = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim();
  return text === "" ? [] : text.split(/\s+/).map(Number);
}

/** Whether a process exists (a zombie counts as gone). */
export function processAlive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(Deno.readTextFileSync(`/proc/${pid}/status`));
  } catch {
    return false;
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export async function portOpen(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch {
    return false;
  }
}

/** The TCP ports and Unix socket paths process `pid` listens on. */
export function listeningSockets(pid: number): { tcp: number[]; unix: string[] } {
  const inodes = new Set<string>();
  for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`));
      if (m) inodes.add(m[1]);
    } catch {
      // The descriptor closed while we looked.
    }
  }
  const tcp = new Set<number>();
  for (const table of ["tcp", "tcp6"]) {
    for (const line of Deno.readTextFileSync(`/proc/${pid}/net/${table}`).split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // Fields: sl local_address rem_address st ... inode (10th); st 0A = LISTEN.
      if (f.length > 9 && f[3] === "0A" && inodes.has(f[9])) tcp.add(parseInt(f[1].split(":")[1], 16));
    }
  }
  const unix: string[] = [];
  for (const line of Deno.readTextFileSync(`/proc/${pid}/net/unix`).split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    // Fields: Num RefCount Protocol Flags Type St Inode Path; flag 0x10000 = listening.
    if (f.length > 6 && (parseInt(f[3], 16) & 0x10000) !== 0 && inodes.has(f[6])) unix.push(f[7] ?? "@");
  }
  return { tcp: [...tcp].sort((a, b) => a - b), unix };
}
