/**
 * Shared set-up of the adaptive-attack tests: the NIP test fixture (a small conv net trained on real
 * Fashion-MNIST), a profile calibrated on its first 400 calibration images, and the NIP defense built from
 * that profile.
 *
 * @module
 */
import { toTensor } from "../src/data/dataset.ts";
import { buildProfile } from "../src/nip/calibrate.ts";
import { NipDefense } from "../src/nip/defense.ts";
import type { NipProfile } from "../src/nip/profile.ts";
import { type NipFixture, nipFixture } from "./nip_fixture.ts";

/** The NIP fixture, its calibrated profile and the defense over it. */
export interface AdaptiveFixture {
  fixture: NipFixture;
  profile: NipProfile;
  defense: NipDefense;
}

let cached: Promise<AdaptiveFixture> | undefined;

async function build(): Promise<AdaptiveFixture> {
  const fixture = await nipFixture();
  const calibrationX = toTensor(fixture.calibration, 0, 400);
  const profile = buildProfile(fixture.split, calibrationX, fixture.calibration.labels.slice(0, 400), {
    modelHash: "f",
  });
  calibrationX.dispose();
  return { fixture, profile, defense: new NipDefense(fixture.split, profile) };
}

/** The fixture, profile and defense, built once per test module. */
export function adaptiveFixture(): Promise<AdaptiveFixture> {
  cached ??= build();
  return cached;
}
