import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../src/engine/backend.ts";
import { COMPOSED_WASM_KERNELS, registerComposedWasmKernels } from "../src/engine/kernels.ts";
import { sharedDataDir } from "../src/data/shared_data.ts";

await initBackend("wasm");

const TOLERANCE = 1e-4;
const CIFAR_BATCH = `${sharedDataDir()}/cifar10/data_batch_1.bin`;
const CIFAR_RECORD_BYTES = 3073;

type Shape4 = [number, number, number, number];
type Padding = "same" | "valid" | number | tf.backend_util.ExplicitPadding;

/** Deterministic pseudo-random values in [-1, 1) (a small LCG, so cpu and wasm see the same inputs). */
function values(shape: number[], seed: number): Float32Array {
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  let state = (seed * 2654435761) >>> 0;
  for (let i = 0; i < out.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2 ** 31 - 1;
  }
  return out;
}

/** Max absolute difference relative to the reference's largest magnitude. */
function relativeError(actual: Float32Array, expected: Float32Array): number {
  assert.equal(actual.length, expected.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / Math.max(scale, 1e-12);
}

interface KernelRun {
  shape: number[];
  data: Float32Array;
}

function runKernelOn(
  backend: "cpu" | "wasm",
  kernelName: string,
  inputs: Record<string, { shape: number[]; seed: number }>,
  attrs: Record<string, unknown>,
): KernelRun {
  tf.setBackend(backend);
  try {
    return tf.tidy(() => {
      const tensors: tf.NamedTensorMap = {};
      for (const [name, { shape, seed }] of Object.entries(inputs)) {
        tensors[name] = tf.tensor(values(shape, seed), shape);
      }
      const out = tf.engine().runKernel(
        kernelName,
        tensors,
        attrs as unknown as tf.NamedAttrMap,
      ) as tf.Tensor;
      return { shape: out.shape, data: out.dataSync() as Float32Array };
    });
  } finally {
    tf.setBackend("wasm");
  }
}

function assertMatchesCpu(
  kernelName: string,
  inputs: Record<string, { shape: number[]; seed: number }>,
  attrs: Record<string, unknown>,
  label: string,
): number {
  const before = tf.memory().numTensors;
  const expected = runKernelOn("cpu", kernelName, inputs, attrs);
  const actual = runKernelOn("wasm", kernelName, inputs, attrs);
  assert.deepEqual(actual.shape, expected.shape, `${kernelName} ${label}: shape`);
  const error = relativeError(actual.data, expected.data);
  assert.ok(error < TOLERANCE, `${kernelName} ${label}: relative error ${error}`);
  assert.equal(tf.memory().numTensors, before, `${kernelName} ${label}: leaked tensors`);
  return error;
}

const PADDINGS: Padding[] = ["same", "valid", 1, [[0, 0], [2, 1], [0, 2], [0, 0]]];
const CASES: { x: Shape4; kernel: [number, number]; stride: number }[] = [
  { x: [2, 9, 8, 3], kernel: [3, 2], stride: 1 },
  { x: [2, 9, 8, 3], kernel: [3, 3], stride: 2 },
  { x: [1, 11, 7, 2], kernel: [2, 3], stride: 3 },
  { x: [3, 6, 6, 1], kernel: [5, 5], stride: 2 },
  { x: [1, 5, 5, 4], kernel: [1, 1], stride: 1 },
];

function convOutShape(x: Shape4, filter: Shape4, stride: number, pad: Padding, depthwise: boolean): Shape4 {
  const info = tf.backend_util.computeConv2DInfo(x, filter, stride, 1, pad, undefined, depthwise);
  return info.outShape;
}

/**
 * Every case x padding, with a filter shape (last axis 4 output channels, or for depthwise each multiplier
 * 1 and 2), the forward output shape and a label for messages.
 */
function* convCases(depthwise: boolean) {
  for (const { x, kernel, stride } of CASES) {
    for (const pad of PADDINGS) {
      for (const last of depthwise ? [1, 2] : [4]) {
        const filterShape: Shape4 = [kernel[0], kernel[1], x[3], last];
        const dy = convOutShape(x, filterShape, stride, pad, depthwise);
        const multiplier = depthwise ? ` m=${last}` : "";
        const label = `x=${x} k=${kernel} s=${stride}${multiplier} pad=${JSON.stringify(pad)}`;
        yield { x, stride, pad, filterShape, dy, label };
      }
    }
  }
}

/** Inputs (by kernel input name) and shape attribute of a Conv2D backprop kernel for one case. */
type ConvOperands = (
  shapes: { x: Shape4; filterShape: Shape4; dy: Shape4 },
  seed: number,
) => { inputs: Record<string, { shape: number[]; seed: number }>; attrs: Record<string, unknown> };

/**
 * Checks a Conv2D backprop kernel against cpu on every NHWC case (input seeds from `seed`), then on an NCHW
 * case (x [2, 3, 9, 8], a 3x3 filter to 5 channels, stride 2, padding `nchwPad`; seeds from `seed + 2`).
 */
function assertConvBackpropMatchesCpu(
  kernelName: string,
  seed: number,
  nchwPad: Padding,
  operands: ConvOperands,
): void {
  let worst = 0;
  for (const { x, stride, pad, filterShape, dy, label } of convCases(false)) {
    const { inputs, attrs } = operands({ x, filterShape, dy }, seed);
    const all = { strides: [stride, stride], pad, dataFormat: "NHWC", ...attrs };
    worst = Math.max(worst, assertMatchesCpu(kernelName, inputs, all, label));
  }
  const filterShape: Shape4 = [3, 3, 3, 5];
  const dy = convOutShape([2, 9, 8, 3], filterShape, 2, nchwPad, false);
  const nchw = operands({ x: [2, 3, 9, 8], filterShape, dy: [dy[0], dy[3], dy[1], dy[2]] }, seed + 2);
  const all = { strides: [2, 2], pad: nchwPad, dataFormat: "NCHW", ...nchw.attrs };
  assertMatchesCpu(kernelName, nchw.inputs, all, "NCHW");
  console.log(`${kernelName} worst relative error ${worst.toExponential(2)}`);
}

Deno.test("registerComposedWasmKernels installs every kernel for wasm and is idempotent", () => {
  registerComposedWasmKernels();
  registerComposedWasmKernels();
  for (const [name, kernelFunc] of Object.entries(COMPOSED_WASM_KERNELS)) {
    assert.equal(tf.getKernel(name, "wasm")?.kernelFunc, kernelFunc, name);
  }
});

Deno.test("Conv2DBackpropFilter on wasm matches cpu (strides, paddings, shapes, NCHW)", () => {
  assertConvBackpropMatchesCpu("Conv2DBackpropFilter", 1, "same", ({ x, filterShape, dy }, seed) => ({
    inputs: { x: { shape: x, seed }, dy: { shape: dy, seed: seed + 1 } },
    attrs: { filterShape },
  }));
});

Deno.test("Conv2DBackpropInput (replacement) on wasm matches cpu (strides, paddings, shapes, NCHW)", () => {
  assertConvBackpropMatchesCpu("Conv2DBackpropInput", 5, "valid", ({ x, filterShape, dy }, seed) => ({
    inputs: { dy: { shape: dy, seed }, filter: { shape: filterShape, seed: seed + 1 } },
    attrs: { inputShape: x },
  }));
});

Deno.test("DepthwiseConv2dNative backprop kernels on wasm match cpu (multipliers 1 and 2)", () => {
  let worstFilter = 0;
  let worstInput = 0;
  for (const { x, stride, pad, filterShape, dy, label } of convCases(true)) {
    const common = { strides: [stride, stride], pad, dilations: [1, 1] };
    worstFilter = Math.max(
      worstFilter,
      assertMatchesCpu(
        "DepthwiseConv2dNativeBackpropFilter",
        { x: { shape: x, seed: 9 }, dy: { shape: dy, seed: 10 } },
        { ...common, filterShape },
        label,
      ),
    );
    worstInput = Math.max(
      worstInput,
      assertMatchesCpu(
        "DepthwiseConv2dNativeBackpropInput",
        { dy: { shape: dy, seed: 11 }, filter: { shape: filterShape, seed: 12 } },
        { ...common, inputShape: x },
        label,
      ),
    );
  }
  console.log(
    `Depthwise backprop worst relative error: filter ${worstFilter.toExponential(2)}, input ${
      worstInput.toExponential(2)
    }`,
  );
});

Deno.test("depthwise backprop kernels with dilations are the adjoints of the forward conv", () => {
  // The cpu reference ignores dilations in its backprop-filter loop, so check the defining identity
  // <conv(x, f), dy> = <x, dX(dy, f)> = <f, dF(x, dy)> against wasm's own dilated forward conv.
  const before = tf.memory().numTensors;
  for (const dilation of [2, 3]) {
    for (const pad of ["same", "valid", [[0, 0], [1, 2], [3, 0], [0, 0]]] as Padding[]) {
      const xShape: Shape4 = [2, 12, 11, 3];
      const filterShape: Shape4 = [3, 2, 3, 2];
      const [lhs, viaInput, viaFilter] = tf.tidy(() => {
        const x = tf.tensor4d(values(xShape, 13), xShape);
        const f = tf.tensor4d(values(filterShape, 14), filterShape);
        const y = tf.depthwiseConv2d(x, f, 1, pad, "NHWC", dilation);
        const dy = tf.tensor(values(y.shape, 15), y.shape);
        const attrs = { strides: [1, 1], pad, dilations: [dilation, dilation] } as unknown as tf.NamedAttrMap;
        const dx = tf.engine().runKernel("DepthwiseConv2dNativeBackpropInput", { dy, filter: f }, {
          ...attrs,
          inputShape: xShape,
        }) as tf.Tensor;
        const df = tf.engine().runKernel("DepthwiseConv2dNativeBackpropFilter", { x, dy }, {
          ...attrs,
          filterShape,
        }) as tf.Tensor;
        assert.deepEqual(dx.shape, xShape);
        assert.deepEqual(df.shape, filterShape);
        return [tf.sum(tf.mul(y, dy)), tf.sum(tf.mul(x, dx)), tf.sum(tf.mul(f, df))].map((t) =>
          t.dataSync()[0]
        );
      });
      const label = `dilation ${dilation} pad ${JSON.stringify(pad)}`;
      assert.ok(
        Math.abs(viaInput - lhs) <= TOLERANCE * Math.abs(lhs) + 1e-4,
        `${label}: ${viaInput} vs ${lhs}`,
      );
      assert.ok(
        Math.abs(viaFilter - lhs) <= TOLERANCE * Math.abs(lhs) + 1e-4,
        `${label}: ${viaFilter} vs ${lhs}`,
      );
    }
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("BatchMatMul wrapper on wasm matches cpu for every transpose combination, ranks 2-4", () => {
  const shapes: { a: number[]; b: number[] }[] = [
    { a: [5, 7], b: [7, 3] },
    { a: [2, 5, 7], b: [2, 7, 3] },
    { a: [2, 5, 7], b: [1, 7, 3] },
    { a: [2, 3, 4, 6], b: [2, 3, 6, 5] },
  ];
  const swap = (s: number[]) => [...s.slice(0, -2), s[s.length - 1], s[s.length - 2]];
  for (const { a, b } of shapes) {
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        assertMatchesCpu(
          "BatchMatMul",
          {
            a: { shape: transposeA ? swap(a) : a, seed: 31 },
            b: { shape: transposeB ? swap(b) : b, seed: 32 },
          },
          { transposeA, transposeB },
          `a=${a} b=${b} tA=${transposeA} tB=${transposeB}`,
        );
      }
    }
  }
});

/** Gradients of sum(op(x, f) * w) with respect to x and f, computed on one backend. */
function opGradients(
  backend: "cpu" | "wasm",
  op: (x: tf.Tensor4D, f: tf.Tensor4D) => tf.Tensor4D,
  xShape: Shape4,
  fShape: Shape4,
): Float32Array[] {
  tf.setBackend(backend);
  try {
    return tf.tidy(() => {
      const x = tf.tensor4d(values(xShape, 21), xShape);
      const f = tf.tensor4d(values(fShape, 22), fShape);
      const weights = tf.tensor(values(op(x, f).shape, 23), op(x, f).shape);
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(op(a as tf.Tensor4D, b as tf.Tensor4D), weights))
      )([x, f]);
      return grads.map((g) => g.dataSync() as Float32Array);
    });
  } finally {
    tf.setBackend("wasm");
  }
}

Deno.test("tf.grads through conv2d, depthwiseConv2d and separableConv2d on wasm matches cpu, no leaks", () => {
  const before = tf.memory().numTensors;
  const ops: { name: string; op: (x: tf.Tensor4D, f: tf.Tensor4D) => tf.Tensor4D; f: Shape4 }[] = [
    { name: "conv2d s2 same", op: (x, f) => tf.conv2d(x, f, 2, "same"), f: [3, 3, 3, 6] },
    { name: "conv2d s1 valid", op: (x, f) => tf.conv2d(x, f, 1, "valid"), f: [5, 3, 3, 2] },
    { name: "depthwise s2 same", op: (x, f) => tf.depthwiseConv2d(x, f, 2, "same"), f: [3, 3, 3, 2] },
    {
      name: "separable s1 valid",
      op: (x, f) => tf.separableConv2d(x, f, tf.ones([1, 1, 6, 4]) as tf.Tensor4D, 1, "valid"),
      f: [3, 3, 3, 2],
    },
  ];
  for (const { name, op, f } of ops) {
    const expected = opGradients("cpu", op, [2, 10, 9, 3], f);
    const actual = opGradients("wasm", op, [2, 10, 9, 3], f);
    for (let i = 0; i < 2; i++) {
      const error = relativeError(actual[i], expected[i]);
      assert.ok(error < TOLERANCE, `${name} grad ${i === 0 ? "x" : "filter"}: relative error ${error}`);
    }
  }
  assert.equal(tf.memory().numTensors, before);
});

/** The first `count` CIFAR-10 records as [count, 32, 32, 3] floats in [0, 1] and integer labels. */
async function readCifar(count: number): Promise<{ images: Float32Array; labels: Int32Array }> {
  const file = await Deno.open(CIFAR_BATCH, { read: true });
  try {
    const bytes = new Uint8Array(count * CIFAR_RECORD_BYTES);
    let filled = 0;
    while (filled < bytes.length) {
      const n = await file.read(bytes.subarray(filled));
      if (n === null) throw new Error(`${CIFAR_BATCH}: ended at byte ${filled}, wanted ${bytes.length}`);
      filled += n;
    }
    const images = new Float32Array(count * 3072);
    const labels = new Int32Array(count);
    for (let r = 0; r < count; r++) {
      const record = bytes.subarray(r * CIFAR_RECORD_BYTES, (r + 1) * CIFAR_RECORD_BYTES);
      labels[r] = record[0];
      // Stored channel-major (1024 R, 1024 G, 1024 B); convert to HWC.
      for (let p = 0; p < 1024; p++) {
        for (let c = 0; c < 3; c++) images[r * 3072 + p * 3 + c] = record[1 + c * 1024 + p] / 255;
      }
    }
    return { images, labels };
  } finally {
    file.close();
  }
}

function tinyCnn(): tf.Sequential {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  const model = tf.sequential();
  model.add(tf.layers.conv2d({
    inputShape: [32, 32, 3],
    filters: 8,
    kernelSize: 3,
    activation: "relu",
    kernelInitializer: init(1),
  }));
  model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  model.add(tf.layers.separableConv2d({
    filters: 8,
    kernelSize: 3,
    strides: 2,
    padding: "same",
    activation: "relu",
    depthwiseInitializer: init(2),
    pointwiseInitializer: init(3),
  }));
  model.add(tf.layers.flatten());
  model.add(tf.layers.dense({ units: 10, kernelInitializer: init(4) }));
  return model;
}

Deno.test("a tiny CNN trains on wasm: gradients flow into conv kernels and the loss decreases", async () => {
  const { images, labels } = await readCifar(64);
  const before = tf.memory().numTensors;
  const model = tinyCnn();
  const xs = tf.tensor4d(images, [64, 32, 32, 3]);
  const ys = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, "int32"), 10));
  const optimizer = tf.train.adam(0.01);
  const lossOf = () => tf.losses.softmaxCrossEntropy(ys, model.apply(xs) as tf.Tensor) as tf.Scalar;

  const { value, grads } = tf.variableGrads(lossOf);
  const firstLoss = (await value.data())[0];
  for (const weight of model.trainableWeights.filter((w) => w.name.includes("kernel"))) {
    const grad = grads[(weight.read() as tf.Variable).name];
    assert.ok(grad !== undefined, `no gradient for ${weight.name}`);
    const normTensor = tf.norm(grad);
    const norm = (await normTensor.data())[0];
    normTensor.dispose();
    assert.ok(Number.isFinite(norm) && norm > 0, `gradient of ${weight.name} is ${norm}`);
  }
  tf.dispose([value, grads]);

  let lastLoss = firstLoss;
  for (let step = 0; step < 10; step++) {
    const loss = optimizer.minimize(lossOf, true) as tf.Scalar;
    lastLoss = (await loss.data())[0];
    loss.dispose();
  }
  assert.ok(lastLoss < firstLoss * 0.9, `loss went from ${firstLoss} to ${lastLoss}`);

  tf.dispose([xs, ys]);
  optimizer.dispose();
  model.dispose();
  assert.equal(tf.memory().numTensors, before);
});
