/**
 * A detection calibrated on the NIP test fixture with every real detector, for the tests of the adaptive
 * attacks on detection: NIP's profile from the first 150 calibration images, the detectors fitted on the
 * next 200, reference scores on 100 more, the combination calibrated on 150 more.
 */
import { toTensor } from "../src/data/dataset.ts";
import { buildProfile } from "../src/nip/calibrate.ts";
import type { NipProfile } from "../src/nip/profile.ts";
import { calibrateDetection, DETECTION } from "../src/stages/detection.ts";
import type { DefensePipeline } from "../src/stages/pipeline.ts";
import { buildPipelines, DETECTOR_NAMES, stageFactory } from "../src/stages/registry.ts";
import { type NipFixture, nipFixture } from "./nip_fixture.ts";

/** The fixture and a profile holding NIP's calibration and the detection's. */
export interface DetectionFixture {
  fixture: NipFixture;
  profile: NipProfile;
  /** A new detection-only pipeline at `alpha`; the caller disposes it. */
  pipeline(alpha?: number): DefensePipeline;
}

let cached: Promise<DetectionFixture> | undefined;

/** Builds (once) the calibrated detection on the NIP fixture. */
export function detectionFixture(): Promise<DetectionFixture> {
  cached ??= build();
  return cached;
}

async function build(): Promise<DetectionFixture> {
  const fixture = await nipFixture();
  const x = toTensor(fixture.calibration, 0, 600);
  const labels = fixture.calibration.labels;
  const part = (start: number, n: number) => ({
    x: x.slice(start, n),
    labels: labels.slice(start, start + n),
  });
  const nip = part(0, 150);
  const base = buildProfile(fixture.split, nip.x, nip.labels, { modelHash: "f" });
  const sets = { fit: part(150, 200), reference: part(350, 100), heldOut: part(450, 150) };
  const members = DETECTOR_NAMES.map((name) => stageFactory(name, "image"));
  const profile: NipProfile = {
    ...base,
    stages: calibrateDetection(members, { split: fixture.split, profile: base }, sets),
  };
  [nip, ...Object.values(sets)].forEach((s) => s.x.dispose());
  x.dispose();
  return {
    fixture,
    profile,
    pipeline: (alpha = 0.05) =>
      buildPipelines([[DETECTION]], { split: fixture.split, profile, modality: "image", alpha })[0],
  };
}
