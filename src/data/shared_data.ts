/**
 * Where the real data sets of `../shared/data` live: `$NIP_DATA_DIR` if set, else the `shared/data`
 * folder beside the repository (how the workspace and CI lay it out). The product runs without it on the
 * embedded data; tests that need it say so and skip when it is absent.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** The folder beside the repository: `<repo>/../shared/data`. */
const BESIDE_REPOSITORY = fileURLToPath(new URL("../../../shared/data", import.meta.url));

/** Root of the shared data folder. */
export function sharedDataDir(): string {
  try {
    return Deno.env.get("NIP_DATA_DIR") ?? BESIDE_REPOSITORY;
  } catch {
    return BESIDE_REPOSITORY; // no --allow-env
  }
}

/** `sharedDataDir()/fsdd/train`: the FSDD recordings (takes 5-49). */
export function fsddTrainDir(): string {
  return `${sharedDataDir()}/fsdd/train`;
}
