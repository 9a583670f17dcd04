import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { modelHash } from "../src/engine/model_io.ts";
import { denoiserWeightCount, flattenWeights } from "../src/models/denoiser.ts";
import { loadProfile } from "../src/profile_io.ts";
import { denoiserNames, denoiserRecord, loadDenoiser } from "../src/smoothing/denoiser_state.ts";
import { runTask } from "./task_runner.ts";

const MODEL_DIR = new URL("../models/fashion-lenet/", import.meta.url).pathname;

/** A temporary copy of the default model with its profile. */
async function copyDefaultModel(): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.copyFile(join(MODEL_DIR, "model.json"), join(dir, "model.json"));
  await Deno.copyFile(join(MODEL_DIR, "weights.bin"), join(dir, "weights.bin"));
  await Deno.mkdir(join(dir, "profile"));
  for (const file of ["profile.json", "profile.bin"]) {
    await Deno.copyFile(join(MODEL_DIR, "profile", file), join(dir, "profile", file));
  }
  return dir;
}

Deno.test("train:denoiser stores an MSE and a stability denoiser in the profile and reports the run", async () => {
  await initBackend("wasm");
  const dir = await copyDefaultModel();
  try {
    const original = await loadProfile(join(dir, "profile"));
    const result = await runTask("train_denoiser", [
      ..."--limit 256 --epochs 1 --stability-epochs 1 --sigma 0.25 --held-out 200 --model".split(" "),
      dir,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /training on 256 images of the train part/);
    assert.match(result.stdout, /mse-0\.25 epoch 1\/1: loss /);
    assert.match(result.stdout, /stability-0\.25 held out \(200 calibration images\): MSE noisy /);

    const profile = await loadProfile(join(dir, "profile"), await modelHash(dir));
    const state = profile.stages?.smooth;
    assert.ok(state, "the profile has the smoothing stage's state");
    // The copied profile may hold denoisers already (the committed ones): these two are now this run's.
    assert.ok(denoiserNames(state).includes("mse-0.25") && denoiserNames(state).includes("stability-0.25"));
    assert.equal(denoiserRecord(state, "mse-0.25").trainImages, 256);
    const kept = denoiserNames(original.stages?.smooth).filter((n) => !n.endsWith("-0.25"));
    for (const name of kept) assert.deepEqual(state.arrays[name], original.stages!.smooth.arrays[name], name);
    // The rest of the profile is kept.
    assert.deepEqual(profile.candidateLabels, original.candidateLabels);
    assert.deepEqual(profile.rho, original.rho);
    assert.deepEqual(
      Object.keys(profile.stages ?? {}).sort(),
      [...new Set([...Object.keys(original.stages ?? {}), "smooth"])].sort(),
    );

    const before = tf.memory().numTensors;
    const mse = loadDenoiser(state, "mse-0.25");
    const stability = loadDenoiser(state, "stability-0.25");
    try {
      assert.equal(
        flattenWeights(mse).length,
        denoiserWeightCount({ inputShape: [28, 28, 1], filters: 16, layers: 5 }),
      );
      assert.notDeepEqual(flattenWeights(stability), flattenWeights(mse));
    } finally {
      mse.dispose();
      stability.dispose();
    }
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(
      { ...denoiserRecord(state, "stability-0.25"), seconds: 0, finalLoss: 0 },
      {
        sigma: 0.25,
        objective: "stability",
        epochs: 1,
        trainImages: 256,
        seconds: 0,
        finalLoss: 0,
        initialisedFrom: "mse-0.25",
      },
    );
    assert.equal(denoiserRecord(state, "mse-0.25").initialisedFrom, "none");

    const report = JSON.parse(await Deno.readTextFile(join(dir, "denoisers.json")));
    assert.deepEqual(Object.keys(report.denoisers), ["mse-0.25", "stability-0.25"]);
    for (
      const entry of Object.values(report.denoisers) as { history: unknown[]; heldOut: { images: number } }[]
    ) {
      assert.equal(entry.history.length, 1);
      assert.equal(entry.heldOut.images, 200);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train:denoiser and train name a bad flag", async () => {
  const sigma = await runTask("train_denoiser", ["--sigma", "0.25,loud"]);
  assert.equal(sigma.code, 2);
  assert.match(sigma.stderr, /usage error: --sigma: expected a number in \[0.0001, 10\], got "loud"/);
  const objective = await runTask("train_denoiser", ["--objective", "mse,sharpness"]);
  assert.equal(objective.code, 2);
  assert.match(objective.stderr, /--objective: expected one of mse, stability, got "sharpness"/);
  const epochs = await runTask("train_denoiser", ["--stability-epochs", "1.5"]);
  assert.equal(epochs.code, 2);
  assert.match(epochs.stderr, /--stability-epochs: expected an integer, got "1.5"/);
  const unknown = await runTask("train_denoiser", ["--epoch", "3"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /--epoch/);
  const noise = await runTask("train", ["--noise-sigma", "0"]);
  assert.equal(noise.code, 2);
  assert.match(noise.stderr, /--noise-sigma must be a positive number, got "0"/);
});
