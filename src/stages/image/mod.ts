/**
 * The paper's five image input-transformation baselines (Sec. 5.4, App. Table 3) as defense stages:
 * SS, CBDR, JC, TVM and FDistill, each with the paper's settings by default.
 *
 * @module
 */
import { BIT_DEPTH_REDUCTION } from "./bit_depth.ts";
import { FEATURE_DISTILLATION } from "./feature_distillation.ts";
import { JPEG_COMPRESSION } from "./jpeg.ts";
import { SPATIAL_SMOOTHING } from "./median_smoothing.ts";
import type { StageFactory } from "../stage.ts";
import { TOTAL_VAR_MIN } from "./tv_minimization.ts";

/** ss, cbdr, jc, tvm, fdistill, in the paper's order. */
export const IMAGE_BASELINES: readonly StageFactory[] = [
  SPATIAL_SMOOTHING,
  BIT_DEPTH_REDUCTION,
  JPEG_COMPRESSION,
  TOTAL_VAR_MIN,
  FEATURE_DISTILLATION,
];
