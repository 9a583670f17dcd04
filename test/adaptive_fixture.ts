/**
 * Shared set-up of the adaptive-attack tests: the NIP test fixture (a small conv net trained on real
 * Fashion-MNIST), a profile calibrated on its first 400 calibration images, the NIP defense built from
 * that profile, and the one-stage pipeline over it.
 *
 * @module
 */
import { toTensor } from "../src/data/dataset.ts";
import { buildProfile } from "../src/nip/calibrate.ts";
import { NipDefense } from "../src/nip/defense.ts";
import type { NipProfile } from "../src/nip/profile.ts";
import { nipStage } from "../src/stages/nip.ts";
import { DefensePipeline } from "../src/stages/pipeline.ts";
import { type NipFixture, nipFixture } from "./nip_fixture.ts";

/** The NIP fixture, its calibrated profile, the defense over it and the pipeline running it. */
export interface AdaptiveFixture {
  fixture: NipFixture;
  profile: NipProfile;
  defense: NipDefense;
  pipeline: DefensePipeline;
}

let cached: Promise<AdaptiveFixture> | undefined;

async function build(): Promise<AdaptiveFixture> {
  const fixture = await nipFixture();
  const calibrationX = toTensor(fixture.calibration, 0, 400);
  const profile = buildProfile(fixture.split, calibrationX, fixture.calibration.labels.slice(0, 400), {
    modelHash: "f",
  });
  calibrationX.dispose();
  const defense = new NipDefense(fixture.split, profile);
  const pipeline = new DefensePipeline(fixture.split, [nipStage(defense, "matched", false)]);
  return { fixture, profile, defense, pipeline };
}

/** The fixture, profile and defense, built once per test module. */
export function adaptiveFixture(): Promise<AdaptiveFixture> {
  cached ??= build();
  return cached;
}
