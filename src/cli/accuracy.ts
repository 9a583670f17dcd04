/**
 * `deno task accuracy`: the plain accuracy of a model (a LayersModel or a GraphModel folder) on a data
 * source, with no profile and no defense: overall and per class, with the images per second of the forward
 * pass. A named set is read from its fixed split part (`--part`, default test); the user's own files
 * (image folder, CIFAR-binary file, `.npy` arrays) whole.
 *
 *   deno task accuracy [--model models/fashion-lenet] [--data fashion-mnist | folder:PHOTOS | x.bin |
 *     npy:X.npy:Y.npy] [--part test|calibration|train|all] [--n N] [--seed 1] [--out FILE.json]
 *     [--backend wasm] [--input-range 0,255] [--mean M,M,M --std S,S,S]
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../data/dataset.ts";
import { BACKEND_NAMES, initBackend } from "../engine/backend.ts";
import { predictLabels } from "../nip/neurons.ts";
import { DEFAULT_MODEL_DIR, loadSplitModel } from "../pipeline.ts";
import {
  choiceFlag,
  numberFlag,
  parseFlags,
  PREPROCESSING_FLAGS,
  preprocessingFromFlags,
  runMain,
} from "./args.ts";
import { sampleFlag } from "./data_flags.ts";

/** What `accuracy` prints and writes. */
export interface AccuracyReport {
  model: string;
  modelHash: string;
  data: string;
  examples: number;
  accuracy: number;
  perClass: { name: string; examples: number; accuracy: number }[];
  imagesPerSecond: number;
}

async function main(): Promise<void> {
  const flags = parseFlags({
    model: { type: "string", default: DEFAULT_MODEL_DIR },
    data: { type: "string", default: "fashion-mnist" },
    part: { type: "string", default: "test" },
    n: { type: "string" },
    seed: { type: "string", default: "1" },
    out: { type: "string" },
    backend: { type: "string", default: "wasm" },
    layer: { type: "string" },
    ...PREPROCESSING_FLAGS,
  });
  await initBackend(choiceFlag("backend", flags.backend, BACKEND_NAMES));
  const { split, hash } = await loadSplitModel(flags.model, {
    layerName: flags.layer,
    preprocessing: preprocessingFromFlags(flags),
  });
  const part = choiceFlag("part", flags.part, ["test", "calibration", "train", "all"] as const);
  const { dataset, description } = await sampleFlag(
    "data",
    flags.data,
    part,
    numberFlag("n", flags.n ?? "1e9", 1),
    {
      shape: split.inputShape,
      seed: numberFlag("seed", flags.seed),
      upTo: true,
    },
  );
  const predicted = new Int32Array(dataset.count);
  const batch = 250;
  const started = performance.now();
  for (let start = 0; start < dataset.count; start += batch) {
    const end = Math.min(dataset.count, start + batch);
    const x = toTensor(dataset, start, end);
    predicted.set(predictLabels(split.model, x), start);
    x.dispose();
  }
  const seconds = (performance.now() - started) / 1000;
  const classes = dataset.classNames.map((name) => ({ name, examples: 0, correct: 0 }));
  for (let i = 0; i < dataset.count; i++) {
    const entry = classes[dataset.labels[i]];
    entry.examples++;
    if (predicted[i] === dataset.labels[i]) entry.correct++;
  }
  const correct = classes.reduce((sum, c) => sum + c.correct, 0);
  const report: AccuracyReport = {
    model: flags.model,
    modelHash: hash,
    data: description,
    examples: dataset.count,
    accuracy: correct / dataset.count,
    perClass: classes.map((c) => ({ name: c.name, examples: c.examples, accuracy: c.correct / c.examples })),
    imagesPerSecond: Math.round(dataset.count / seconds),
  };
  split.model.dispose();
  console.log(
    `${flags.model}: accuracy ${(report.accuracy * 100).toFixed(2)}% on ${dataset.count} examples ` +
      `(${description}; backend ${tf.getBackend()}, ${report.imagesPerSecond} images/s)`,
  );
  for (const c of report.perClass) {
    console.log(`  ${c.name}: ${(c.accuracy * 100).toFixed(1)}% of ${c.examples}`);
  }
  if (flags.out !== undefined) {
    await Deno.writeTextFile(flags.out, JSON.stringify(report, null, 2) + "\n");
    console.log(`written: ${flags.out}`);
  }
}

if (import.meta.main) await runMain(main, import.meta.url);
