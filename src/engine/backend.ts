/**
 * Backend selection for TensorFlow.js: `wasm` (embedded default), `cpu`, `tensorflow`
 * (tfjs-node / tfjs-node-gpu, loaded dynamically when installed) and `webgpu`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { registerComposedWasmKernels } from "./kernels.ts";

/** The backends a user may ask for. */
export const BACKEND_NAMES = ["wasm", "cpu", "tensorflow", "webgpu"] as const;

/** One of {@link BACKEND_NAMES}. */
export type BackendName = typeof BACKEND_NAMES[number];

/** Raised when the asked-for backend is unknown or its package is not installed. */
export class BackendUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BackendUnavailableError";
  }
}

/** Parses a user-supplied backend name, failing with the list of valid names. */
export function parseBackendName(name: string): BackendName {
  if ((BACKEND_NAMES as readonly string[]).includes(name)) return name as BackendName;
  throw new BackendUnavailableError(`unknown backend "${name}"; expected one of ${BACKEND_NAMES.join(", ")}`);
}

const OPTIONAL_PACKAGES: Record<"tensorflow" | "webgpu", string[]> = {
  tensorflow: ["npm:@tensorflow/tfjs-node-gpu@4.22.0", "npm:@tensorflow/tfjs-node@4.22.0"],
  webgpu: ["npm:@tensorflow/tfjs-backend-webgpu@4.22.0"],
};

async function importOptional(name: "tensorflow" | "webgpu"): Promise<void> {
  const failures: string[] = [];
  for (const specifier of OPTIONAL_PACKAGES[name]) {
    try {
      await import(specifier);
      return;
    } catch (error) {
      failures.push(`${specifier}: ${(error as Error).message.split("\n")[0]}`);
    }
  }
  throw new BackendUnavailableError(
    `backend "${name}" is not installed (tried ${failures.join("; ")}). ` +
      (name === "tensorflow"
        ? "Install @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu (its install downloads libtensorflow), or use --backend wasm."
        : "Install @tensorflow/tfjs-backend-webgpu and run where WebGPU is available, or use --backend wasm."),
  );
}

/**
 * Activates a backend and waits until it is ready. Returns the active backend's name.
 * Throws {@link BackendUnavailableError} with the reason when it cannot be used.
 */
export async function initBackend(name: BackendName = "wasm"): Promise<string> {
  if (name === "tensorflow" || name === "webgpu") await importOptional(name);
  const registered = name === "tensorflow" ? "tensorflow" : name;
  if (tf.findBackendFactory(registered) === null) {
    throw new BackendUnavailableError(`backend "${name}" did not register with TensorFlow.js`);
  }
  const ok = await tf.setBackend(registered);
  if (!ok) throw new BackendUnavailableError(`backend "${name}" failed to initialise`);
  await tf.ready();
  if (registered === "wasm") registerComposedWasmKernels();
  return tf.getBackend();
}
