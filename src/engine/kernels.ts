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

function conv2DBackpropFilterNhwc(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: Shape4,
  strides: number | Pair,
  pad: Padding,
  dimRoundingMode: RoundingMode,
): tf.Tensor4D {
  const info = tf.backend_util.computeConv2DInfo(
    x.shape,
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
  );
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

function conv2DBackpropInputNhwc(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  inputShape: Shape4,
  strides: number | Pair,
  pad: Padding,
  dimRoundingMode: RoundingMode,
): tf.Tensor4D {
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
  );
  const { strideHeight, strideWidth, filterHeight, filterWidth, inHeight, inWidth } = info;
  const [outHeight, outWidth] = [dy.shape[1], dy.shape[2]];
  const { top, left } = info.padInfo;
  const spread = zeroInterleave(dy, strideHeight, strideWidth);
  const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]);
  // Bottom/right: padding so the output has the input's size, minus the interleave's trailing zeros.
  const padTop = filterHeight - 1 - top;
  const padLeft = filterWidth - 1 - left;
  const padBottom = inHeight - (outHeight - 1) * strideHeight - 1 + top - (strideHeight - 1);
  const padRight = inWidth - (outWidth - 1) * strideWidth - 1 + left - (strideWidth - 1);
  const { input, padding } = cropAndPadding(spread, padTop, padBottom, padLeft, padRight);
  return tf.conv2d(input, flipped, 1, padding, "NHWC");
}

function depthwiseBackpropInput(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  attrs: DepthwiseBackpropInputAttrs,
): tf.Tensor4D {
  const { inputShape, strides, pad, dimRoundingMode } = attrs;
  const dilations = attrs.dilations ?? 1;
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape,
    strides,
    dilations,
    pad,
    dimRoundingMode,
    true,
  );
  const { strideHeight, strideWidth, dilationHeight, dilationWidth, inHeight, inWidth } = info;
  const [kh, kw, channels, multiplier] = filter.shape;
  const [batch, outHeight, outWidth] = dy.shape;
  const { top, left } = info.padInfo;
  const spread = zeroInterleave(dy, strideHeight, strideWidth);
  // Output channel c*M+m came from input channel c through tap (., ., c, m): one depthwise filter per
  // output channel, summed over m afterwards.
  const flipped = tf.reshape(tf.reverse(filter, [0, 1]), [kh, kw, channels * multiplier, 1]) as tf.Tensor4D;
  const padTop = info.effectiveFilterHeight - 1 - top;
  const padLeft = info.effectiveFilterWidth - 1 - left;
  const padBottom = inHeight - (outHeight - 1) * strideHeight - 1 + top - (strideHeight - 1);
  const padRight = inWidth - (outWidth - 1) * strideWidth - 1 + left - (strideWidth - 1);
  const { input, padding } = cropAndPadding(spread, padTop, padBottom, padLeft, padRight);
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
  const { filterShape, strides, pad, dimRoundingMode } = attrs;
  const dilations = attrs.dilations ?? 1;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape,
    filterShape,
    strides,
    dilations,
    pad,
    dimRoundingMode,
    true,
  );
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

function conv2DBackpropFilterKernel(
  { inputs, attrs }: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap },
): tf.TensorInfo {
  const a = attrs as unknown as Conv2DBackpropFilterAttrs;
  return tf.tidy(() => {
    let x = asTensor4D(inputs.x, "Conv2DBackpropFilter", "x");
    let dy = asTensor4D(inputs.dy, "Conv2DBackpropFilter", "dy");
    if (a.dataFormat === "NCHW") {
      x = tf.transpose(x, NHWC_FROM_NCHW);
      dy = tf.transpose(dy, NHWC_FROM_NCHW);
    }
    return conv2DBackpropFilterNhwc(x, dy, a.filterShape, a.strides, a.pad, a.dimRoundingMode);
  });
}

function conv2DBackpropInputKernel(
  { inputs, attrs }: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap },
): tf.TensorInfo {
  const a = attrs as unknown as Conv2DBackpropInputAttrs;
  return tf.tidy(() => {
    const nchw = a.dataFormat === "NCHW";
    let dy = asTensor4D(inputs.dy, "Conv2DBackpropInput", "dy");
    if (nchw) dy = tf.transpose(dy, NHWC_FROM_NCHW);
    const inputShape = toNhwcShape(a.inputShape, a.dataFormat);
    const dx = conv2DBackpropInputNhwc(
      dy,
      asTensor4D(inputs.filter, "Conv2DBackpropInput", "filter"),
      inputShape,
      a.strides,
      a.pad,
      a.dimRoundingMode,
    );
    return nchw ? tf.transpose(dx, NCHW_FROM_NHWC) : dx;
  });
}

function depthwiseBackpropFilterKernel(
  { inputs, attrs }: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap },
): tf.TensorInfo {
  const a = attrs as unknown as DepthwiseBackpropFilterAttrs;
  return tf.tidy(() =>
    depthwiseBackpropFilter(
      asTensor4D(inputs.x, "DepthwiseConv2dNativeBackpropFilter", "x"),
      asTensor4D(inputs.dy, "DepthwiseConv2dNativeBackpropFilter", "dy"),
      a,
    )
  );
}

function depthwiseBackpropInputKernel(
  { inputs, attrs }: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap },
): tf.TensorInfo {
  const a = attrs as unknown as DepthwiseBackpropInputAttrs;
  return tf.tidy(() =>
    depthwiseBackpropInput(
      asTensor4D(inputs.dy, "DepthwiseConv2dNativeBackpropInput", "dy"),
      asTensor4D(inputs.filter, "DepthwiseConv2dNativeBackpropInput", "filter"),
      a,
    )
  );
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
  Conv2DBackpropFilter: conv2DBackpropFilterKernel as unknown as tf.KernelFunc,
  Conv2DBackpropInput: conv2DBackpropInputKernel as unknown as tf.KernelFunc,
  DepthwiseConv2dNativeBackpropFilter: depthwiseBackpropFilterKernel as unknown as tf.KernelFunc,
  DepthwiseConv2dNativeBackpropInput: depthwiseBackpropInputKernel as unknown as tf.KernelFunc,
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
