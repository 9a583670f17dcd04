/**
 * Splitting a TensorFlow.js GraphModel at a named graph node into `body` (input -> the node's output)
 * and `head` (the node's output -> scores), so that the NIP defense uses it as it uses a split
 * LayersModel (`split.ts`). Both parts run the one graph with `GraphModel.execute`: the body asks for
 * the node as an output, the head feeds the node's value in as an input. Gradients flow through both.
 *
 * The graph is read from its `model.json` (`modelTopology.node`, the GraphDef in JSON form) to list the
 * nodes, choose the default split node and check that the head needs nothing but the node's output.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelPart, ScoreKind, SplitModel } from "../nip/types.ts";
import { SplitError } from "./split.ts";

/** One node of a graph model: its name, its op and the names of the nodes it reads, in file order. */
export interface GraphNodeInfo {
  readonly name: string;
  readonly op: string;
  /** Producing nodes of its data inputs (`"name:1"` read as `"name"`; control inputs `^name` left out). */
  readonly inputs: readonly string[];
}

/** Ops of a convolution; the default split node comes after the last one. */
const CONV_OPS = new Set(["Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"]);
/** Ops of a dense layer's product; the default split node is the data input of one. */
const MATMUL_OPS = new Set(["MatMul", "_FusedMatMul"]);
/** Ops whose output is a layer output worth splitting at. */
const SPLIT_OPS = new Set([
  ...CONV_OPS,
  ...MATMUL_OPS,
  ..."Reshape Squeeze Mean Max MaxPool AvgPool BiasAdd Add AddV2 ConcatV2 FusedBatchNorm FusedBatchNormV3"
    .split(" "),
  ..."Relu Relu6 LeakyRelu Elu Selu Sigmoid Tanh".split(" "),
]);

function isPlaceholder(node: GraphNodeInfo): boolean {
  return node.op === "Placeholder" || node.op === "PlaceholderWithDefault";
}

/** The nodes of a graph model's `modelTopology.node`, in file order; a malformed node is named. */
export function graphNodes(modelJson: tf.io.ModelJSON): GraphNodeInfo[] {
  const topology = modelJson.modelTopology as { node?: unknown } | null | undefined;
  if (!Array.isArray(topology?.node)) {
    throw new SplitError(`modelTopology has no "node" list: this is not a graph model`);
  }
  const nodes = topology.node.map((raw: unknown, i: number): GraphNodeInfo => {
    const node = raw as { name?: unknown; op?: unknown; input?: unknown };
    if (typeof node?.name !== "string" || typeof node.op !== "string") {
      throw new SplitError(`modelTopology.node[${i}] needs string fields "name" and "op"`);
    }
    const inputs = Array.isArray(node.input) ? node.input : [];
    return {
      name: node.name,
      op: node.op,
      inputs: inputs.filter((s) => typeof s === "string" && !s.startsWith("^"))
        .map((s: string) => s.replace(/:\d+$/, "")),
    };
  });
  const names = new Set(nodes.map((n) => n.name));
  for (const node of nodes) {
    const missing = node.inputs.find((name) => !names.has(name));
    if (missing !== undefined) {
      throw new SplitError(`modelTopology: node "${node.name}" reads "${missing}", which is not a node`);
    }
  }
  return nodes;
}

/** The nodes in an order where each comes after its inputs, otherwise keeping file order (loops cut). */
function topologicalOrder(nodes: readonly GraphNodeInfo[]): GraphNodeInfo[] {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const visited = new Set<string>();
  const order: GraphNodeInfo[] = [];
  for (const root of nodes) {
    if (visited.has(root.name)) continue;
    visited.add(root.name);
    const stack: { node: GraphNodeInfo; next: number }[] = [{ node: root, next: 0 }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      if (top.next < top.node.inputs.length) {
        const input = byName.get(top.node.inputs[top.next++]);
        if (input !== undefined && !visited.has(input.name)) {
          visited.add(input.name);
          stack.push({ node: input, next: 0 });
        }
      } else {
        stack.pop();
        order.push(top.node);
      }
    }
  }
  return order;
}

/** A graph's nodes in topological order, by name, and which of them depend on the input. */
interface GraphIndex {
  readonly order: readonly GraphNodeInfo[];
  readonly byName: ReadonlyMap<string, GraphNodeInfo>;
  /** Nodes whose value depends on a graph input (not constants, nor a weight's Identity). */
  readonly dependent: ReadonlySet<string>;
}

function indexGraph(nodes: readonly GraphNodeInfo[]): GraphIndex {
  const order = topologicalOrder(nodes);
  const dependent = new Set<string>();
  for (const node of order) {
    if (isPlaceholder(node) || node.inputs.some((name) => dependent.has(name))) dependent.add(node.name);
  }
  return { order, byName: new Map(nodes.map((n) => [n.name, n])), dependent };
}

/** The node that produces `node`'s value, looking back through Identity nodes. */
function throughIdentity(node: GraphNodeInfo, byName: ReadonlyMap<string, GraphNodeInfo>): GraphNodeInfo {
  let current = node;
  for (let hops = 0; current.op === "Identity" && hops < byName.size; hops++) {
    current = byName.get(current.inputs[0]) ?? current;
  }
  return current;
}

/**
 * The names of the nodes worth splitting at, in graph order: outputs of layer-like ops (Reshape,
 * Mean, pooling, activations, convolutions, products, BiasAdd, ...) that depend on the input.
 */
export function splitCandidates(nodes: readonly GraphNodeInfo[]): string[] {
  const { order, dependent } = indexGraph(nodes);
  return order.filter((n) => SPLIT_OPS.has(n.op) && dependent.has(n.name)).map((n) => n.name);
}

function describeCandidates(nodes: readonly GraphNodeInfo[]): string {
  const ops = new Map(nodes.map((n) => [n.name, n.op]));
  const names = splitCandidates(nodes);
  return names.length === 0 ? "(none)" : names.map((name) => `${name} (${ops.get(name)})`).join(", ");
}

/**
 * The paper's split node: the data input of the first MatMul (or `_FusedMatMul`) after the last
 * convolution, i.e. the Flatten (Reshape) or global-average-pooling (Mean) output; without a
 * convolution, of the first MatMul. Identity nodes are looked through; a MatMul that reads the graph
 * input directly is passed over.
 */
export function defaultSplitNode(nodes: readonly GraphNodeInfo[]): string {
  const { order, byName, dependent } = indexGraph(nodes);
  const lastConv = order.findLastIndex((n) => CONV_OPS.has(n.op));
  for (const node of order.slice(lastConv + 1)) {
    const data = MATMUL_OPS.has(node.op) ? node.inputs.find((name) => dependent.has(name)) : undefined;
    if (data === undefined) continue;
    const source = throughIdentity(byName.get(data)!, byName);
    if (!isPlaceholder(source)) return source.name;
  }
  const after = lastConv < 0 ? "" : ` after the last convolution "${order[lastConv].name}"`;
  throw new SplitError(
    `the graph has no MatMul${after} whose input could be split at by default; ` +
      `name one of its nodes: ${describeCandidates(nodes)}`,
  );
}

/**
 * Checks that `nodeName` can be split at: a node of the graph that depends on the input, is not the
 * output, and through which every path from the input to the output passes.
 */
function checkSplitNode(nodes: readonly GraphNodeInfo[], nodeName: string, outputName: string): void {
  const { byName, dependent } = indexGraph(nodes);
  const node = byName.get(nodeName);
  const refuse: (why: string) => never = (why) => {
    throw new SplitError(
      `cannot split at "${nodeName}": ${why}; nodes worth splitting at: ${describeCandidates(nodes)}`,
    );
  };
  if (node === undefined) refuse(`the graph has no node named "${nodeName}"`);
  if (isPlaceholder(node)) refuse("it is the graph's input");
  if (!dependent.has(nodeName)) refuse(`its ${node.op} does not depend on the input (a constant or weight)`);
  if (nodeName === outputName) refuse("it is the graph's output node");
  let reached = false;
  const bypass: string[] = [];
  const seen = new Set<string>();
  const pending = [outputName];
  while (pending.length > 0) {
    const name = pending.pop()!;
    if (name === nodeName) reached = true;
    if (name === nodeName || seen.has(name)) continue;
    seen.add(name);
    const current = byName.get(name)!;
    if (isPlaceholder(current)) bypass.push(name);
    else pending.push(...current.inputs);
  }
  if (!reached) refuse(`the output "${outputName}" does not depend on it`);
  if (bypass.length > 0) {
    refuse(
      `the output also reads the input ${bypass.join(", ")} by a path that bypasses it (a skip connection)`,
    );
  }
}

type Shape = readonly (number | null)[];

/**
 * A part of a split GraphModel: a function of one tensor through the shared graph. `apply` ignores
 * `training` (a graph model has no training mode); the tensor it returns belongs to the caller.
 */
export interface GraphModelPart extends ModelPart {
  apply(inputs: tf.Tensor, kwargs?: { training?: boolean }): tf.Tensor;
  predict(x: tf.Tensor): tf.Tensor;
}

function graphPart(
  run: (x: tf.Tensor) => tf.Tensor,
  shapes: { input: Shape; output: Shape },
  scoreKind?: ScoreKind,
  dispose: () => void = () => {},
): GraphModelPart {
  const inputs = [{ shape: shapes.input }];
  const outputs = [{ shape: shapes.output }];
  return { apply: (x) => run(x), predict: (x) => run(x), inputs, outputs, scoreKind, dispose };
}

/** A GraphModel split by {@link splitGraphModel}. */
export interface GraphSplitModel extends SplitModel {
  readonly model: GraphModelPart;
  readonly body: GraphModelPart;
  readonly head: GraphModelPart;
  /** The graph all three parts run. */
  readonly graph: tf.GraphModel;
}

/** Options of {@link splitGraphModel}. */
export interface GraphSplitOptions {
  /** Node to split at; default {@link defaultSplitNode}. */
  nodeName?: string;
  /** Valid input range recorded in the result; default [0, 1]. */
  inputRange?: [number, number];
}

function executeOne(graph: tf.GraphModel, inputs: tf.Tensor | tf.NamedTensorMap, output: string): tf.Tensor {
  const result = graph.execute(inputs, output);
  if (Array.isArray(result)) {
    tf.dispose(result);
    throw new SplitError(`executing the graph for "${output}" gave ${result.length} tensors; expected one`);
  }
  return result;
}

/** Shapes (batch dimension null) of the split node's and the output's values, by one forward of zeros. */
function probeShapes(graph: tf.GraphModel, inputShape: number[], nodeName: string, output: string) {
  const zeros = tf.zeros([1, ...inputShape]);
  try {
    const [layer, scores] = graph.execute(zeros, [nodeName, output]) as tf.Tensor[];
    const shapes = { layer: [null, ...layer.shape.slice(1)], scores: [null, ...scores.shape.slice(1)] };
    tf.dispose([layer, scores]);
    return shapes;
  } finally {
    zeros.dispose();
  }
}

/** The graph's single float32 input's shape without the batch dimension; every dimension known. */
function graphInputShape(graph: tf.GraphModel): number[] {
  if (graph.inputs.length !== 1 || graph.outputs.length !== 1) {
    throw new SplitError(
      `the graph model has ${graph.inputs.length} inputs (${graph.inputNodes.join(", ")}) and ` +
        `${graph.outputs.length} outputs (${graph.outputNodes.join(", ")}); splitting needs one of each`,
    );
  }
  const { name, shape, dtype } = graph.inputs[0];
  if (shape === undefined || shape.slice(1).some((d) => !(d > 0))) {
    throw new SplitError(
      `the graph's input "${name}" has shape [${shape ?? "unknown"}]; splitting needs ` +
        `every dimension but the batch known`,
    );
  }
  if (dtype !== undefined && dtype !== "float32") {
    throw new SplitError(`the graph's input "${name}" is ${dtype}; splitting needs float32`);
  }
  return shape.slice(1);
}

/**
 * Splits a single-input, single-output GraphModel at a node (default {@link defaultSplitNode}) into
 * `body` and `head` that share its weights, so that `head(body(x))` equals `model(x)`. `modelJson` is
 * the graph's `model.json` (`readModelJson`). `scoreKind` is "probs" when the output node is (through
 * Identity nodes) a Softmax, else "logits". Only `model.dispose()` releases the graph; `body.dispose()`
 * and `head.dispose()` do nothing, as the parts share its weights.
 */
export function splitGraphModel(
  graph: tf.GraphModel,
  modelJson: tf.io.ModelJSON,
  options: GraphSplitOptions = {},
): GraphSplitModel {
  const inputShape = graphInputShape(graph);
  const inputRange = options.inputRange ?? [0, 1];
  if (!(Number.isFinite(inputRange[0]) && Number.isFinite(inputRange[1]) && inputRange[0] < inputRange[1])) {
    throw new SplitError(
      `inputRange must be two finite numbers [low, high] with low < high, got ${inputRange}`,
    );
  }
  const nodes = graphNodes(modelJson);
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const outputNode = byName.get(graph.outputs[0].name);
  if (outputNode === undefined || !byName.has(graph.inputs[0].name)) {
    throw new SplitError(`modelJson does not describe this graph (no node "${graph.outputs[0].name}")`);
  }
  const nodeName = options.nodeName ?? defaultSplitNode(nodes);
  checkSplitNode(nodes, nodeName, outputNode.name);

  const output = graph.outputNodes[0];
  const { layer, scores } = probeShapes(graph, inputShape, nodeName, output);
  const image = [null, ...inputShape];
  const scoreKind: ScoreKind = throughIdentity(outputNode, byName).op === "Softmax" ? "probs" : "logits";
  const run = (inputs: tf.Tensor | tf.NamedTensorMap, name: string) => executeOne(graph, inputs, name);
  return {
    graph,
    model: graphPart(
      (x) => run(x, output),
      { input: image, output: scores },
      scoreKind,
      () => graph.dispose(),
    ),
    body: graphPart((x) => run(x, nodeName), { input: image, output: layer }),
    head: graphPart((a) => run({ [nodeName]: a }, output), { input: layer, output: scores }, scoreKind),
    layerName: nodeName,
    inputShape,
    inputRange: [inputRange[0], inputRange[1]],
  };
}
