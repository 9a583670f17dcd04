/**
 * A small real pipeline built in memory: the LeNet trained briefly on a Fashion-MNIST slice, split at
 * "flatten", calibrated on a disjoint slice, with NIP as its defense pipeline. The server tests use it, and the
 * serving benchmark falls back to it when the embedded model is not on disk. Not for accuracy claims.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Dataset } from "../data/dataset.ts";
import { loadFashionMnist } from "../data/fashion_mnist.ts";
import { fashionMnistSplit, samplePart } from "../data/splits.ts";
import { splitModel } from "../engine/split.ts";
import { createLeNet, LENET_FLATTEN_LAYER } from "../models/lenet.ts";
import { trainClassifier } from "../models/training.ts";
import { buildProfile } from "../nip/calibrate.ts";
import { DefensePipeline } from "../stages/pipeline.ts";
import { buildStages } from "../stages/registry.ts";
import type { NipProfile } from "../nip/profile.ts";
import type { PipelineLike } from "./engine.ts";

/** Options of {@link trainDemoPipeline}. */
export interface DemoPipelineOptions {
  /** Training images per class (from the start of each class). Default 200. */
  trainPerClass?: number;
  /** Calibration images per class (from index 6000 of each class, disjoint from training). Default 20. */
  calibrationPerClass?: number;
  epochs?: number;
  seed?: number;
  modelName?: string;
}

/** A demo pipeline plus 100 test-split images (the fixed Fashion-MNIST split). */
export interface DemoPipeline extends PipelineLike {
  profile: NipProfile;
  test: Dataset;
}

/** Trains and calibrates the demo pipeline (a few seconds on wasm). Call `initBackend` first. */
export async function trainDemoPipeline(options: DemoPipelineOptions = {}): Promise<DemoPipeline> {
  const fashion = await loadFashionMnist();
  const parts = fashionMnistSplit(fashion.labels);
  const train = samplePart(fashion, parts, "train", 10 * (options.trainPerClass ?? 200), { seed: 31 });
  const calibration = samplePart(fashion, parts, "calibration", 10 * (options.calibrationPerClass ?? 20), {
    seed: 32,
  });
  const test = samplePart(fashion, parts, "test", 100, { seed: 33 });
  const model = createLeNet({ seed: options.seed ?? 1 });
  await trainClassifier(model, train, {
    epochs: options.epochs ?? 2,
    batchSize: 32,
    seed: options.seed ?? 1,
  });
  const split = splitModel(model, { layerName: LENET_FLATTEN_LAYER });
  const x = tf.tensor4d(calibration.images, [calibration.count, ...calibration.shape]);
  const modelHash = `demo-seed-${options.seed ?? 1}`;
  let profile;
  try {
    profile = buildProfile(split, x, calibration.labels, {
      modelHash,
      provenance: { data: calibration.name },
    });
  } finally {
    x.dispose();
  }
  const defense = new DefensePipeline(split, buildStages(["nip"], { split, profile, modality: "image" }));
  return { split, profile, defense, modelName: options.modelName ?? "fashion-lenet", test };
}
