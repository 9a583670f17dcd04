/**
 * `deno task bench`: the cost of a defense as a ratio to a bare forward in the same run, on the embedded
 * default model, through the serving engine the sidecar's `Defend` and `Predict` calls use (plain arrays
 * in and out): NIP with and without the local verdict after defense at batch 1 and 64, every other stage
 * at batch 64, randomized smoothing's PREDICT and CERTIFY on one image (with and without the profile's
 * denoiser), and calibration throughput. Deno prints each case as a multiple of its group's baseline.
 * `NIP_BENCH_BACKEND=webgpu` runs the same cases on another backend.
 */
import { toTensor } from "../src/data/dataset.ts";
import { loadNamedDataset } from "../src/data/named_datasets.ts";
import { samplePart } from "../src/data/splits.ts";
import { type BackendName, parseBackendName } from "../src/engine/backend.ts";
import { buildProfile } from "../src/nip/calibrate.ts";
import { loadPipeline } from "../src/pipeline.ts";
import { ServingEngine } from "../src/server/engine.ts";
import { DefensePipeline } from "../src/stages/pipeline.ts";
import { buildStages, stageNames } from "../src/stages/registry.ts";
import { SMOOTHING } from "../src/stages/smoothing.ts";

const backend: BackendName = parseBackendName(Deno.env.get("NIP_BENCH_BACKEND") ?? "wasm");
const loaded = await loadPipeline({ backend });
const { dataset, split } = await loadNamedDataset("fashion-mnist");
const test = samplePart(dataset, split, "test", 64, { seed: 11 });
const calibration = samplePart(dataset, split, "calibration", 64, { seed: 12 });
const calibrationX = toTensor(calibration);
const size = test.images.length / test.count;
const single = test.images.slice(0, size);
const batch = test.images;

const engine = new ServingEngine(loaded);
await engine.warmUp();
// The default deployment: the calibrated detection before NIP (six detectors, Fisher's combination).
const detecting = new ServingEngine(await loadPipeline({ backend, defenses: "auto" }));
await detecting.warmUp();

// Fixed iteration counts, large enough that one stall does not move a ratio (the cases run one after another).
const cases = [["one image", single, 1, 2000, 200], ["batch of 64", batch, 64, 200, 20]] as const;
for (const [group, rows, n, iterations, warmup] of cases) {
  const options = { group, n: iterations, warmup };
  Deno.bench(`bare forward (Predict), ${group}`, { ...options, baseline: true }, async () => {
    await engine.predict(rows, n);
  });
  Deno.bench(`NIP Defend without the verdict after defense, ${group}`, options, async () => {
    await engine.defend(rows, n, false);
  });
  Deno.bench(`NIP Defend with the verdict after defense, ${group}`, options, async () => {
    await engine.defend(rows, n, true);
  });
  // Policy flag, the default: the detection runs, the transforms are skipped, the verdict before stands.
  Deno.bench(`detection, policy flag (the default deployment), ${group}`, options, async () => {
    await detecting.defend(rows, n, false, undefined, false);
  });
}

// Every other transforming or scoring image stage alone, with the verdict after defense (what the
// evaluation runs); smoothing, which answers with many forwards per input, has its own group below.
for (const name of stageNames("image").filter((s) => s !== "nip" && s !== SMOOTHING)) {
  const stages = buildStages([name], { split: loaded.split, profile: loaded.profile, modality: "image" });
  const other = new ServingEngine({ ...loaded, defense: new DefensePipeline(loaded.split, stages) });
  Deno.bench(
    `${name} Defend with the verdict after defense, batch of 64`,
    { group: "batch of 64" },
    async () => {
      await other.defend(batch, 64, true);
    },
  );
}

// Randomized smoothing, one image: PREDICT (its n noisy forwards) as the pipeline's answer, and CERTIFY
// (n0 + n forwards) through the engine that answers Certify, with the profile's denoiser and without.
const smoothing = (denoiser: string) => {
  const stages = buildStages([SMOOTHING], {
    split: loaded.split,
    profile: loaded.profile,
    modality: "image",
    overrides: { [SMOOTHING]: { sigma: 0.25, denoiser } },
  });
  return new ServingEngine({ ...loaded, defense: new DefensePipeline(loaded.split, stages, "smoothed") });
};
const denoised = smoothing("auto");
const bareSmoothing = smoothing("none");
const certifyRequest = { n0: 100, n: 1000, alpha: 0.001, seed: 1 };
Deno.bench(
  "bare forward (Predict), smoothing",
  { group: "smoothing", baseline: true, n: 2000, warmup: 200 },
  async () => {
    await engine.predict(single, 1);
  },
);
for (
  const [label, smoothed] of [["denoiser " + denoised.certifierSettings.denoiser, denoised], [
    "no denoiser",
    bareSmoothing,
  ]] as const
) {
  Deno.bench(`smoothed PREDICT (n 100), ${label}`, { group: "smoothing", n: 50, warmup: 5 }, async () => {
    await smoothed.defend(single, 1, true);
  });
  Deno.bench(`CERTIFY (n0 100 + n 1000), ${label}`, { group: "smoothing", n: 10, warmup: 2 }, async () => {
    await smoothed.certify(single, 1, certifyRequest);
  });
}

Deno.bench("calibration: 64 candidates", { group: "calibration", n: 5, warmup: 1 }, () => {
  buildProfile(loaded.split, calibrationX, calibration.labels, { modelHash: loaded.modelHash });
});
