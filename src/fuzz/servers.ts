/**
 * The fuzzer's own servers: the image sidecar and, optionally, the audio sidecar, each a watched child
 * process (`sidecar_main.ts`), as one {@link FuzzTarget} whose tensor count is the sum of both and whose
 * death is either's; and a second image sidecar that gets no cases, the monitor's control.
 *
 * @module
 */
import { type ChildExit, describeExit, spawnWatched, type WatchedChild } from "./child.ts";
import type { FuzzTarget } from "./runner.ts";

/** Started servers and how to stop them. */
export interface FuzzServers {
  target: FuzzTarget;
  /** SIGTERM to each child; their exits, in start order. */
  stop(): Promise<ChildExit[]>;
}

async function spawnSidecar(modality: "image" | "audio") {
  const child = await spawnWatched(
    ["run", "-A", "src/fuzz/sidecar_main.ts", "--modality", modality],
    /^\{"ready"/,
  );
  const ready = JSON.parse(child.readyLine).ready as {
    address: string;
    metricsUrl: string;
    tensorsUrl: string;
  };
  return { child, ready };
}

function death(name: string, child: WatchedChild): string | undefined {
  const exit = child.exit;
  if (!exit) return undefined;
  return `${name} server process died after ${exit.afterMs} ms: ${describeExit(exit)}; ` +
    `stderr tail: ${exit.tail.slice(-8).join(" / ").slice(0, 1500)}`;
}

/** Starts the image sidecar, when `audio` the audio one, and the idle control sidecar. */
export async function startFuzzServers(audio: boolean): Promise<FuzzServers> {
  const image = await spawnSidecar("image");
  const sound = audio ? await spawnSidecar("audio") : undefined;
  const control = await spawnSidecar("image");
  const targets = sound ? [image, sound] : [image];
  const all = [...targets, control];
  const count = async (url: string) => Number(await (await fetch(url)).text());
  return {
    target: {
      image: image.ready.address,
      audio: sound?.ready.address,
      control: control.ready.address,
      metricsUrl: image.ready.metricsUrl,
      tensors: async () =>
        (await Promise.all(targets.map((s) => count(s.ready.tensorsUrl)))).reduce((a, b) => a + b),
      death: () =>
        death("image", image.child) ?? (sound && death("audio", sound.child)) ??
          death("control", control.child),
    },
    stop: async () => {
      const exits: ChildExit[] = [];
      for (const s of all) exits.push(await s.child.stop());
      return exits;
    },
  };
}
