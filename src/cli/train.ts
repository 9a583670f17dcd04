/**
 * `deno task train`: trains the default LeNet-style model on the fixed split of Fashion-MNIST (or MNIST),
 * shows per-batch progress and per-epoch loss/accuracy on stdout, evaluates on the test split and saves
 * `model.json` + `weights.bin` (engine model IO) and `metrics.json` to `--out`. With `--noise-sigma S` every
 * training batch gets Gaussian noise N(0, S^2) (not clipped, seeded): Cohen et al.'s noise-trained base
 * classifier for randomized smoothing; the test accuracy is then also measured on noisy test images.
 *
 * Usage: `deno task train [--data fashion-mnist|mnist] [--epochs 8] [--seed 1] [--backend wasm]
 *   [--batch-size 64] [--lr 0.001] [--limit N] [--noise-sigma S] [--out models/fashion-lenet]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import process from "node:process";
import cliProgress from "cli-progress";
import * as tf from "@tensorflow/tfjs";
import { type BackendName, initBackend, parseBackendName } from "../engine/backend.ts";
import { saveModel } from "../engine/model_io.ts";
import type { Dataset } from "../data/dataset.ts";
import { loadFashionMnist } from "../data/fashion_mnist.ts";
import { loadMnist } from "../data/mnist.ts";
import {
  applySplit,
  FASHION_MNIST_PER_CLASS_SPLIT,
  FASHION_MNIST_SPLIT_SEED,
  fashionMnistSplit,
  MNIST_HELD_OUT_FRACTION,
  MNIST_SPLIT_SEED,
  mnistSplit,
  seededShuffle,
  type Split,
} from "../data/splits.ts";
import { subset } from "../data/dataset.ts";
import { createLeNet } from "../models/lenet.ts";
import {
  type EpochSummary,
  evaluateAccuracy,
  gaussianNoiseAugmentation,
  halvingSchedule,
  trainClassifier,
} from "../models/training.ts";

/** The datasets `train` knows. */
export const TRAIN_DATASETS = ["fashion-mnist", "mnist"] as const;
/** One of {@link TRAIN_DATASETS}. */
export type TrainDataset = typeof TRAIN_DATASETS[number];

/** Settings of one training run. */
export interface TrainRunOptions {
  data: TrainDataset;
  epochs: number;
  seed: number;
  backend: BackendName;
  batchSize: number;
  /** Adam learning rate of the first half of the epochs; then halved every epoch. */
  learningRate: number;
  /** Use only this many (seeded-randomly chosen) training images; default all. */
  limit?: number;
  /** Standard deviation of the Gaussian noise added to every training batch; none when absent. */
  noiseSigma?: number;
  out: string;
}

/** What `metrics.json` holds. */
export interface TrainMetrics {
  data: TrainDataset;
  testAccuracy: number;
  /** Gaussian noise of the training batches (0: none). */
  noiseSigma: number;
  /** Test accuracy on the test images plus one seeded draw of N(0, noiseSigma^2) each (with noise only). */
  noisyTestAccuracy?: number;
  testCount: number;
  calibrationAccuracy: number;
  split: { seed: number; rule: string; train: number; calibration: number; test: number };
  epochs: number;
  batchSize: number;
  learningRate: string;
  seed: number;
  backend: string;
  trainImages: number;
  trainSeconds: number;
  history: EpochSummary[];
  parameters: number;
  createdAt: string;
  tfjsVersion: string;
}

const USAGE =
  `usage: deno task train [--data fashion-mnist|mnist] [--epochs N] [--seed N] [--backend wasm|cpu|tensorflow|webgpu]
                        [--batch-size N] [--lr X] [--limit N] [--noise-sigma S] [--out DIR]`;

function positiveInteger(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) {
    throw new Error(`--${flag} must be a positive integer, got "${value}"`);
  }
  return parsed;
}

function positiveNumber(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!(parsed > 0) || !Number.isFinite(parsed)) {
    throw new Error(`--${flag} must be a positive number, got "${value}"`);
  }
  return parsed;
}

/** Thrown by {@link parseTrainArgs} for `--help`: its message is the usage text. */
export class UsageRequested extends Error {}

/** Parses command-line flags (see the module doc); throws with the usage on bad input. */
export function parseTrainArgs(args: string[]): TrainRunOptions {
  const { values } = parseArgs({
    args,
    options: {
      data: { type: "string", default: "fashion-mnist" },
      epochs: { type: "string" },
      seed: { type: "string" },
      backend: { type: "string", default: "wasm" },
      "batch-size": { type: "string" },
      lr: { type: "string" },
      limit: { type: "string" },
      "noise-sigma": { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) throw new UsageRequested(USAGE);
  const data = values.data as string;
  if (!(TRAIN_DATASETS as readonly string[]).includes(data)) {
    throw new Error(`--data must be one of ${TRAIN_DATASETS.join(", ")}, got "${data}"\n${USAGE}`);
  }
  return {
    data: data as TrainDataset,
    epochs: positiveInteger("epochs", values.epochs, 8),
    seed: positiveInteger("seed", values.seed, 1),
    backend: parseBackendName(values.backend as string),
    batchSize: positiveInteger("batch-size", values["batch-size"], 64),
    learningRate: positiveNumber("lr", values.lr, 0.001),
    limit: values.limit === undefined ? undefined : positiveInteger("limit", values.limit, 0),
    noiseSigma: values["noise-sigma"] === undefined
      ? undefined
      : positiveNumber("noise-sigma", values["noise-sigma"], 0),
    out: values.out ?? (data === "mnist" ? "models/mnist-lenet" : "models/fashion-lenet"),
  };
}

async function loadWithSplit(
  data: TrainDataset,
): Promise<{ dataset: Dataset; split: Split; rule: string; seed: number }> {
  if (data === "mnist") {
    const dataset = await loadMnist();
    const fraction = MNIST_HELD_OUT_FRACTION;
    return {
      dataset,
      split: mnistSplit(dataset.labels),
      seed: MNIST_SPLIT_SEED,
      rule: `per class: round(${fraction} n) calibration, round(${fraction} n) test, rest train`,
    };
  }
  const dataset = await loadFashionMnist();
  const counts = FASHION_MNIST_PER_CLASS_SPLIT;
  return {
    dataset,
    split: fashionMnistSplit(dataset.labels),
    seed: FASHION_MNIST_SPLIT_SEED,
    rule: `per class: ${counts.train} train / ${counts.calibration} calibration / ${counts.test} test`,
  };
}

/** Runs one training: load, split, train with progress, evaluate, save. Returns the metrics written. */
export async function runTraining(options: TrainRunOptions): Promise<TrainMetrics> {
  const backend = await initBackend(options.backend);
  const loadStarted = performance.now();
  const { dataset, split, rule, seed: splitSeed } = await loadWithSplit(options.data);
  const parts = applySplit(dataset, split);
  let train = parts.train;
  if (options.limit !== undefined && options.limit < train.count) {
    const chosen = seededShuffle(Int32Array.from({ length: train.count }, (_, i) => i), options.seed);
    train = subset(train, chosen.subarray(0, options.limit), train.name);
  }
  console.log(
    `${options.data}: ${dataset.count} images loaded in ${
      ((performance.now() - loadStarted) / 1000).toFixed(1)
    } s; ` +
      `split seed ${splitSeed}: train ${split.train.length}, calibration ${split.calibration.length}, test ${split.test.length}` +
      `; backend ${backend}; training on ${train.count} images` +
      (options.noiseSigma === undefined ? "" : ` with Gaussian noise sigma ${options.noiseSigma}`),
  );

  const model = createLeNet({
    classes: dataset.classNames.length,
    inputShape: dataset.shape,
    seed: options.seed,
  });
  const batches = Math.ceil(train.count / options.batchSize);
  const bar = new cliProgress.SingleBar({
    format:
      "epoch {epoch}/{epochs} [{bar}] {value}/{total} batches | loss {loss} | acc {acc} | ETA {eta_formatted}",
    stream: process.stdout,
    noTTYOutput: true,
    notTTYSchedule: 10_000,
    hideCursor: true,
  }, cliProgress.Presets.shades_classic);
  const started = performance.now();
  const history = await trainClassifier(model, train, {
    epochs: options.epochs,
    batchSize: options.batchSize,
    seed: options.seed,
    validation: parts.calibration,
    learningRateForEpoch: halvingSchedule(options.learningRate, options.epochs),
    augment: options.noiseSigma === undefined ? undefined : gaussianNoiseAugmentation(options.noiseSigma),
    onBatch: ({ epoch, batch, loss, accuracy }) => {
      if (batch === 0) {
        bar.start(batches, 0, { epoch: epoch + 1, epochs: options.epochs, loss: "-", acc: "-" });
      }
      bar.update(batch + 1, { loss: loss.toFixed(4), acc: accuracy.toFixed(4) });
    },
    onEpoch: (summary) => {
      bar.stop();
      console.log(
        `epoch ${summary.epoch + 1}/${options.epochs}: loss ${summary.loss.toFixed(4)}, acc ${
          summary.accuracy.toFixed(4)
        }, calibration acc ${summary.validationAccuracy?.toFixed(4)}, lr ${summary.learningRate}, ${
          summary.seconds.toFixed(1)
        } s`,
      );
    },
  });
  const trainSeconds = (performance.now() - started) / 1000;
  const testAccuracy = await evaluateAccuracy(model, parts.test);
  console.log(`test accuracy ${(testAccuracy * 100).toFixed(2)}% on ${parts.test.count} images`);
  let noisyTestAccuracy: number | undefined;
  if (options.noiseSigma !== undefined) {
    noisyTestAccuracy = await evaluateAccuracy(model, parts.test, 500, {
      sigma: options.noiseSigma,
      seed: options.seed,
    });
    console.log(
      `noisy test accuracy ${
        (noisyTestAccuracy * 100).toFixed(2)
      }% (Gaussian noise sigma ${options.noiseSigma})`,
    );
  }

  const metrics: TrainMetrics = {
    data: options.data,
    testAccuracy,
    noiseSigma: options.noiseSigma ?? 0,
    ...(noisyTestAccuracy === undefined ? {} : { noisyTestAccuracy }),
    testCount: parts.test.count,
    calibrationAccuracy: history[history.length - 1]?.validationAccuracy ?? Number.NaN,
    split: {
      seed: splitSeed,
      rule,
      train: split.train.length,
      calibration: split.calibration.length,
      test: split.test.length,
    },
    epochs: options.epochs,
    batchSize: options.batchSize,
    learningRate: `Adam ${options.learningRate} for the first ${
      Math.ceil(options.epochs / 2)
    } epochs, then halved every epoch`,
    seed: options.seed,
    backend,
    trainImages: train.count,
    trainSeconds: Math.round(trainSeconds * 10) / 10,
    history,
    parameters: model.countParams(),
    createdAt: new Date().toISOString(),
    tfjsVersion: tf.version.tfjs,
  };
  await saveModel(model, options.out);
  await Deno.writeTextFile(`${options.out}/metrics.json`, JSON.stringify(metrics, null, 2) + "\n");
  console.log(`saved ${options.out}/model.json, weights.bin, metrics.json`);
  model.dispose();
  return metrics;
}

if (import.meta.main) {
  let options: TrainRunOptions;
  try {
    options = parseTrainArgs(Deno.args);
  } catch (error) {
    if (error instanceof UsageRequested) {
      console.log(error.message);
      Deno.exit(0);
    }
    console.error((error as Error).message);
    Deno.exit(2);
  }
  await runTraining(options);
}
