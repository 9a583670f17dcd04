/**
 * Graph models for the tests, without Python: {@link convertToGraphModel} writes a small Sequential
 * LayersModel as the directory `tensorflowjs_converter --input_format=tf_saved_model` would write for
 * it (model.json with `format: "graph-model"`, the GraphDef's nodes in JSON form, one weights file),
 * and {@link writeGraphModelDir} writes any hand-built node list.
 *
 * The nodes are left unfused (Conv2D + BiasAdd + Relu, MatMul + BiasAdd) and the attributes use the
 * encodings tfjs-converter's operation mapper reads: int lists as `{list: {i: [...]}}` of strings,
 * strings as base64 `s`, dtypes as `{type: "DT_FLOAT"}`, shapes as `{dim: [{size: "-1"}, ...]}`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** One node of a GraphDef in the JSON form of a graph-model's `modelTopology.node`. */
export interface GraphDefNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, unknown>;
}

/** A weight stored in the weights file, read by the Const node of the same name. */
export interface GraphWeight {
  name: string;
  shape: number[];
  dtype: "float32" | "int32";
  values: Float32Array | Int32Array;
}

/** Contents of a graph-model directory for {@link writeGraphModelDir}. */
export interface GraphModelSpec {
  nodes: GraphDefNode[];
  weights: GraphWeight[];
  /** The converter's `signature`; without it tfjs takes the Placeholders and the unconsumed nodes. */
  signature?: Record<string, unknown>;
}

/** Name of the weights file the fixture writes. */
export const GRAPH_WEIGHTS_FILE = "group1-shard1of1.bin";

const DTYPE_ENUM = { float32: "DT_FLOAT", int32: "DT_INT32" } as const;
const FLOAT = { type: "DT_FLOAT" };
const NHWC = { s: btoa("NHWC") };

/** A TensorShapeProto in JSON form (dimension sizes are int64, so strings). */
export function dims(shape: readonly number[]): { dim: { size: string }[] } {
  return { dim: shape.map((size) => ({ size: String(size) })) };
}

function ints(values: readonly number[]): { list: { i: string[] } } {
  return { list: { i: values.map(String) } };
}

/** A Placeholder (graph input) of a float32 tensor; -1 marks an unknown dimension. */
export function placeholderNode(name: string, shape: readonly number[]): GraphDefNode {
  return { name, op: "Placeholder", attr: { dtype: FLOAT, shape: { shape: dims(shape) } } };
}

/** A Const node whose value is the weight of the same name. */
export function constNode(weight: GraphWeight): GraphDefNode {
  const dtype = DTYPE_ENUM[weight.dtype];
  return {
    name: weight.name,
    op: "Const",
    attr: { value: { tensor: { dtype, tensorShape: dims(weight.shape) } }, dtype: { type: dtype } },
  };
}

/** A one-input op with just the `T` attribute (Relu, Softmax, Identity, ...). */
export function unaryNode(name: string, op: string, input: string): GraphDefNode {
  return { name, op, input: [input], attr: { T: FLOAT } };
}

/** Writes `dir/model.json` and `dir/group1-shard1of1.bin` for a graph model. */
export async function writeGraphModelDir(dir: string, spec: GraphModelSpec): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const total = spec.weights.reduce((n, w) => n + w.values.byteLength, 0);
  const data = new Uint8Array(total);
  let offset = 0;
  for (const w of spec.weights) {
    data.set(new Uint8Array(w.values.buffer, w.values.byteOffset, w.values.byteLength), offset);
    offset += w.values.byteLength;
  }
  await Deno.writeFile(`${dir}/${GRAPH_WEIGHTS_FILE}`, data);
  const modelJson = {
    format: "graph-model",
    generatedBy: "2.15.0",
    convertedBy: "TensorFlow.js Converter v4.22.0",
    ...(spec.signature === undefined ? {} : { signature: spec.signature }),
    modelTopology: { node: spec.nodes, library: {}, versions: { producer: 1645 } },
    weightsManifest: [{
      paths: [GRAPH_WEIGHTS_FILE],
      weights: spec.weights.map(({ name, shape, dtype }) => ({ name, shape, dtype })),
    }],
  };
  await Deno.writeTextFile(`${dir}/model.json`, JSON.stringify(modelJson, null, 1));
}

const ACTIVATION_OPS: Record<string, string | null> = {
  linear: null,
  relu: "Relu",
  relu6: "Relu6",
  sigmoid: "Sigmoid",
  tanh: "Tanh",
  softmax: "Softmax",
};

/** Builds the GraphDef of a Sequential model layer by layer (the converter's naming: model/layer/Op). */
class GraphBuilder {
  readonly nodes: GraphDefNode[] = [];
  readonly weights: GraphWeight[] = [];
  /** Name of the node whose output is the current value. */
  current: string;

  constructor(readonly prefix: string, input: string, inputShape: readonly number[]) {
    this.nodes.push(placeholderNode(input, [-1, ...inputShape]));
    this.current = input;
  }

  weight(name: string, tensor: tf.Tensor): string {
    const dtype = tensor.dtype === "int32" ? "int32" : "float32";
    const values = dtype === "int32"
      ? Int32Array.from(tensor.dataSync())
      : Float32Array.from(tensor.dataSync());
    const w: GraphWeight = { name, shape: tensor.shape, dtype, values };
    this.weights.push(w);
    this.nodes.push(constNode(w));
    return name;
  }

  intConst(name: string, values: number[]): string {
    const w: GraphWeight = { name, shape: [values.length], dtype: "int32", values: Int32Array.from(values) };
    this.weights.push(w);
    this.nodes.push(constNode(w));
    return name;
  }

  op(node: GraphDefNode): void {
    this.nodes.push(node);
    this.current = node.name;
  }

  activation(layer: string, activation: string | undefined): void {
    const op = ACTIVATION_OPS[activation ?? "linear"];
    if (op === undefined) throw new Error(`graph fixture: activation "${activation}" is not supported`);
    if (op !== null) this.op(unaryNode(`${this.prefix}/${layer}/${op}`, op, this.current));
  }

  biasAdd(layer: string, bias: tf.LayerVariable | undefined): void {
    if (bias === undefined) return;
    const b = this.weight(`${this.prefix}/${layer}/BiasAdd/ReadVariableOp`, bias.read());
    this.op({
      name: `${this.prefix}/${layer}/BiasAdd`,
      op: "BiasAdd",
      input: [this.current, b],
      attr: { T: FLOAT, data_format: NHWC },
    });
  }
}

type LayerConfig = Record<string, unknown>;

function pair(value: unknown): [number, number] {
  return Array.isArray(value) ? [value[0], value[1]] : [value as number, value as number];
}

function padding(config: LayerConfig): { s: string } {
  return { s: btoa(String(config.padding ?? "valid").toUpperCase()) };
}

function addLayer(g: GraphBuilder, layer: tf.layers.Layer): void {
  const config = layer.getConfig() as LayerConfig;
  const name = layer.name;
  const [kernel, bias] = layer.weights;
  const at = (op: string) => `${g.prefix}/${name}/${op}`;
  switch (layer.getClassName()) {
    case "InputLayer":
    case "Dropout":
      return;
    case "Conv2D": {
      const [sh, sw] = pair(config.strides ?? 1);
      const [dh, dw] = pair(config.dilationRate ?? 1);
      const filter = g.weight(at("Conv2D/ReadVariableOp"), kernel.read());
      g.op({
        name: at("Conv2D"),
        op: "Conv2D",
        input: [g.current, filter],
        attr: {
          T: FLOAT,
          strides: ints([1, sh, sw, 1]),
          padding: padding(config),
          data_format: NHWC,
          dilations: ints([1, dh, dw, 1]),
          use_cudnn_on_gpu: { b: true },
          explicit_paddings: { list: {} },
        },
      });
      g.biasAdd(name, bias);
      return g.activation(name, config.activation as string);
    }
    case "MaxPooling2D":
    case "AveragePooling2D": {
      const op = layer.getClassName() === "MaxPooling2D" ? "MaxPool" : "AvgPool";
      const [kh, kw] = pair(config.poolSize);
      const [sh, sw] = pair(config.strides ?? config.poolSize);
      return g.op({
        name: at(op),
        op,
        input: [g.current],
        attr: {
          T: FLOAT,
          ksize: ints([1, kh, kw, 1]),
          strides: ints([1, sh, sw, 1]),
          padding: padding(config),
          data_format: NHWC,
        },
      });
    }
    case "Flatten": {
      const features = (layer.outputShape as number[])[1];
      const shape = g.intConst(at("Const"), [-1, features]);
      return g.op({
        name: at("Reshape"),
        op: "Reshape",
        input: [g.current, shape],
        attr: { T: FLOAT, Tshape: { type: "DT_INT32" } },
      });
    }
    case "GlobalAveragePooling2D": {
      const axes = g.intConst(at("Mean/reduction_indices"), [1, 2]);
      return g.op({
        name: at("Mean"),
        op: "Mean",
        input: [g.current, axes],
        attr: { T: FLOAT, Tidx: { type: "DT_INT32" }, keep_dims: { b: false } },
      });
    }
    case "Dense": {
      const matrix = g.weight(at("MatMul/ReadVariableOp"), kernel.read());
      g.op({
        name: at("MatMul"),
        op: "MatMul",
        input: [g.current, matrix],
        attr: { T: FLOAT, transpose_a: { b: false }, transpose_b: { b: false } },
      });
      g.biasAdd(name, bias);
      return g.activation(name, config.activation as string);
    }
    case "Activation":
      return g.activation(name, config.activation as string);
    default:
      throw new Error(`graph fixture: layer class ${layer.getClassName()} (${name}) is not supported`);
  }
}

/** The GraphDef nodes and weights of a Sequential model, with its signature. */
export function graphSpecOf(model: tf.LayersModel): GraphModelSpec {
  const inputShape = model.inputs[0].shape.slice(1) as number[];
  const layers = model.layers.filter((l) => l.getClassName() !== "InputLayer");
  const input = `${layers[0].name}_input`;
  const g = new GraphBuilder(model.name, input, inputShape);
  for (const layer of layers) addLayer(g, layer);
  g.op(unaryNode("Identity", "Identity", g.current));
  const outputShape = (model.outputs[0].shape as (number | null)[]).map((d) => d ?? -1);
  const signature = {
    inputs: { [input]: { name: `${input}:0`, dtype: "DT_FLOAT", tensorShape: dims([-1, ...inputShape]) } },
    outputs: {
      [layers[layers.length - 1].name]: {
        name: "Identity:0",
        dtype: "DT_FLOAT",
        tensorShape: dims(outputShape),
      },
    },
  };
  return { nodes: g.nodes, weights: g.weights, signature };
}

/** Writes a Sequential LayersModel as a graph-model directory at `dir` (the converter's output form). */
export async function convertToGraphModel(model: tf.LayersModel, dir: string): Promise<void> {
  await writeGraphModelDir(dir, graphSpecOf(model));
}

/** A tiny classifier ending in global average pooling and a dense layer (logits): 10x10x3 -> 4. */
export function createGapNet(seed = 7): tf.Sequential {
  const init = (offset: number) => tf.initializers.glorotUniform({ seed: seed * 16 + offset });
  const model = tf.sequential({ name: "gapnet" });
  model.add(tf.layers.conv2d({
    name: "conv_a",
    inputShape: [10, 10, 3],
    filters: 6,
    kernelSize: 3,
    padding: "same",
    activation: "relu",
    kernelInitializer: init(1),
    biasInitializer: tf.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: seed * 16 + 2 }),
  }));
  model.add(tf.layers.conv2d({
    name: "conv_b",
    filters: 8,
    kernelSize: 3,
    strides: 2,
    activation: "relu",
    kernelInitializer: init(3),
  }));
  model.add(tf.layers.globalAveragePooling2d({ name: "gap" }));
  model.add(tf.layers.dense({ name: "logits", units: 4, kernelInitializer: init(4) }));
  return model;
}
