/**
 * Splitting a classifier at a layer `l` into `body` (input -> output of `l`) and `head` (output of `l`
 * -> scores), both LayersModels that share the original layers and so its weights.
 *
 * The head is rebuilt by re-applying the layers after `l` to a fresh `tf.input`, following the model's
 * own graph: Sequential models, functional chains and branches that rejoin after `l` all work; a
 * connection that skips over `l` (the head would need more than `l`'s output) is refused.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { SplitModel } from "../nip/types.ts";

/** A layer of a LayersModel. */
export type Layer = ReturnType<tf.LayersModel["getLayer"]>;
type GraphNode = Layer["inboundNodes"][number];

/** Class names of the layers that may serve as the default split point. */
export const DEFAULT_SPLIT_CLASSES: readonly string[] = [
  "Flatten",
  "GlobalAveragePooling2D",
  "GlobalAveragePooling1D",
];

/** Raised when a model cannot be split as asked. */
export class SplitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SplitError";
  }
}

function describeLayers(model: tf.LayersModel): string {
  return model.layers.map((l) => `${l.name} (${l.getClassName()})`).join(", ");
}

/** The top-level layer called `name`; the error lists every valid name with its class. */
export function findLayer(model: tf.LayersModel, name: string): Layer {
  const layer = model.layers.find((l) => l.name === name);
  if (layer === undefined) {
    throw new SplitError(
      `model "${model.name}" has no layer named "${name}"; its layers are: ${describeLayers(model)}`,
    );
  }
  return layer;
}

/**
 * The default split layer: the last Flatten or GlobalAveragePooling layer, i.e. the one between the
 * convolutional body and the dense head.
 */
export function defaultSplitLayer(model: tf.LayersModel): Layer {
  for (let i = model.layers.length - 1; i >= 0; i--) {
    if (DEFAULT_SPLIT_CLASSES.includes(model.layers[i].getClassName())) return model.layers[i];
  }
  throw new SplitError(
    `model "${model.name}" has no ${DEFAULT_SPLIT_CLASSES.join(" or ")} layer to split at by default; ` +
      `name one of its layers: ${describeLayers(model)}`,
  );
}

/** The node through which `layer` takes part in `model` (its first node belonging to the model). */
function nodeInModel(layer: Layer, modelNodes: Set<GraphNode>): GraphNode | undefined {
  return layer.inboundNodes.find((node) => modelNodes.has(node));
}

/** Every node of the model's graph, found by walking back from its outputs. */
function collectModelNodes(model: tf.LayersModel): Set<GraphNode> {
  const nodes = new Set<GraphNode>();
  const pending: tf.SymbolicTensor[] = [...model.outputs];
  while (pending.length > 0) {
    const tensor = pending.pop()!;
    const node = tensor.sourceLayer.inboundNodes[tensor.nodeIndex];
    if (node === undefined || nodes.has(node)) continue;
    nodes.add(node);
    pending.push(...node.inputTensors);
  }
  return nodes;
}

function onlyTensor(value: tf.SymbolicTensor | tf.SymbolicTensor[], what: string): tf.SymbolicTensor {
  if (!Array.isArray(value)) return value;
  if (value.length === 1) return value[0];
  throw new SplitError(`${what} has ${value.length} tensors; expected exactly one`);
}

/** Rebuilds the part of `model` downstream of `splitOutput` on a new input of the same shape. */
function buildHead(model: tf.LayersModel, layer: Layer, splitOutput: tf.SymbolicTensor): tf.LayersModel {
  const modelNodes = collectModelNodes(model);
  const headInput = tf.input({ shape: splitOutput.shape.slice(1) as number[], dtype: splitOutput.dtype });
  const replaced = new Map<number, tf.SymbolicTensor>([[splitOutput.id, headInput]]);
  const start = model.layers.indexOf(layer) + 1;
  for (const later of model.layers.slice(start)) {
    const node = nodeInModel(later, modelNodes);
    if (node === undefined) continue;
    const inputs = node.inputTensors;
    const mapped = inputs.map((t) => replaced.get(t.id));
    if (mapped.every((t) => t === undefined)) continue; // not downstream of the split layer
    const missing = inputs.filter((_, i) => mapped[i] === undefined);
    if (missing.length > 0) {
      throw new SplitError(
        `cannot split at layer "${layer.name}": layer "${later.name}" also takes ${
          missing.map((t) => `"${t.name}"`).join(", ")
        }, which bypasses it (a skip connection); choose a layer every path passes through`,
      );
    }
    const applied = later.apply(
      mapped.length === 1 ? mapped[0]! : (mapped as tf.SymbolicTensor[]),
      node.callArgs,
    ) as tf.SymbolicTensor | tf.SymbolicTensor[];
    const outputs = Array.isArray(applied) ? applied : [applied];
    node.outputTensors.forEach((original, i) => replaced.set(original.id, outputs[i]));
  }
  const output = model.outputs[0];
  const headOutput = output.id === splitOutput.id ? headInput : replaced.get(output.id);
  if (headOutput === undefined) {
    throw new SplitError(`cannot split at layer "${layer.name}": the model's output does not depend on it`);
  }
  return tf.model({ inputs: headInput, outputs: headOutput });
}

/** A LayersModel split by {@link splitModel}: its parts are LayersModels too. */
export interface LayersSplitModel extends SplitModel {
  readonly model: tf.LayersModel;
  readonly body: tf.LayersModel;
  readonly head: tf.LayersModel;
}

/** Options of {@link splitModel}. */
export interface SplitOptions {
  /** Layer to split at; default {@link defaultSplitLayer}. */
  layerName?: string;
  /** Valid input range recorded in the result; default [0, 1]. */
  inputRange?: [number, number];
}

/**
 * Splits a single-input, single-output LayersModel at a layer into `body` and `head` (sharing the
 * model's weights), so that `head(body(x))` equals `model(x)`.
 */
export function splitModel(model: tf.LayersModel, options: SplitOptions = {}): LayersSplitModel {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new SplitError(
      `model "${model.name}" has ${model.inputs.length} inputs and ${model.outputs.length} outputs; ` +
        `splitting needs exactly one of each`,
    );
  }
  const inputRange = options.inputRange ?? [0, 1];
  if (!(Number.isFinite(inputRange[0]) && Number.isFinite(inputRange[1]) && inputRange[0] < inputRange[1])) {
    throw new SplitError(
      `inputRange must be two finite numbers [low, high] with low < high, got ${inputRange}`,
    );
  }
  const inputShape = model.inputs[0].shape.slice(1);
  if (inputShape.some((d) => d === null)) {
    throw new SplitError(`model "${model.name}" input shape [${inputShape}] has unknown dimensions`);
  }
  const layer = options.layerName === undefined
    ? defaultSplitLayer(model)
    : findLayer(model, options.layerName);
  const node = nodeInModel(layer, collectModelNodes(model));
  if (node === undefined) {
    throw new SplitError(`layer "${layer.name}" is not on the path to the model's output`);
  }
  if (model.inputs.some((input) => input.sourceLayer === layer)) {
    throw new SplitError(`cannot split at the input layer "${layer.name}"; choose a later layer`);
  }
  const splitOutput = onlyTensor(node.outputTensors, `the output of layer "${layer.name}"`);
  const body = tf.model({ inputs: model.inputs[0], outputs: splitOutput });
  const head = buildHead(model, layer, splitOutput);
  return {
    model,
    body,
    head,
    layerName: layer.name,
    inputShape: inputShape as number[],
    inputRange: [inputRange[0], inputRange[1]],
  };
}
