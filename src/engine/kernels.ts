/**
 * Gradient kernels for the wasm backend, composed from ops the backend already has.
 *
 * The wasm backend of TensorFlow.js 4.22 lacks `Conv2DBackpropFilter`,
 * `DepthwiseConv2dNativeBackpropFilter` and `DepthwiseConv2dNativeBackpropInput`, so training a CNN
 * fails there, and its own `Conv2DBackpropInput` is a slow scalar loop. This module registers:
 *
 * - `Conv2DBackpropFilter`: one conv2d of the transposed input `[Cin, H, W, N]` with the transposed
 *   output gradient `[Ho, Wo, N, Cout]` as filter, dilation = the forward stride.
 * - `Conv2DBackpropInput` (replaces the stock kernel): conv2d of the stride-dilated output gradient with
 *   the spatially flipped, in/out-swapped filter.
 * - `DepthwiseConv2dNativeBackpropInput`: the same trick with a depthwise conv (dilations supported).
 * - `DepthwiseConv2dNativeBackpropFilter`: one patch per filter tap (strided slices), then one batched
 *   matmul per channel.
 * - `BatchMatMul` (wraps the stock kernel): transposed operands are transposed physically first, since
 *   the stock kernel is 10-25x slower with `transposeA`/`transposeB` (every dense-layer gradient).
 *
 * All support NHWC (conv2d also NCHW), strides, 'same' / 'valid' / numeric / explicit padding and
 * `dimRoundingMode`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

type Padding = "valid" | "same" | number | tf.backend_util.ExplicitPadding;
type RoundingMode = "floor" | "round" | "ceil" | undefined;
type Pair = [number, number];
type Shape4 = [number, number, number, number];

interface Conv2DBackpropFilterAttrs {
  strides: number | Pair;
  pad: Padding;
  dataFormat?: "NHWC" | "NCHW";
  dimRoundingMode?: RoundingMode;
  filterShape: Shape4;
}

interface Conv2DBackpropInputAttrs {
  strides: number | Pair;
  pad: Padding;
  dataFormat?: "NHWC" | "NCHW";
  dimRoundingMode?: RoundingMode;
  inputShape: Shape4;
}

interface DepthwiseBackpropFilterAttrs {
  strides: number | Pair;
  dilations?: number | Pair;
  pad: Padding;
  dimRoundingMode?: RoundingMode;
  filterShape: Shape4;
}

interface DepthwiseBackpropInputAttrs {
  strides: number | Pair;
  dilations?: number | Pair;
  pad: Padding;
  dimRoundingMode?: RoundingMode;
  inputShape: Shape4;
}

const BACKEND = "wasm";
const NHWC_FROM_NCHW = [0, 2, 3, 1];
const NCHW_FROM_NHWC = [0, 3, 1, 2];

/**
 * Wraps a kernel input as a Tensor (ops pass Tensors; other kernels may pass bare TensorInfos). A new
 * wrapper is pushed onto `created` when given, for the caller to dispose (inside a tidy it is not needed).
 */
function asTensor(
  info: tf.TensorInfo | undefined,
  kernelName: string,
  inputName: string,
  created?: tf.Tensor[],
) {
  if (info === undefined) throw new Error(`${kernelName}: missing input "${inputName}"`);
  if ((info as tf.Tensor).rank !== undefined) return info as tf.Tensor;
  const wrapper = tf.engine().makeTensorFromTensorInfo(info);
  created?.push(wrapper);
  return wrapper;
}

function asTensor4D(info: tf.TensorInfo | undefined, kernelName: string, inputName: string): tf.Tensor4D {
  return asTensor(info, kernelName, inputName) as tf.Tensor4D;
}

function toNhwcShape(shape: Shape4, dataFormat: "NHWC" | "NCHW" | undefined): Shape4 {
  return dataFormat === "NCHW" ? [shape[0], shape[2], shape[3], shape[1]] : shape;
}

/**
 * Applies per-side spatial padding, where a negative amount crops rows/columns instead. Returns the
 * (possibly cropped) tensor and the non-negative explicit padding to hand to a conv op.
 */
function cropAndPadding(
  x: tf.Tensor4D,
  top: number,
  bottom: number,
  left: number,
  right: number,
): { input: tf.Tensor4D; padding: tf.backend_util.ExplicitPadding } {
  const [n, h, w, c] = x.shape;
  const cropTop = Math.max(0, -top);
  const cropBottom = Math.max(0, -bottom);
  const cropLeft = Math.max(0, -left);
  const cropRight = Math.max(0, -right);
  const input = cropTop + cropBottom + cropLeft + cropRight === 0
    ? x
    : tf.slice(x, [0, cropTop, cropLeft, 0], [n, h - cropTop - cropBottom, w - cropLeft - cropRight, c]);
  return {
    input,
    padding: [[0, 0], [Math.max(0, top), Math.max(0, bottom)], [Math.max(0, left), Math.max(0, right)], [
      0,
      0,
    ]],
  };
}

/**
 * Inserts `stride - 1` zeros after every row/column (NHWC), giving [n, h * sH, w * sW, c]; the trailing
 * zeros are for the caller to crop (they fold into its padding arithmetic).
 */
function zeroInterleave(x: tf.Tensor4D, strideHeight: number, strideWidth: number): tf.Tensor4D {
  let [n, h, w, c] = x.shape;
  let out = x;
  if (strideHeight > 1) {
    out = tf.reshape(
      tf.pad(tf.reshape(out, [n, h, 1, w * c]), [[0, 0], [0, 0], [0, strideHeight - 1], [0, 0]]),
      [
        n,
        h * strideHeight,
        w,
        c,
      ],
    );
    h *= strideHeight;
  }
  if (strideWidth > 1) {
    out = tf.reshape(
      tf.pad(tf.reshape(out, [n * h, w, 1, c]), [[0, 0], [0, 0], [0, strideWidth - 1], [0, 0]]),
      [
        n,
        h,
        w * strideWidth,
        c,
      ],
    );
    w *= strideWidth;
  }
  return out;
}

/** Stride, dilation and padding attributes, as every conv kernel here has them. */
interface ConvGeometry {
  strides: number | Pair;
  dilations?: number | Pair;
  pad: Padding;
  dimRoundingMode?: RoundingMode;
}

/** The forward conv's geometry (NHWC shapes) that a backprop kernel inverts. */
function forwardConvInfo(
  inputShape: Shape4,
  filterShape: Shape4,
  geometry: ConvGeometry,
  depthwise: boolean,
): tf.backend_util.Conv2DInfo {
  const { strides, dilations, pad, dimRoundingMode } = geometry;
  return tf.backend_util.computeConv2DInfo(
    inputShape,
    filterShape,
    strides,
    dilations ?? 1,
    pad,
    dimRoundingMode,
    depthwise,
  );
}

/**
 * The stride-dilated output gradient `dy`, cropped/padded so that a stride-1 conv of it with the spatially
 * flipped filter has the forward input's size (the transposed conv behind both backprop-input kernels).
 */
function transposedConvOperand(
  dy: tf.Tensor4D,
  info: tf.backend_util.Conv2DInfo,
): { input: tf.Tensor4D; padding: tf.backend_util.ExplicitPadding } {
  const { strideHeight, strideWidth, inHeight, inWidth } = info;
  const [outHeight, outWidth] = [dy.shape[1], dy.shape[2]];
  const { top, left } = info.padInfo;
  const spread = zeroInterleave(dy, strideHeight, strideWidth);
  // Bottom/right: padding so the output has the input's size, minus the interleave's trailing zeros.
  const padTop = info.effectiveFilterHeight - 1 - top;
  const padLeft = info.effectiveFilterWidth - 1 - left;
  const padBottom = inHeight - (outHeight - 1) * strideHeight - 1 + top - (strideHeight - 1);
  const padRight = inWidth - (outWidth - 1) * strideWidth - 1 + left - (strideWidth - 1);
  return cropAndPadding(spread, padTop, padBottom, padLeft, padRight);
}

function conv2DBackpropFilterNhwc(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  attrs: Conv2DBackpropFilterAttrs,
): tf.Tensor4D {
  // Conv2D backprop kernels take no dilations: the forward conv was undilated.
  const info = forwardConvInfo(x.shape, attrs.filterShape, { ...attrs, dilations: 1 }, false);
  const { strideHeight, strideWidth, filterHeight, filterWidth, inHeight, inWidth } = info;
  const [outHeight, outWidth] = [dy.shape[1], dy.shape[2]];
  const { top, left } = info.padInfo;
  const bottom = (outHeight - 1) * strideHeight + filterHeight - inHeight - top;
  const right = (outWidth - 1) * strideWidth + filterWidth - inWidth - left;
  // Batch <-> channels: the input's channels become the batch, the batch becomes the summed channels.
  const xT = tf.transpose(x, [3, 1, 2, 0]);
  const dyT = tf.transpose(dy, [1, 2, 0, 3]);
  const { input, padding } = cropAndPadding(xT, top, bottom, left, right);
  const grad = tf.conv2d(input, dyT, 1, padding, "NHWC", [strideHeight, strideWidth]);
  return tf.transpose(grad, [1, 2, 0, 3]);
}

/** `dy` and `inputShape` are NHWC (the caller converts); `attrs.dataFormat` is not read. */
function conv2DBackpropInputNhwc(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  inputShape: Shape4,
  attrs: Conv2DBackpropInputAttrs,
): tf.Tensor4D {
  const info = forwardConvInfo(inputShape, filter.shape, { ...attrs, dilations: 1 }, false);
  const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]);
  const { input, padding } = transposedConvOperand(dy, info);
  return tf.conv2d(input, flipped, 1, padding, "NHWC");
}

function depthwiseBackpropInput(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  attrs: DepthwiseBackpropInputAttrs,
): tf.Tensor4D {
  const info = forwardConvInfo(attrs.inputShape, filter.shape, attrs, true);
  const { dilationHeight, dilationWidth, inHeight, inWidth } = info;
  const [kh, kw, channels, multiplier] = filter.shape;
  const batch = dy.shape[0];
  // Output channel c*M+m came from input channel c through tap (., ., c, m): one depthwise filter per
  // output channel, summed over m afterwards.
  const flipped = tf.reshape(tf.reverse(filter, [0, 1]), [kh, kw, channels * multiplier, 1]) as tf.Tensor4D;
  const { input, padding } = transposedConvOperand(dy, info);
  const perOutputChannel = tf.depthwiseConv2d(input, flipped, 1, padding, "NHWC", [
    dilationHeight,
    dilationWidth,
  ]);
  if (multiplier === 1) return perOutputChannel;
  return tf.sum(tf.reshape(perOutputChannel, [batch, inHeight, inWidth, channels, multiplier]), 4);
}

function depthwiseBackpropFilter(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  attrs: DepthwiseBackpropFilterAttrs,
): tf.Tensor4D {
  const { filterShape } = attrs;
  const info = forwardConvInfo(x.shape, filterShape, attrs, true);
  const { strideHeight, strideWidth, dilationHeight, dilationWidth, inHeight, inWidth } = info;
  const [kh, kw, channels, multiplier] = filterShape;
  const [batch, outHeight, outWidth] = dy.shape;
  const { top, left } = info.padInfo;
  const spanHeight = (outHeight - 1) * strideHeight + 1;
  const spanWidth = (outWidth - 1) * strideWidth + 1;
  const bottom = spanHeight + info.effectiveFilterHeight - 1 - inHeight - top;
  const right = spanWidth + info.effectiveFilterWidth - 1 - inWidth - left;
  const cropped = cropAndPadding(x, top, bottom, left, right);
  const padded = tf.pad(cropped.input, cropped.padding);
  const positions = batch * outHeight * outWidth;
  const patches: tf.Tensor2D[] = [];
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const begin = [0, a * dilationHeight, b * dilationWidth, 0];
      const patch = strideHeight === 1 && strideWidth === 1
        ? tf.slice(padded, begin, [batch, outHeight, outWidth, channels])
        : tf.stridedSlice(
          padded,
          begin,
          [batch, begin[1] + spanHeight, begin[2] + spanWidth, channels],
          [1, strideHeight, strideWidth, 1],
        );
      patches.push(tf.reshape(patch, [positions, channels]));
    }
  }
  // [C, taps, P] x [C, P, M] -> [C, taps, M]
  const taps = tf.transpose(tf.stack(patches), [2, 0, 1]) as tf.Tensor3D;
  const grads = tf.transpose(tf.reshape(dy, [positions, channels, multiplier]), [1, 0, 2]) as tf.Tensor3D;
  const perChannel = tf.matMul(taps, grads);
  return tf.reshape(tf.transpose(perChannel, [1, 0, 2]), [kh, kw, channels, multiplier]);
}

function conv2DBackpropFilter(x: tf.Tensor4D, dy: tf.Tensor4D, a: Conv2DBackpropFilterAttrs): tf.Tensor4D {
  if (a.dataFormat !== "NCHW") return conv2DBackpropFilterNhwc(x, dy, a);
  return conv2DBackpropFilterNhwc(tf.transpose(x, NHWC_FROM_NCHW), tf.transpose(dy, NHWC_FROM_NCHW), a);
}

function conv2DBackpropInput(dy: tf.Tensor4D, filter: tf.Tensor4D, a: Conv2DBackpropInputAttrs): tf.Tensor4D {
  if (a.dataFormat !== "NCHW") return conv2DBackpropInputNhwc(dy, filter, a.inputShape, a);
  const inputShape = toNhwcShape(a.inputShape, a.dataFormat);
  const dx = conv2DBackpropInputNhwc(tf.transpose(dy, NHWC_FROM_NCHW), filter, inputShape, a);
  return tf.transpose(dx, NCHW_FROM_NHWC);
}

/**
 * The kernel function `kernelName` over the 4-D inputs named `first` and `second` (in that order), computed
 * inside a tidy so that input wrappers and intermediates are freed.
 */
function twoInputKernel<Attrs>(
  kernelName: string,
  [first, second]: [string, string],
  compute: (a: tf.Tensor4D, b: tf.Tensor4D, attrs: Attrs) => tf.Tensor4D,
): tf.KernelFunc {
  const kernel = ({ inputs, attrs }: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap }) =>
    tf.tidy(() =>
      compute(
        asTensor4D(inputs[first], kernelName, first),
        asTensor4D(inputs[second], kernelName, second),
        attrs as unknown as Attrs,
      )
    );
  return kernel as unknown as tf.KernelFunc;
}

interface BatchMatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

/** The wasm backend's own BatchMatMul, captured before it is wrapped. */
let stockBatchMatMul: tf.KernelConfig | undefined;

function swapLastTwoAxes(x: tf.Tensor): tf.Tensor {
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return tf.transpose(x, perm);
}

/**
 * BatchMatMul with transposed operands is 10-25x slower than without on wasm (it misses XNNPACK), and
 * dense-layer gradients always transpose. Materialise the transposes, then run the stock kernel.
 */
function batchMatMulKernel(
  args: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown },
): tf.TensorInfo {
  const stock = stockBatchMatMul;
  if (stock === undefined) throw new Error("BatchMatMul: the wasm backend's own kernel was not captured");
  const { transposeA, transposeB } = args.attrs as unknown as BatchMatMulAttrs;
  const { a, b } = args.inputs;
  if ((!transposeA && !transposeB) || a === undefined || b === undefined) {
    return stock.kernelFunc(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  }
  const temporaries: tf.Tensor[] = [];
  const operand = (info: tf.TensorInfo, transpose: boolean, name: string): tf.TensorInfo => {
    if (!transpose) return info;
    const swapped = swapLastTwoAxes(asTensor(info, "BatchMatMul", name, temporaries));
    temporaries.push(swapped);
    return swapped;
  };
  try {
    return stock.kernelFunc(
      {
        ...args,
        inputs: { a: operand(a, transposeA, "a"), b: operand(b, transposeB, "b") },
        attrs: { ...args.attrs, transposeA: false, transposeB: false },
      } as Parameters<tf.KernelFunc>[0],
    ) as tf.TensorInfo;
  } finally {
    tf.dispose(temporaries);
  }
}

/** The kernels this module installs for the wasm backend, by kernel name. */
export const COMPOSED_WASM_KERNELS: Readonly<Record<string, tf.KernelFunc>> = {
  Conv2DBackpropFilter: twoInputKernel("Conv2DBackpropFilter", ["x", "dy"], conv2DBackpropFilter),
  Conv2DBackpropInput: twoInputKernel("Conv2DBackpropInput", ["dy", "filter"], conv2DBackpropInput),
  DepthwiseConv2dNativeBackpropFilter: twoInputKernel(
    "DepthwiseConv2dNativeBackpropFilter",
    ["x", "dy"],
    depthwiseBackpropFilter,
  ),
  DepthwiseConv2dNativeBackpropInput: twoInputKernel(
    "DepthwiseConv2dNativeBackpropInput",
    ["dy", "filter"],
    depthwiseBackpropInput,
  ),
  BatchMatMul: batchMatMulKernel as unknown as tf.KernelFunc,
};

/**
 * Registers the composed kernels for backend "wasm", replacing any kernel of the same name (the stock
 * `Conv2DBackpropInput`, and `BatchMatMul`, which is wrapped). Idempotent: a second call changes nothing.
 */
export function registerComposedWasmKernels(): void {
  for (const [kernelName, kernelFunc] of Object.entries(COMPOSED_WASM_KERNELS)) {
    const existing = tf.getKernel(kernelName, BACKEND);
    if (existing?.kernelFunc === kernelFunc) continue;
    if (kernelName === "BatchMatMul") {
      if (existing === undefined) continue; // nothing to wrap: the wasm backend is not loaded
      stockBatchMatMul = existing;
    }
    if (existing !== undefined) tf.unregisterKernel(kernelName, BACKEND);
    tf.registerKernel({ kernelName, backendName: BACKEND, kernelFunc, setupFunc: existing?.setupFunc });
  }
}
