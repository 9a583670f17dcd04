/**
 * Colour bit-depth reduction, CBDR (Xu et al. 2018, feature squeezing): each value is rounded to one of
 * 2^bits evenly spaced levels over the model's input range. The paper gives no setting (Sec. 5.4, App.
 * Table 3 leaves CBDR out and runs ART's `FeatureSqueezing`); the default follows Xu et al.: 1 bit for
 * one-channel (MNIST-like) inputs, 5 bits for colour inputs.
 *
 * Rounds half to even like ART's `np.rint`, so values exactly between two levels go where ART sends
 * them. Unlike ART, values outside the input range are clipped first, so the output never holds more
 * than 2^bits levels.
 *
 * @module
 */
import { integerSetting, type StageFactory } from "../stage.ts";
import { imageTransformStage } from "./image_stage.ts";

/** Xu et al.'s bit depth for an input with `channels` channels: 1 for greyscale, 5 for colour. */
export function defaultBitDepth(channels: number): number {
  return channels === 1 ? 1 : 5;
}

/** Rounds to the nearest integer, ties to even (numpy's `rint` / `round`). */
export function roundHalfEven(value: number): number {
  const rounded = Math.round(value);
  return rounded - value === 0.5 && rounded % 2 !== 0 ? rounded - 1 : rounded;
}

/** Quantises every value to 2^`bits` levels spanning `range`; returns a new array. */
export function bitDepthReduction(
  values: Float32Array,
  bits: number,
  range: readonly [number, number],
): Float32Array {
  const [low, high] = range;
  const span = high - low;
  const levels = 2 ** bits - 1;
  return values.map((v) => {
    const unit = Math.min(1, Math.max(0, (v - low) / span));
    return low + (roundHalfEven(unit * levels) / levels) * span;
  });
}

/** `cbdr`: bit-depth reduction; override `bits` (an integer in [1, 16]; default from the channel count). */
export const BIT_DEPTH_REDUCTION: StageFactory = {
  name: "cbdr",
  summary: "colour bit-depth reduction to 2^bits levels per value (Xu et al. 2018)",
  // The speaker model's log-mel map is a one-channel image; the paper runs CBDR on it too (Sec. 6.4.1).
  modalities: ["image", "audio"],
  needsProfile: false,
  create({ split, overrides = {} }) {
    const channels = split.inputShape[split.inputShape.length - 1];
    const bits = integerSetting("cbdr", "bits", overrides.bits, defaultBitDepth(channels), [1, 16]);
    const range = split.inputRange;
    return imageTransformStage(
      "cbdr",
      `CBDR: ${2 ** bits} levels per value over [${range}] (bits=${bits})`,
      { bits },
      (values) => bitDepthReduction(values, bits, range),
    );
  },
};
