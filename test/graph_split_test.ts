import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../src/engine/backend.ts";
import {
  defaultSplitNode,
  type GraphNodeInfo,
  graphNodes,
  splitCandidates,
  splitGraphModel,
} from "../src/engine/graph_split.ts";
import {
  loadGraphModel,
  ModelFileError,
  modelFormat,
  readModelJson,
  saveModel,
} from "../src/engine/model_io.ts";
import { SplitError, splitModel } from "../src/engine/split.ts";
import { createLeNet } from "../src/models/lenet.ts";
import {
  constNode,
  convertToGraphModel,
  createGapNet,
  type GraphWeight,
  placeholderNode,
  unaryNode,
  writeGraphModelDir,
} from "./graph_fixture.ts";

await initBackend("wasm");

/** Gives every bias a seeded non-zero value, so that the BiasAdd nodes are tested. */
function randomizeBiases(model: tf.LayersModel, seed: number): void {
  model.layers.forEach((layer, i) => {
    const weights = layer.getWeights();
    if (weights.length !== 2) return;
    const bias = tf.randomUniform(weights[1].shape, -0.2, 0.2, "float32", seed + i);
    layer.setWeights([weights[0], bias]);
    bias.dispose(); // getWeights returns the variables themselves: not ours to dispose
  });
}

/** Converts `model` into a graph-model directory and loads it with its model.json. */
async function asGraph(model: tf.LayersModel) {
  const dir = await Deno.makeTempDir({ prefix: "graph_split_" });
  await convertToGraphModel(model, dir);
  const graph = await loadGraphModel(dir);
  const modelJson = await readModelJson(dir);
  await Deno.remove(dir, { recursive: true });
  return { graph, modelJson, nodes: graphNodes(modelJson) };
}

function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const bound = tol * Math.max(1, Math.abs(expected[i]));
    assert.ok(Math.abs(actual[i] - expected[i]) <= bound, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

function run(part: { apply(x: tf.Tensor, k?: { training?: boolean }): unknown }, x: tf.Tensor): tf.Tensor {
  return part.apply(x, { training: false }) as tf.Tensor;
}

const lenet = createLeNet({ seed: 3 });
randomizeBiases(lenet, 100);
const lenetGraph = await asGraph(lenet);
const batch = tf.randomUniform([3, 28, 28, 1], 0, 1, "float32", 5);

Deno.test("graphNodes lists the converted LeNet's nodes in file order, candidates skip weights", () => {
  const { nodes } = lenetGraph;
  assert.deepEqual(nodes[0], { name: "conv1_input", op: "Placeholder", inputs: [] });
  assert.deepEqual(nodes.find((n) => n.name === "lenet/flatten/Reshape"), {
    name: "lenet/flatten/Reshape",
    op: "Reshape",
    inputs: ["lenet/pool2/MaxPool", "lenet/flatten/Const"],
  });
  assert.equal(nodes[nodes.length - 1].op, "Identity");
  const candidates = splitCandidates(nodes);
  assert.deepEqual(candidates, [
    "lenet/conv1/Conv2D",
    "lenet/conv1/BiasAdd",
    "lenet/conv1/Relu",
    "lenet/pool1/MaxPool",
    "lenet/conv2/Conv2D",
    "lenet/conv2/BiasAdd",
    "lenet/conv2/Relu",
    "lenet/pool2/MaxPool",
    "lenet/flatten/Reshape",
    "lenet/dense1/MatMul",
    "lenet/dense1/BiasAdd",
    "lenet/dense1/Relu",
    "lenet/logits/MatMul",
    "lenet/logits/BiasAdd",
  ]);
  assert.equal(defaultSplitNode(nodes), "lenet/flatten/Reshape");
});

Deno.test("split LeNet graph: same scores as the LayersModel, head(body(x)) = model(x), no leak", () => {
  const split = splitGraphModel(lenetGraph.graph, lenetGraph.modelJson);
  assert.equal(split.layerName, "lenet/flatten/Reshape");
  assert.deepEqual(split.inputShape, [28, 28, 1]);
  assert.deepEqual(split.inputRange, [0, 1]);
  assert.deepEqual(split.body.inputs[0].shape, [null, 28, 28, 1]);
  assert.deepEqual(split.body.outputs[0].shape, [null, 800]);
  assert.deepEqual(split.head.inputs[0].shape, [null, 800]);
  assert.deepEqual(split.head.outputs[0].shape, [null, 10]);
  assert.deepEqual(split.model.outputs[0].shape, [null, 10]);
  assert.equal(split.model.scoreKind, "probs");
  assert.equal(split.head.scoreKind, "probs");
  const before = tf.memory().numTensors;
  const [layers, whole, composed, predicted, features] = tf.tidy(() => {
    const f = run(split.body, batch);
    return [
      (lenet.predict(batch) as tf.Tensor).dataSync(),
      run(split.model, batch).dataSync(),
      run(split.head, f).dataSync(),
      (split.model.predict(batch) as tf.Tensor).dataSync(),
      f.shape,
    ];
  });
  assert.equal(tf.memory().numTensors, before, "forwards leaked tensors");
  assert.deepEqual(features, [3, 800]);
  assertClose(whole, layers, 1e-5, "graph vs layers");
  assertClose(composed, whole, 1e-6, "head(body(x)) vs model(x)");
  assert.deepEqual(predicted, whole);
  split.body.dispose();
  split.head.dispose();
  assert.equal(tf.memory().numTensors, before, "body/head dispose must not release the shared graph");
});

Deno.test("gradients through the split graph match the LayersModel's", () => {
  const split = splitGraphModel(lenetGraph.graph, lenetGraph.modelJson);
  const layersSplit = splitModel(lenet);
  const weights = tf.tensor1d([0.5, -1, 2, 0, 1, -0.5, 0.25, 3, -2, 1]);
  const score = (scores: tf.Tensor) => scores.mul(weights).sum();
  const before = tf.memory().numTensors;
  const [headGraph, headLayers, inputGraph, inputLayers] = tf.tidy(() => {
    const z = run(layersSplit.body, batch);
    return [
      tf.grad((a: tf.Tensor) => score(run(split.head, a)))(z).dataSync(),
      tf.grad((a: tf.Tensor) => score(run(layersSplit.head, a)))(z).dataSync(),
      tf.grad((x: tf.Tensor) => score(run(split.model, x)))(batch).dataSync(),
      tf.grad((x: tf.Tensor) => score(run(lenet, x)))(batch).dataSync(),
    ];
  });
  assert.equal(tf.memory().numTensors, before, "gradients leaked tensors");
  assert.ok(headLayers.some((g) => Math.abs(g) > 1e-4), "the head gradient is not all zero");
  assert.ok(inputLayers.some((g) => Math.abs(g) > 1e-4), "the input gradient is not all zero");
  assertClose(headGraph, headLayers, 1e-5, "d score / d body output");
  assertClose(inputGraph, inputLayers, 1e-5, "d score / d input");
  weights.dispose();
  layersSplit.head.dispose();
});

Deno.test("a named node splits there; a wrong, constant, input or output node is refused", () => {
  const { graph, modelJson } = lenetGraph;
  const split = splitGraphModel(graph, modelJson, { nodeName: "lenet/conv2/Relu", inputRange: [-1, 1] });
  assert.deepEqual(split.body.outputs[0].shape, [null, 10, 10, 32]);
  assert.deepEqual(split.inputRange, [-1, 1]);
  const before = tf.memory().numTensors;
  const [whole, composed] = tf.tidy(() => [
    run(split.model, batch).dataSync(),
    run(split.head, run(split.body, batch)).dataSync(),
  ]);
  assert.equal(tf.memory().numTensors, before);
  assertClose(composed, whole, 1e-6, "split at conv2/Relu");

  assert.throws(
    () => splitGraphModel(graph, modelJson, { nodeName: "flatten" }),
    (e: Error) =>
      e instanceof SplitError && /no node named "flatten"/.test(e.message) &&
      e.message.includes("lenet/flatten/Reshape (Reshape)") && e.message.includes("lenet/conv1/Relu (Relu)"),
  );
  assert.throws(
    () => splitGraphModel(graph, modelJson, { nodeName: "lenet/flatten/Const" }),
    (e: Error) => e instanceof SplitError && /does not depend on the input/.test(e.message),
  );
  assert.throws(
    () => splitGraphModel(graph, modelJson, { nodeName: "conv1_input" }),
    (e: Error) => e instanceof SplitError && /"conv1_input": it is the graph.s input/.test(e.message),
  );
  assert.throws(
    () => splitGraphModel(graph, modelJson, { nodeName: "Identity" }),
    (e: Error) => e instanceof SplitError && /"Identity": it is the graph.s output node/.test(e.message),
  );
  assert.throws(
    () => splitGraphModel(graph, modelJson, { inputRange: [1, 0] }),
    (e: Error) => e instanceof SplitError && /inputRange/.test(e.message),
  );
});

Deno.test("GAP net: default split at the Mean output, logits, scores and gradients match", async () => {
  const gap = createGapNet();
  const { graph, modelJson, nodes } = await asGraph(gap);
  assert.equal(defaultSplitNode(nodes), "gapnet/gap/Mean");
  const split = splitGraphModel(graph, modelJson);
  assert.equal(split.layerName, "gapnet/gap/Mean");
  assert.deepEqual(split.body.outputs[0].shape, [null, 8]);
  assert.deepEqual(split.model.outputs[0].shape, [null, 4]);
  assert.equal(split.model.scoreKind, "logits");
  const x = tf.randomUniform([2, 10, 10, 3], 0, 1, "float32", 9);
  const before = tf.memory().numTensors;
  const [layers, whole, composed, gradGraph, gradLayers] = tf.tidy(() => {
    const score = (s: tf.Tensor) => s.slice([0, 1], [-1, 1]).sum();
    return [
      run(gap, x).dataSync(),
      run(split.model, x).dataSync(),
      run(split.head, run(split.body, x)).dataSync(),
      tf.grad((v: tf.Tensor) => score(run(split.model, v)))(x).dataSync(),
      tf.grad((v: tf.Tensor) => score(run(gap, v)))(x).dataSync(),
    ];
  });
  assert.equal(tf.memory().numTensors, before);
  assertClose(whole, layers, 1e-5, "gap graph vs layers");
  assertClose(composed, whole, 1e-6, "gap head(body(x))");
  assertClose(gradGraph, gradLayers, 1e-5, "gap d score / d input");
  const owned = tf.memory().numTensors;
  split.model.dispose();
  assert.ok(tf.memory().numTensors < owned, "model.dispose releases the graph's weights");
  x.dispose();
  gap.dispose();
});

Deno.test("without a convolution the default is the input of the first MatMul after the graph input", async () => {
  const mlp = tf.sequential({ name: "mlp" });
  mlp.add(tf.layers.dense({ name: "hidden", inputShape: [6], units: 5, activation: "relu" }));
  mlp.add(tf.layers.dense({ name: "out", units: 3 }));
  const { graph, modelJson, nodes } = await asGraph(mlp);
  assert.equal(defaultSplitNode(nodes), "mlp/hidden/Relu");
  const split = splitGraphModel(graph, modelJson);
  assert.deepEqual(split.body.outputs[0].shape, [null, 5]);
  split.model.dispose();
  mlp.dispose();
});

Deno.test("defaultSplitNode looks through Identity nodes and refuses a graph without a split point", () => {
  const node = (name: string, op: string, ...inputs: string[]): GraphNodeInfo => ({ name, op, inputs });
  const nodes = [
    node("x", "Placeholder"),
    node("w", "Const"),
    node("w_read", "Identity", "w"),
    node("k", "Const"),
    node("m", "MatMul", "flat_id", "k"),
    node("conv", "_FusedConv2D", "x", "w_read"),
    node("pool", "Mean", "conv", "axes"),
    node("axes", "Const"),
    node("flat_id", "Identity", "pool"),
  ];
  assert.equal(defaultSplitNode(nodes), "pool");
  assert.deepEqual(splitCandidates(nodes), ["conv", "pool", "m"]);
  assert.throws(
    () => defaultSplitNode(nodes.filter((n) => n.op !== "MatMul")),
    (e: Error) => e instanceof SplitError && /no MatMul after the last convolution "conv"/.test(e.message),
  );
  assert.throws(
    () => graphNodes({ modelTopology: { class_name: "Sequential" }, weightsManifest: [] }),
    SplitError,
  );
});

function floats(name: string, shape: number[], seed: number): GraphWeight {
  const n = shape.reduce((a, b) => a * b, 1);
  return {
    name,
    shape,
    dtype: "float32",
    values: Float32Array.from({ length: n }, (_, i) => ((i * seed) % 7) / 7 - 0.4),
  };
}

async function handBuilt(spec: Parameters<typeof writeGraphModelDir>[1]) {
  const dir = await Deno.makeTempDir({ prefix: "graph_split_hand_" });
  await writeGraphModelDir(dir, spec);
  const loaded = { graph: await loadGraphModel(dir), modelJson: await readModelJson(dir) };
  await Deno.remove(dir, { recursive: true });
  return loaded;
}

Deno.test("graphs with two inputs, two outputs or a skip connection are refused", async () => {
  const w = floats("w", [3, 3], 3);
  const matMul = (name: string, input: string) => ({ name, op: "MatMul", input: [input, "w"], attr: {} });
  const twoInputs = await handBuilt({
    nodes: [
      placeholderNode("a", [-1, 3]),
      placeholderNode("b", [-1, 3]),
      {
        name: "sum",
        op: "AddV2",
        input: ["a", "b"],
      },
      constNode(w),
      matMul("m", "sum"),
      unaryNode("Identity", "Identity", "m"),
    ],
    weights: [w],
  });
  assert.throws(() => splitGraphModel(twoInputs.graph, twoInputs.modelJson), /2 inputs .* and 1 outputs/);
  twoInputs.graph.dispose();

  const twoOutputs = await handBuilt({
    nodes: [placeholderNode("x", [-1, 3]), constNode(w), matMul("m", "x"), unaryNode("r", "Relu", "m")]
      .concat([unaryNode("Identity", "Identity", "r"), unaryNode("Identity_1", "Tanh", "m")]),
    weights: [w],
  });
  assert.throws(
    () => splitGraphModel(twoOutputs.graph, twoOutputs.modelJson, { nodeName: "r" }),
    (e: Error) => e instanceof SplitError && /1 inputs .* and 2 outputs/.test(e.message),
  );
  twoOutputs.graph.dispose();

  const skip = await handBuilt({
    nodes: [placeholderNode("x", [-1, 3]), constNode(w), matMul("m", "x"), unaryNode("r", "Relu", "m")]
      .concat([{ name: "res", op: "AddV2", input: ["r", "x"] }, unaryNode("Identity", "Identity", "res")]),
    weights: [w],
  });
  assert.throws(
    () => splitGraphModel(skip.graph, skip.modelJson, { nodeName: "r" }),
    (e: Error) => e instanceof SplitError && /bypasses it \(a skip connection\)/.test(e.message),
  );
  const ok = splitGraphModel(skip.graph, skip.modelJson, { nodeName: "res" });
  assert.equal(ok.model.scoreKind, "logits");
  ok.model.dispose();
});

Deno.test("modelFormat tells a graph model from a layers model", async () => {
  const dir = await Deno.makeTempDir({ prefix: "graph_split_format_" });
  try {
    await convertToGraphModel(lenet, `${dir}/graph`);
    assert.equal(await modelFormat(`${dir}/graph`), "graph-model");
    await saveModel(lenet, `${dir}/layers`);
    assert.equal(await modelFormat(`${dir}/layers`), "layers-model");
    const write = async (name: string, json: unknown) => {
      await Deno.mkdir(`${dir}/${name}`);
      await Deno.writeTextFile(`${dir}/${name}/model.json`, JSON.stringify(json));
    };
    await write("bare_graph", { modelTopology: { node: [{ name: "x", op: "Placeholder" }] } });
    assert.equal(await modelFormat(`${dir}/bare_graph`), "graph-model");
    await write("bare_layers", { modelTopology: { class_name: "Sequential", config: {} } });
    assert.equal(await modelFormat(`${dir}/bare_layers`), "layers-model");
    await write("odd", { format: "tfjs-odd", modelTopology: {} });
    await assert.rejects(
      modelFormat(`${dir}/odd`),
      (e: Error) => e instanceof ModelFileError && /"format"/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
