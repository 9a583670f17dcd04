/**
 * `deno task bench`: NIP defense cost against bare inference on the embedded default model (same
 * process, same inputs), and calibration throughput (candidates per second). Deno prints each defended
 * case as a multiple of its bare baseline.
 */
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../src/data/dataset.ts";
import { loadNamedDataset } from "../src/cli/datasets.ts";
import { samplePart } from "../src/data/splits.ts";
import { buildProfile } from "../src/nip/calibrate.ts";
import { loadPipeline } from "../src/pipeline.ts";

const pipeline = await loadPipeline();
const { dataset, split } = await loadNamedDataset("fashion-mnist");
const test = samplePart(dataset, split, "test", 64, { seed: 11 });
const calibration = samplePart(dataset, split, "calibration", 64, { seed: 12 });
const single = toTensor(test, 0, 1);
const batch = toTensor(test, 0, 64);
const calibrationX = toTensor(calibration);

function bare(x: tf.Tensor): void {
  tf.tidy(() => (pipeline.split.model.predict(x) as tf.Tensor).argMax(1).dataSync());
}

function defended(x: tf.Tensor): void {
  pipeline.defense.defendBatch(x).defended.dispose();
}

Deno.bench("bare forward, 1 image", { group: "one image", baseline: true }, () => bare(single));
Deno.bench(
  "NIP defense (match + perturb + reclassify), 1 image",
  { group: "one image" },
  () => defended(single),
);
Deno.bench("bare forward, batch of 64", { group: "batch of 64", baseline: true }, () => bare(batch));
Deno.bench("NIP defense, batch of 64", { group: "batch of 64" }, () => defended(batch));
Deno.bench("NIP_n (activation-space defense), batch of 64", { group: "batch of 64" }, () => {
  pipeline.defense.defendActivations(batch);
});
Deno.bench("calibration: 64 candidates", { group: "calibration", n: 5, warmup: 1 }, () => {
  buildProfile(pipeline.split, calibrationX, calibration.labels, { modelHash: pipeline.modelHash });
});
