/**
 * The detectors (scoring stages, SPEC.md section 8), in the order reports list them: the neuron-influence
 * signature and NIP's response (the paper's own signals), feature squeezing, and the distances to the benign
 * calibration data (Mahalanobis at the split layer and on the input, nearest benign example in NIP's key space).
 *
 * @module
 */
import type { StageFactory } from "../stage.ts";
import { INFLUENCE_DETECTOR } from "./influence.ts";
import { KNN_DETECTOR } from "./knn.ts";
import { INPUT_MAHALANOBIS, MAHALANOBIS } from "./mahalanobis.ts";
import { NIP_RESPONSE_DETECTOR } from "./nip_response.ts";
import { SQUEEZE_DETECTOR } from "./squeeze.ts";

/** Every detector. */
export const DETECTORS: readonly StageFactory[] = [
  INFLUENCE_DETECTOR as StageFactory,
  NIP_RESPONSE_DETECTOR as StageFactory,
  SQUEEZE_DETECTOR,
  MAHALANOBIS,
  INPUT_MAHALANOBIS,
  KNN_DETECTOR as StageFactory,
];
