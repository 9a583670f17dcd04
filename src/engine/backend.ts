/**
 * Backend selection for TensorFlow.js: `wasm` (embedded default), `cpu`, `tensorflow`
 * (tfjs-node / tfjs-node-gpu) and `webgpu`.
 *
 * The optional backends are imported only after their package is found installed under
 * `node_modules/@tensorflow/` (with its native binding, for tfjs-node): importing an `npm:` specifier
 * that is not installed makes Deno fetch it at run time, and a half-working tfjs-node registers part of
 * its kernels before failing.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { registerComposedWasmKernels } from "./kernels.ts";
import { registerBatchNormGradient } from "./batch_norm_gradient.ts";

/** The backends a user may ask for. */
export const BACKEND_NAMES = ["wasm", "cpu", "tensorflow", "webgpu"] as const;

/** One of {@link BACKEND_NAMES}. */
export type BackendName = typeof BACKEND_NAMES[number];

/** The backends that need a package the project does not ship. */
export type OptionalBackendName = "tensorflow" | "webgpu";

/** Raised when the asked-for backend is unknown, its package is not installed, or it fails to start. */
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

interface OptionalPackage {
  /** Directory name under node_modules/@tensorflow/. */
  dir: string;
  specifier: string;
  /** For packages with a native part: a file pattern (relative to the package) that must exist. */
  nativeBinding?: RegExp;
}

const TFJS_VERSION = "4.22.0";
const NAPI_BINDING = /^lib\/napi-v\d+\/tfjs_binding\.node$/;

const OPTIONAL_PACKAGES: Record<OptionalBackendName, OptionalPackage[]> = {
  tensorflow: [
    {
      dir: "tfjs-node-gpu",
      specifier: `npm:@tensorflow/tfjs-node-gpu@${TFJS_VERSION}`,
      nativeBinding: NAPI_BINDING,
    },
    { dir: "tfjs-node", specifier: `npm:@tensorflow/tfjs-node@${TFJS_VERSION}`, nativeBinding: NAPI_BINDING },
  ],
  webgpu: [{ dir: "tfjs-backend-webgpu", specifier: `npm:@tensorflow/tfjs-backend-webgpu@${TFJS_VERSION}` }],
};

const INSTALL_HINTS: Record<OptionalBackendName, string> = {
  tensorflow: `install it with \`deno install --allow-scripts npm:@tensorflow/tfjs-node@${TFJS_VERSION}\` ` +
    `(or tfjs-node-gpu; its install script downloads libtensorflow), or use --backend wasm`,
  webgpu: `install it with \`deno install npm:@tensorflow/tfjs-backend-webgpu@${TFJS_VERSION}\` and run ` +
    `where WebGPU is available, or use --backend wasm`,
};

/** Where an optional backend's package was looked for and what was found. */
export interface OptionalBackendProbe {
  backend: OptionalBackendName;
  /** The `npm:` specifier to import, when a usable package was found. */
  specifier?: string;
  /** One line per package looked at, saying why it is not usable. */
  problems: string[];
}

/** The project's node_modules directory (beside deno.json, two levels above this file). */
export function defaultNodeModulesDir(): string {
  return new URL("../../node_modules/", import.meta.url).pathname;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function hasFileMatching(root: string, relativeDir: string, pattern: RegExp): boolean {
  // Only the first directory level below relativeDir: enough for lib/napi-v8/tfjs_binding.node.
  const base = `${root}/${relativeDir}`;
  try {
    for (const entry of Deno.readDirSync(base)) {
      if (!entry.isDirectory) continue;
      for (const inner of Deno.readDirSync(`${base}/${entry.name}`)) {
        if (pattern.test(`${relativeDir}/${entry.name}/${inner.name}`)) return true;
      }
    }
  } catch {
    return false;
  }
  return false;
}

/**
 * Looks for an optional backend's package under `nodeModulesDir` without importing or installing
 * anything. `specifier` is set when a package (and its native binding, for tfjs-node) is present.
 */
export function probeOptionalBackend(
  backend: OptionalBackendName,
  nodeModulesDir: string = defaultNodeModulesDir(),
): OptionalBackendProbe {
  const problems: string[] = [];
  for (const pkg of OPTIONAL_PACKAGES[backend]) {
    const root = `${nodeModulesDir.replace(/\/$/, "")}/@tensorflow/${pkg.dir}`;
    if (!isFile(`${root}/package.json`)) {
      problems.push(`@tensorflow/${pkg.dir} is not installed (no ${root}/package.json)`);
      continue;
    }
    if (pkg.nativeBinding && !hasFileMatching(root, "lib", pkg.nativeBinding)) {
      problems.push(
        `@tensorflow/${pkg.dir} is installed but its native binding is missing (no ${root}/lib/napi-v*/` +
          `tfjs_binding.node: its install script did not run or could not download libtensorflow)`,
      );
      continue;
    }
    return { backend, specifier: pkg.specifier, problems };
  }
  return { backend, problems };
}

async function importOptional(backend: OptionalBackendName, nodeModulesDir?: string): Promise<void> {
  const probe = probeOptionalBackend(backend, nodeModulesDir);
  if (probe.specifier === undefined) {
    throw new BackendUnavailableError(
      `backend "${backend}" is not available: ${probe.problems.join("; ")}. To use it, ${
        INSTALL_HINTS[backend]
      }.`,
    );
  }
  if (backend === "webgpu") await requireWebGpuAdapter();
  try {
    await import(probe.specifier);
  } catch (error) {
    throw new BackendUnavailableError(
      `backend "${backend}": importing ${probe.specifier} failed: ${(error as Error).message.split("\n")[0]}`,
    );
  }
}

async function requireWebGpuAdapter(): Promise<void> {
  const gpu = (globalThis.navigator as { gpu?: { requestAdapter(): Promise<unknown> } } | undefined)?.gpu;
  const adapter = gpu === undefined ? null : await gpu.requestAdapter().catch(() => null);
  if (adapter === null) {
    throw new BackendUnavailableError(
      `backend "webgpu" is not available: ${
        gpu === undefined ? "this runtime has no navigator.gpu" : "no WebGPU adapter found"
      }; use --backend wasm`,
    );
  }
}

/** Options of {@link initBackend}. */
export interface InitBackendOptions {
  /** Where to look for optional backend packages (default: the project's node_modules). */
  nodeModulesDir?: string;
}

/**
 * Activates a backend and waits until it is ready; returns the active backend's name. On "wasm" it
 * also registers the composed gradient kernels (see kernels.ts); on every backend, the broadcasting
 * batch-norm gradient (batch_norm_gradient.ts). Throws {@link BackendUnavailableError}
 * with the reason, and what to install, when the backend cannot be used; the previous backend stays
 * active then.
 */
export async function initBackend(
  name: BackendName = "wasm",
  options: InitBackendOptions = {},
): Promise<string> {
  parseBackendName(name);
  if (name === "tensorflow" || name === "webgpu") await importOptional(name, options.nodeModulesDir);
  if (tf.findBackendFactory(name) === null) {
    throw new BackendUnavailableError(`backend "${name}" did not register with TensorFlow.js`);
  }
  const ok = await tf.setBackend(name);
  if (!ok) throw new BackendUnavailableError(`backend "${name}" failed to initialise`);
  await tf.ready();
  if (name === "wasm") registerComposedWasmKernels();
  registerBatchNormGradient();
  return tf.getBackend();
}
