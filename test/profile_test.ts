import assert from "node:assert/strict";
import {
  decodeProfile,
  encodeProfile,
  keyUsesAllNeurons,
  type NipProfile,
  ProfileError,
} from "../src/nip/profile.ts";
import { loadProfile, saveProfile } from "../src/profile_io.ts";
import { DEFAULT_SETTINGS } from "../src/nip/calibrate.ts";

function tinyProfile(): NipProfile {
  return {
    modelHash: "a".repeat(64),
    layerName: "flatten",
    neuronCount: 4,
    layerShape: [4],
    inputShape: [2, 2, 1],
    inputRange: [0, 1],
    settings: { ...DEFAULT_SETTINGS, k1: 1, k2: 1 },
    template: Int32Array.from([1, 2]),
    keyNeurons: Int32Array.from([0, 1, 2, 3]),
    candidateCount: 2,
    rho: Float32Array.from([0.1, 0.2, 0.3, 0.4, -1, -2, -3, -4]),
    keys: Float32Array.from([1, 0, 0, 0, 0, 1, 0, 0]),
    deltas: Float32Array.from([0.5, 0.25]),
    frontTail: Int32Array.from([0, 3, 3, 0]),
    candidateLabels: Int32Array.from([7, 2]),
    provenance: { data: "test" },
  };
}

Deno.test("fitted stage states ride along after NIP's arrays and come back intact", () => {
  const profile: NipProfile = {
    ...tinyProfile(),
    stages: {
      mahalanobis: {
        meta: { classes: 2, shrinkage: 0.01 },
        arrays: { means: Float32Array.from([1, 2, 3, 4]) },
      },
      detect: {
        meta: { members: 2, rule: "fisher", names: [1, 2] },
        arrays: { heldOut: Float32Array.from([0.5, 1.5]), order: Int32Array.from([1, 0]) },
      },
    },
  };
  const { manifest, data } = encodeProfile(profile);
  assert.equal(manifest.buffers.length, 7);
  assert.deepEqual(Object.keys(manifest.stages!), ["mahalanobis", "detect"]);
  const decoded = decodeProfile(JSON.parse(JSON.stringify(manifest)), data);
  assert.deepEqual(decoded, profile);
  assert.ok(decoded.stages!.detect.arrays.order instanceof Int32Array);
  const truncated = data.slice(0, data.length - 4);
  assert.throws(() => decodeProfile(manifest, truncated), /profile buffer "detect.order" needs bytes/);
  assert.equal(encodeProfile(tinyProfile()).manifest.stages, undefined, "no stages, no key");
});

Deno.test("encodeProfile / decodeProfile round-trip every field", () => {
  const profile = tinyProfile();
  const { manifest, data } = encodeProfile(profile);
  const decoded = decodeProfile(JSON.parse(JSON.stringify(manifest)), data);
  assert.deepEqual(decoded, profile);
  assert.equal(keyUsesAllNeurons(decoded), true);
});

Deno.test("decodeProfile rejects truncated data and inconsistent shapes with the buffer's name", () => {
  const { manifest, data } = encodeProfile(tinyProfile());
  assert.throws(
    () => decodeProfile(manifest, data.subarray(0, data.length - 4)),
    (e: Error) => e instanceof ProfileError && /candidateLabels/.test(e.message),
  );
  const wrongCount = structuredClone(manifest);
  wrongCount.meta.candidateCount = 3;
  assert.throws(() => decodeProfile(wrongCount, data), /"rho" has 8 values, expected 12/);
  assert.throws(
    () => decodeProfile({ ...manifest, format: "other" as "nip-profile/1" }, data),
    /unknown profile format/,
  );
});

Deno.test("saveProfile / loadProfile round-trip on disk and refuse another model's hash", async () => {
  const dir = await Deno.makeTempDir();
  const profile = tinyProfile();
  await saveProfile(profile, dir);
  assert.deepEqual(await loadProfile(dir, profile.modelHash), profile);
  await assert.rejects(() => loadProfile(dir, "b".repeat(64)), /calibrated on model aaaaaaaaaaaa/);
  await assert.rejects(() => loadProfile(`${dir}/missing`), /profile\.json: cannot read/);
  await Deno.writeFile(`${dir}/profile.bin`, new Uint8Array(10));
  await assert.rejects(() => loadProfile(dir), /profile\.bin|needs bytes/);
  await Deno.remove(dir, { recursive: true });
});
