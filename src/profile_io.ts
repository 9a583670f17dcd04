/**
 * Reading and writing calibration profiles on disk: `<dir>/profile.json` (the manifest) and
 * `<dir>/profile.bin` (the tensors). Loading checks the profile's model hash against the model's.
 *
 * @module
 */
import { join } from "node:path";
import {
  decodeProfile,
  encodeProfile,
  type NipProfile,
  ProfileError,
  type ProfileManifest,
} from "./nip/profile.ts";

/** Writes a profile into `dir` (created if needed). */
export async function saveProfile(profile: NipProfile, dir: string): Promise<void> {
  const { manifest, data } = encodeProfile(profile);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "profile.json"), JSON.stringify(manifest, null, 1) + "\n");
  await Deno.writeFile(join(dir, "profile.bin"), data);
}

/**
 * Reads a profile from `dir`. With `expectedModelHash`, refuses a profile calibrated on another model.
 * Errors name the file at fault.
 */
export async function loadProfile(dir: string, expectedModelHash?: string): Promise<NipProfile> {
  const manifestPath = join(dir, "profile.json");
  const dataPath = join(dir, "profile.bin");
  let manifest: ProfileManifest;
  try {
    manifest = JSON.parse(await Deno.readTextFile(manifestPath));
  } catch (error) {
    throw new ProfileError(`${manifestPath}: cannot read the profile manifest (${(error as Error).message})`);
  }
  let data: Uint8Array;
  try {
    data = await Deno.readFile(dataPath);
  } catch (error) {
    throw new ProfileError(`${dataPath}: cannot read the profile tensors (${(error as Error).message})`);
  }
  let profile: NipProfile;
  try {
    profile = decodeProfile(manifest, data);
  } catch (error) {
    throw new ProfileError(`${dir}: ${(error as Error).message}`);
  }
  if (expectedModelHash !== undefined && profile.modelHash !== expectedModelHash) {
    throw new ProfileError(
      `${manifestPath}: profile was calibrated on model ${profile.modelHash.slice(0, 12)}…, ` +
        `but the loaded model is ${
          expectedModelHash.slice(0, 12)
        }…; recalibrate with \`deno task calibrate\``,
    );
  }
  return profile;
}
