/**
 * The paper-scale image classifiers for 32x32 RGB data (CIFAR-10, GTSRB), one per layer kind NIP hooks:
 *
 * - {@link createVgg}: a VGG-style net (pairs of 3x3 conv + batch norm + ReLU, max-pool) ending in a
 *   Flatten layer ("flatten") before its dense head, the paper's VGG case.
 * - {@link createResNet}: a ResNet (He et al. 2016, CIFAR variant: 3 stages of `blocks` basic blocks at
 *   `width`, 2x`width`, 4x`width` channels; `blocks = 3` and `width = 16` is ResNet-20) ending in global
 *   average pooling ("gap") before its logits, the paper's ResNet/GAP case.
 *
 * Both end in a "logits" dense layer and a separate "softmax" activation, as the default LeNet does, so the
 * engine's split, the attacks and the stages treat all models alike. Every initialiser is seeded.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Name of the Flatten layer of {@link createVgg}. */
export const VGG_FLATTEN_LAYER = "flatten";
/** Name of the global-average-pooling layer of {@link createResNet}. */
export const RESNET_GAP_LAYER = "gap";

/** Options common to {@link createVgg} and {@link createResNet}. */
export interface ImageNetOptions {
  /** Input image shape; default [32, 32, 3]. */
  inputShape?: [number, number, number];
  /** Number of classes; default 10. */
  classes?: number;
  /** Seed of the weight initialisers; default 1. */
  seed?: number;
  /** Adam learning rate; default 0.001. */
  learningRate?: number;
  /** L2 weight decay on conv and dense kernels; default 5e-4 (0: none). */
  weightDecay?: number;
}

/** Options of {@link createVgg}. */
export interface VggOptions extends ImageNetOptions {
  /** Filters of each block of two convs, each block followed by a 2x2 max-pool; default [32, 64, 128]. */
  blocks?: number[];
  /** Units of the hidden dense layer after the Flatten; default 256. */
  denseUnits?: number;
  /** Dropout rate before the logits; default 0.3. */
  dropout?: number;
}

/** Options of {@link createResNet}. */
export interface ResNetOptions extends ImageNetOptions {
  /** Basic blocks per stage; default 3 (ResNet-20). */
  blocks?: number;
  /** Channels of the first stage; default 16. */
  width?: number;
}

function seeded(seed: number) {
  let next = 0;
  return () => tf.initializers.heNormal({ seed: seed * 1000 + ++next });
}

function regularizer(weightDecay: number | undefined) {
  const decay = weightDecay ?? 5e-4;
  return decay > 0 ? tf.regularizers.l2({ l2: decay }) : undefined;
}

function compile(model: tf.LayersModel, learningRate: number | undefined): void {
  model.compile({
    optimizer: tf.train.adam(learningRate ?? 0.001),
    loss: "categoricalCrossentropy",
    metrics: ["accuracy"],
  });
}

/** Builds and compiles the VGG-style classifier (see the module doc). */
export function createVgg(options: VggOptions = {}): tf.Sequential {
  const kernel = seeded(options.seed ?? 1);
  const kernelRegularizer = regularizer(options.weightDecay);
  const model = tf.sequential({ name: "vgg" });
  let first = true;
  (options.blocks ?? [32, 64, 128]).forEach((filters, block) => {
    for (let conv = 1; conv <= 2; conv++) {
      const name = `block${block + 1}_conv${conv}`;
      model.add(tf.layers.conv2d({
        name,
        ...(first ? { inputShape: options.inputShape ?? [32, 32, 3] } : {}),
        filters,
        kernelSize: 3,
        padding: "same",
        useBias: false,
        kernelInitializer: kernel(),
        kernelRegularizer,
      }));
      first = false;
      model.add(tf.layers.batchNormalization({ name: `${name}_bn` }));
      model.add(tf.layers.activation({ name: `${name}_relu`, activation: "relu" }));
    }
    model.add(tf.layers.maxPooling2d({ name: `block${block + 1}_pool`, poolSize: 2, strides: 2 }));
  });
  model.add(tf.layers.flatten({ name: VGG_FLATTEN_LAYER }));
  model.add(tf.layers.dense({
    name: "dense1",
    units: options.denseUnits ?? 256,
    activation: "relu",
    kernelInitializer: kernel(),
    kernelRegularizer,
  }));
  model.add(tf.layers.dropout({ name: "dropout", rate: options.dropout ?? 0.3, seed: options.seed ?? 1 }));
  model.add(tf.layers.dense({
    name: "logits",
    units: options.classes ?? 10,
    kernelInitializer: kernel(),
    kernelRegularizer,
  }));
  model.add(tf.layers.activation({ name: "softmax", activation: "softmax" }));
  compile(model, options.learningRate);
  return model;
}

/** Builds and compiles the CIFAR ResNet (see the module doc). */
export function createResNet(options: ResNetOptions = {}): tf.LayersModel {
  const kernel = seeded(options.seed ?? 1);
  const kernelRegularizer = regularizer(options.weightDecay);
  const width = options.width ?? 16;
  const blocks = options.blocks ?? 3;
  const conv = (x: tf.SymbolicTensor, name: string, filters: number, strides: number, size = 3) =>
    tf.layers.conv2d({
      name,
      filters,
      kernelSize: size,
      strides,
      padding: "same",
      useBias: false,
      kernelInitializer: kernel(),
      kernelRegularizer,
    }).apply(x) as tf.SymbolicTensor;
  const bn = (x: tf.SymbolicTensor, name: string) =>
    tf.layers.batchNormalization({ name }).apply(x) as tf.SymbolicTensor;
  const relu = (x: tf.SymbolicTensor, name: string) =>
    tf.layers.activation({ name, activation: "relu" }).apply(x) as tf.SymbolicTensor;

  const input = tf.input({ shape: options.inputShape ?? [32, 32, 3], name: "input" });
  let x = relu(bn(conv(input, "stem_conv", width, 1), "stem_bn"), "stem_relu");
  for (let stage = 0; stage < 3; stage++) {
    const filters = width * 2 ** stage;
    for (let block = 0; block < blocks; block++) {
      const name = `s${stage + 1}b${block + 1}`;
      const strides = stage > 0 && block === 0 ? 2 : 1;
      let y = relu(bn(conv(x, `${name}_conv1`, filters, strides), `${name}_bn1`), `${name}_relu1`);
      y = bn(conv(y, `${name}_conv2`, filters, 1), `${name}_bn2`);
      const shortcut = block > 0 || stage === 0
        ? x
        : bn(conv(x, `${name}_proj`, filters, strides, 1), `${name}_proj_bn`);
      x = relu(
        tf.layers.add({ name: `${name}_add` }).apply([y, shortcut]) as tf.SymbolicTensor,
        `${name}_out`,
      );
    }
  }
  const pooled = tf.layers.globalAveragePooling2d({ name: RESNET_GAP_LAYER }).apply(x) as tf.SymbolicTensor;
  const logits = tf.layers.dense({
    name: "logits",
    units: options.classes ?? 10,
    kernelInitializer: kernel(),
    kernelRegularizer,
  }).apply(pooled) as tf.SymbolicTensor;
  const output = tf.layers.activation({ name: "softmax", activation: "softmax" }).apply(
    logits,
  ) as tf.SymbolicTensor;
  const model = tf.model({ name: "resnet", inputs: input, outputs: output });
  compile(model, options.learningRate);
  return model;
}
