/**
 * Saving and loading TensorFlow.js models to and from a directory under Deno (`model.json` plus
 * weight files), as tfjs's own `file://` handler belongs to tfjs-node.
 *
 * Reads what `tensorflowjs_converter` writes (LayersModels from Keras and GraphModels, weights in
 * several groups and shards, quantized weights) and what {@link saveModel} writes (`weights.bin`).
 * Every manifest entry is checked against the bytes on disk before tfjs sees them, so a truncated or
 * missing file is reported by name with the expected and actual byte counts.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Name of the model description file inside a model directory. */
export const MODEL_JSON = "model.json";
/** Name of the single weights file {@link saveModel} writes. */
export const WEIGHTS_BIN = "weights.bin";

/** Raised when a model directory is missing a file or holds malformed or inconsistent content. */
export class ModelFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ModelFileError";
  }
}

const BYTES_PER_ELEMENT: Record<string, number> = {
  float32: 4,
  int32: 4,
  bool: 1,
  complex64: 8,
  uint8: 1,
  uint16: 2,
  float16: 2,
};

function joinPath(dir: string, name: string): string {
  return `${dir.replace(/\/+$/, "")}/${name}`;
}

async function readFileNamed(path: string, what: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new ModelFileError(`${what} ${path} does not exist`);
    throw new ModelFileError(`cannot read ${what} ${path}: ${(error as Error).message}`);
  }
}

/** Reads and minimally validates `<dir>/model.json`. */
export async function readModelJson(dir: string): Promise<tf.io.ModelJSON> {
  const path = joinPath(dir, MODEL_JSON);
  const bytes = await readFileNamed(path, "model file");
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new ModelFileError(`${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ModelFileError(`${path}: expected a JSON object`);
  }
  const json = parsed as Partial<tf.io.ModelJSON>;
  if (typeof json.modelTopology !== "object" || json.modelTopology === null) {
    throw new ModelFileError(`${path}: field "modelTopology" is missing or not an object`);
  }
  if (json.weightsManifest !== undefined && !Array.isArray(json.weightsManifest)) {
    throw new ModelFileError(`${path}: field "weightsManifest" must be an array`);
  }
  for (const [g, group] of (json.weightsManifest ?? []).entries()) {
    if (!Array.isArray(group?.paths) || !Array.isArray(group?.weights)) {
      throw new ModelFileError(`${path}: weightsManifest[${g}] needs arrays "paths" and "weights"`);
    }
    for (const p of group.paths) {
      if (typeof p !== "string" || p.startsWith("/") || p.split(/[\\/]/).includes("..")) {
        throw new ModelFileError(
          `${path}: weightsManifest[${g}].paths holds ${
            JSON.stringify(p)
          }; weight paths must stay inside ${dir}`,
        );
      }
    }
  }
  return { ...json, weightsManifest: json.weightsManifest ?? [] } as tf.io.ModelJSON;
}

/** Bytes a manifest entry occupies on disk, or undefined for string tensors (variable length). */
function entryByteLength(entry: tf.io.WeightsManifestEntry): number | undefined {
  const dtype = entry.quantization?.dtype ?? entry.dtype;
  const size = BYTES_PER_ELEMENT[dtype];
  if (size === undefined) return undefined;
  return entry.shape.reduce((a, b) => a * b, 1) * size;
}

interface WeightFile {
  path: string;
  bytes: Uint8Array;
}

/** The weight files of a manifest, in manifest order, with their byte counts checked per group. */
async function readWeightFiles(dir: string, manifest: tf.io.WeightsManifestConfig): Promise<WeightFile[]> {
  const files: WeightFile[] = [];
  for (const [g, group] of manifest.entries()) {
    const groupFiles: WeightFile[] = [];
    for (const relative of group.paths) {
      const path = joinPath(dir, relative);
      groupFiles.push({ path, bytes: await readFileNamed(path, `weights file (listed in ${MODEL_JSON})`) });
    }
    const sizes = group.weights.map(entryByteLength);
    if (sizes.every((s) => s !== undefined)) {
      const expected = (sizes as number[]).reduce((a, b) => a + b, 0);
      const actual = groupFiles.reduce((a, f) => a + f.bytes.byteLength, 0);
      if (expected !== actual) {
        const where = groupFiles.length === 1
          ? `weights file ${groupFiles[0].path}`
          : `weights group ${g} (${
            groupFiles.map((f) => `${f.path}: ${f.bytes.byteLength} bytes`).join(", ")
          })`;
        throw new ModelFileError(
          `${where}: expected ${expected} bytes for ${group.weights.length} weights listed in ${MODEL_JSON}, ` +
            `found ${actual} bytes`,
        );
      }
    }
    files.push(...groupFiles);
  }
  return files;
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/**
 * A `tf.io.IOHandler` over a directory: `load()` reads `model.json` and its weight files (any format
 * tensorflowjs_converter writes), `save()` writes `model.json` and one `weights.bin`, creating the
 * directory when needed.
 */
export function dirHandler(dir: string): tf.io.IOHandler {
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      const modelJson = await readModelJson(dir);
      return await tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
        const files = await readWeightFiles(dir, manifest);
        return [tf.io.getWeightSpecs(manifest), files.map((f) => toArrayBuffer(f.bytes))];
      });
    },

    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new ModelFileError(`saving to ${dir}: binary (protobuf) model topologies are not supported`);
      }
      const weightData = artifacts.weightData === undefined
        ? new ArrayBuffer(0)
        : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      const modelJson: Record<string, unknown> = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
        weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
      };
      for (
        const key of [
          "trainingConfig",
          "signature",
          "userDefinedMetadata",
          "modelInitializer",
          "initializerSignature",
        ] as const
      ) {
        if (artifacts[key] !== undefined) modelJson[key] = artifacts[key];
      }
      await Deno.mkdir(dir, { recursive: true });
      const jsonText = JSON.stringify(modelJson);
      await Deno.writeFile(joinPath(dir, WEIGHTS_BIN), new Uint8Array(weightData));
      await Deno.writeTextFile(joinPath(dir, MODEL_JSON), jsonText);
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: "JSON",
          modelTopologyBytes: new TextEncoder().encode(JSON.stringify(artifacts.modelTopology)).byteLength,
          weightSpecsBytes: new TextEncoder().encode(JSON.stringify(artifacts.weightSpecs ?? [])).byteLength,
          weightDataBytes: weightData.byteLength,
        },
      };
    },
  };
}

/** Options of {@link saveModel}. */
export interface SaveModelOptions {
  /** Also save the optimizer's state (the model must be compiled). Default false. */
  includeOptimizer?: boolean;
}

/** Saves a LayersModel to `dir` as `model.json` + `weights.bin`. */
export async function saveModel(
  model: tf.LayersModel,
  dir: string,
  options: SaveModelOptions = {},
): Promise<tf.io.SaveResult> {
  const includeOptimizer = options.includeOptimizer ?? false;
  if (!includeOptimizer || model.optimizer == null) {
    return await model.save(dirHandler(dir), { includeOptimizer });
  }
  // tfjs's save() leaks the iteration-count scalar that optimizer.getWeights() creates on each call;
  // collect those fresh tensors (the moments are the optimizer's own variables) and free them after.
  const optimizer = model.optimizer;
  const ownGetWeights = Object.hasOwn(optimizer, "getWeights");
  const getWeights = optimizer.getWeights;
  const created: tf.Tensor[] = [];
  optimizer.getWeights = async () => {
    const weights = await getWeights.call(optimizer);
    for (const w of weights) if (!(w.tensor instanceof tf.Variable)) created.push(w.tensor);
    return weights;
  };
  try {
    return await model.save(dirHandler(dir), { includeOptimizer });
  } finally {
    if (ownGetWeights) optimizer.getWeights = getWeights;
    else delete (optimizer as { getWeights?: unknown }).getWeights;
    tf.dispose(created);
  }
}

/** Loads a LayersModel (saved by {@link saveModel} or converted from Keras) from `dir`. */
export async function loadLayersModel(dir: string): Promise<tf.LayersModel> {
  const json = await readModelJson(dir);
  if (json.format === "graph-model") {
    throw new ModelFileError(`${joinPath(dir, MODEL_JSON)} holds a graph-model; load it with loadGraphModel`);
  }
  return await tf.loadLayersModel(dirHandler(dir));
}

/** Loads a GraphModel (tensorflowjs_converter output with format "graph-model") from `dir`. */
export async function loadGraphModel(dir: string): Promise<tf.GraphModel> {
  const json = await readModelJson(dir);
  if (json.format !== undefined && json.format !== "graph-model") {
    throw new ModelFileError(
      `${joinPath(dir, MODEL_JSON)} has format ${JSON.stringify(json.format)}; load it with loadLayersModel`,
    );
  }
  return await tf.loadGraphModel(dirHandler(dir));
}

/**
 * SHA-256 (hex) over `model.json` followed by every weight file in manifest order: the identity a
 * calibration profile records to refuse a different model. Checks the files as loading does.
 */
export async function modelHash(dir: string): Promise<string> {
  const modelJsonBytes = await readFileNamed(joinPath(dir, MODEL_JSON), "model file");
  const modelJson = await readModelJson(dir);
  const files = await readWeightFiles(dir, modelJson.weightsManifest);
  const total = modelJsonBytes.byteLength + files.reduce((a, f) => a + f.bytes.byteLength, 0);
  const all = new Uint8Array(total);
  all.set(modelJsonBytes, 0);
  let offset = modelJsonBytes.byteLength;
  for (const f of files) {
    all.set(f.bytes, offset);
    offset += f.bytes.byteLength;
  }
  const digest = await crypto.subtle.digest("SHA-256", all);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Whether `dir` holds a LayersModel or a GraphModel: the `format` field of its `model.json`, or without
 * one, a `modelTopology` with a `node` list (a GraphDef) for a graph model.
 */
export async function modelFormat(dir: string): Promise<"layers-model" | "graph-model"> {
  const json = await readModelJson(dir);
  if (json.format === "graph-model" || json.format === "layers-model") return json.format;
  if (json.format !== undefined) {
    throw new ModelFileError(
      `${joinPath(dir, MODEL_JSON)}: field "format" is ${
        JSON.stringify(json.format)
      }; expected "layers-model" or "graph-model"`,
    );
  }
  return Array.isArray((json.modelTopology as { node?: unknown }).node) ? "graph-model" : "layers-model";
}
