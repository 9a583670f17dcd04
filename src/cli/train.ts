/**
 * `deno task train`: trains a classifier on a data set's fixed train split (the default LeNet on
 * Fashion-MNIST; `cifar10` and `gtsrb` read `../shared/data`), shows per-batch progress and per-epoch
 * loss/accuracy (on the calibration split) on stdout, evaluates on the test split and saves `model.json` +
 * `weights.bin` (engine model IO) and `metrics.json` to `--out` (default `models/<data>-<arch>`). With `--noise-sigma S` every
 * training batch gets Gaussian noise N(0, S^2) (not clipped, seeded): Cohen et al.'s noise-trained base
 * classifier for randomized smoothing; the test accuracy is then also measured on noisy test images.
 * `--init DIR` starts from a saved model's weights (same data, architecture and width) instead of a seeded
 * initialisation: a warm restart of the learning-rate schedule on a model trained before. `--widen-from DIR`
 * starts instead from a narrower saved model of the same architecture (a smaller `--width`), its function
 * copied into the wider one by Net2WiderNet (`src/models/widen.ts`). `--average-from N`
 * keeps the mean of the weights at the ends of epochs N to the last (stochastic weight averaging), then
 * re-estimates the batch-norm statistics with one pass at learning rate 0. `--arch lenet-norm` is the LeNet
 * with a per-image standardisation as its first layer and dropout 0.5 before the logits (for GTSRB, whose
 * lighting varies from sign to sign).
 *
 *   deno task train [--data fashion-mnist|mnist|cifar10|gtsrb] [--arch lenet|lenet-norm|vgg|resnet20|resnet8]
 *     [--augment none|crop|crop-flip|crop-color] [--width 1] [--epochs 8] [--seed 1] [--backend wasm|cpu|tensorflow|webgpu]
 *     [--batch-size 64] [--lr 0.001] [--schedule halving|cosine|constant] [--weight-decay 5e-4] [--limit N]
 *     [--noise-sigma S] [--init DIR | --widen-from DIR] [--average-from N] [--out DIR]
 *     [--adversarial pgd:EPS[:STEPS] | fgsm-rs:EPS]   adversarial training (Madry et al. 2018 PGD, default 7
 *       steps; Wong et al. 2020 FGSM from a random start): the reference every sidecar defense is compared with
 *
 * @module
 */
import process from "node:process";
import cliProgress from "cli-progress";
import * as tf from "@tensorflow/tfjs";
import { type BackendName, initBackend, parseBackendName } from "../engine/backend.ts";
import { loadLayersModel, saveModel } from "../engine/model_io.ts";
import { widenInto } from "../models/widen.ts";
import { type Dataset, subset } from "../data/dataset.ts";
import { CIFAR10_SPLIT_SEED, GTSRB_SPLIT_SEED } from "../data/cifar_binary.ts";
import {
  applySplit,
  FASHION_MNIST_PER_CLASS_SPLIT,
  FASHION_MNIST_SPLIT_SEED,
  MNIST_HELD_OUT_FRACTION,
  MNIST_SPLIT_SEED,
  seededShuffle,
} from "../data/splits.ts";
import { loadNamedDataset } from "../data/named_datasets.ts";
import { parseFlags, runMain, UsageError } from "./args.ts";
import { createLeNet } from "../models/lenet.ts";
import { createResNet, createVgg } from "../models/image_nets.ts";
import { imageAugmentation } from "../models/augment.ts";
import {
  adversarialAugmentation,
  type AdversarialTraining,
  parseAdversarialTraining,
} from "./adversarial_training.ts";
import {
  type EpochSummary,
  evaluateAccuracy,
  gaussianNoiseAugmentation,
  LEARNING_RATE_SCHEDULES,
  type LearningRateSchedule,
  trainClassifier,
} from "../models/training.ts";

/** The datasets `train` knows (`cifar10` and `gtsrb` read `../shared/data`). */
export const TRAIN_DATASETS = ["fashion-mnist", "mnist", "cifar10", "gtsrb"] as const;
/** The architectures `train` builds: LeNet-5 (Flatten), a VGG-style net (Flatten), ResNet-20 / -8 (GAP). */
export const TRAIN_ARCHITECTURES = ["lenet", "lenet-norm", "vgg", "resnet20", "resnet8"] as const;
/** One of {@link TRAIN_ARCHITECTURES}. */
export type TrainArchitecture = typeof TRAIN_ARCHITECTURES[number];
/** Training-batch augmentations: random crop of a 4-pixel zero-padded image, plus a mirror with `crop-flip`. */
export const TRAIN_AUGMENTATIONS = ["none", "crop", "crop-flip", "crop-color"] as const;
/** One of {@link TRAIN_AUGMENTATIONS}. */
export type TrainAugmentation = typeof TRAIN_AUGMENTATIONS[number];
/** One of {@link TRAIN_DATASETS}. */
export type TrainDataset = typeof TRAIN_DATASETS[number];

/** `crop-color`'s brightness and contrast jitter (see `colorJitter`). */
const COLOR_JITTER = 0.4;

/** Settings of one training run. */
export interface TrainRunOptions {
  data: TrainDataset;
  arch: TrainArchitecture;
  augment: TrainAugmentation;
  /** L2 weight decay of the VGG and ResNet kernels (their default when absent). */
  weightDecay?: number;
  /** Multiplier of every layer's width (filters, dense units); default 1. */
  width?: number;
  /** Adversarial training: every batch replaced by adversarial examples of the model in training. */
  adversarial?: AdversarialTraining;
  epochs: number;
  seed: number;
  backend: BackendName;
  batchSize: number;
  /** Adam learning rate at the start of the schedule. */
  learningRate: number;
  /** How the learning rate falls over the epochs; default halving. */
  schedule: LearningRateSchedule;
  /** Use only this many (seeded-randomly chosen) training images; default all. */
  limit?: number;
  /** Standard deviation of the Gaussian noise added to every training batch; none when absent. */
  noiseSigma?: number;
  /** A saved model whose weights the run starts from (a warm restart); a seeded initialisation when absent. */
  init?: string;
  /** A narrower saved model whose function the wider run starts from (Net2WiderNet); exclusive of `init`. */
  widenFrom?: string;
  /** Epoch (1-based) from which the epoch-end weights are averaged into the saved model; none when absent. */
  averageFrom?: number;
  out: string;
}

/** What `metrics.json` holds. */
export interface TrainMetrics {
  data: TrainDataset;
  arch: TrainArchitecture;
  augment: TrainAugmentation;
  /** Training images per second, augmentation included. */
  imagesPerSecond: number;
  /** The adversarial training, when there was one. */
  adversarial?: AdversarialTraining;
  /** Width multiplier of the architecture. */
  width: number;
  /** The model the weights started from (`--init`), when not a fresh initialisation. */
  init?: string;
  /** The narrower model the weights were widened from (`--widen-from`). */
  widenFrom?: string;
  /** The saved weights are the mean of those at the ends of epochs `averageFrom` (1-based) to the last. */
  averageFrom?: number;
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

function positiveInteger(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) {
    throw new UsageError(`--${flag} must be a positive integer, got "${value}"`);
  }
  return parsed;
}

function positiveNumber(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!(parsed > 0) || !Number.isFinite(parsed)) {
    throw new UsageError(`--${flag} must be a positive number, got "${value}"`);
  }
  return parsed;
}

function defaultOutput(data: TrainDataset, arch: TrainArchitecture): string {
  if (data === "fashion-mnist" && arch === "lenet") return "models/fashion-lenet";
  return `models/${data}-${arch}`;
}

type Augmentation = (
  x: tf.Tensor4D,
  batchSeed: number,
  labels: tf.Tensor2D,
) => tf.Tensor4D | Promise<tf.Tensor4D>;

/** The batch transformations in order: crop/flip, Gaussian noise, then the adversarial example of the result. */
function trainingAugmentation(options: TrainRunOptions, model: tf.LayersModel): Augmentation | undefined {
  const steps: Augmentation[] = [];
  if (options.augment !== "none") {
    steps.push(imageAugmentation({
      flip: options.augment === "crop-flip",
      jitter: options.augment === "crop-color" ? COLOR_JITTER : 0,
    }));
  }
  if (options.noiseSigma !== undefined) steps.push(gaussianNoiseAugmentation(options.noiseSigma));
  if (options.adversarial !== undefined) steps.push(adversarialAugmentation(model, options.adversarial));
  if (steps.length <= 1) return steps[0];
  return async (x, batchSeed, labels) => {
    let current = x;
    for (const [i, step] of steps.entries()) {
      const next = await step(current, batchSeed + i, labels);
      if (current !== x && next !== current) current.dispose();
      current = next;
    }
    return current;
  };
}

/** Parses command-line flags (see the module doc); throws a UsageError naming the flag on bad input. */
export function parseTrainArgs(args: string[]): TrainRunOptions {
  const values = parseFlags({
    data: { type: "string", default: "fashion-mnist" },
    arch: { type: "string", default: "lenet" },
    augment: { type: "string", default: "none" },
    "weight-decay": { type: "string" },
    adversarial: { type: "string" },
    width: { type: "string" },
    epochs: { type: "string" },
    seed: { type: "string" },
    backend: { type: "string", default: "wasm" },
    "batch-size": { type: "string" },
    lr: { type: "string" },
    schedule: { type: "string", default: "halving" },
    limit: { type: "string" },
    "noise-sigma": { type: "string" },
    init: { type: "string" },
    "widen-from": { type: "string" },
    "average-from": { type: "string" },
    out: { type: "string" },
  }, args);
  const data = values.data as string;
  if (!(TRAIN_DATASETS as readonly string[]).includes(data)) {
    throw new UsageError(`--data must be one of ${TRAIN_DATASETS.join(", ")}, got "${data}"`);
  }
  const arch = values.arch as string;
  if (!(TRAIN_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new UsageError(`--arch must be one of ${TRAIN_ARCHITECTURES.join(", ")}, got "${arch}"`);
  }
  const augment = values.augment as string;
  if (!(TRAIN_AUGMENTATIONS as readonly string[]).includes(augment)) {
    throw new UsageError(`--augment must be one of ${TRAIN_AUGMENTATIONS.join(", ")}, got "${augment}"`);
  }
  const weightDecay = values["weight-decay"] === undefined ? undefined : Number(values["weight-decay"]);
  if (weightDecay !== undefined && !(weightDecay >= 0)) {
    throw new UsageError(`--weight-decay must be a number >= 0, got "${values["weight-decay"]}"`);
  }
  const epochs = positiveInteger("epochs", values.epochs, 8);
  const averageFrom = values["average-from"] === undefined
    ? undefined
    : positiveInteger("average-from", values["average-from"], 1);
  if (averageFrom !== undefined && averageFrom > epochs) {
    throw new UsageError(`--average-from must be at most --epochs (${epochs}), got ${averageFrom}`);
  }
  if (values.init !== undefined && values["widen-from"] !== undefined) {
    throw new UsageError("--init and --widen-from both name the starting weights: give one");
  }
  return {
    data: data as TrainDataset,
    arch: arch as TrainArchitecture,
    augment: augment as TrainAugmentation,
    weightDecay,
    width: values.width === undefined ? undefined : positiveNumber("width", values.width, 1),
    adversarial: values.adversarial === undefined ? undefined : parseAdversarialTraining(values.adversarial),
    epochs,
    seed: positiveInteger("seed", values.seed, 1),
    backend: parseBackendName(values.backend as string),
    batchSize: positiveInteger("batch-size", values["batch-size"], 64),
    learningRate: positiveNumber("lr", values.lr, 0.001),
    schedule: parseSchedule(values.schedule as string),
    limit: values.limit === undefined ? undefined : positiveInteger("limit", values.limit, 0),
    noiseSigma: values["noise-sigma"] === undefined
      ? undefined
      : positiveNumber("noise-sigma", values["noise-sigma"], 0),
    init: values.init,
    widenFrom: values["widen-from"],
    averageFrom,
    out: values.out ?? defaultOutput(data as TrainDataset, arch as TrainArchitecture),
  };
}

function parseSchedule(name: string): LearningRateSchedule {
  if (!Object.hasOwn(LEARNING_RATE_SCHEDULES, name)) {
    throw new UsageError(
      `--schedule must be one of ${Object.keys(LEARNING_RATE_SCHEDULES).join(", ")}, got "${name}"`,
    );
  }
  return name as LearningRateSchedule;
}

/** How each data set's fixed split is drawn, for `metrics.json` and the model card. */
const SPLIT_RULES: Record<TrainDataset, { seed: number; rule: string }> = {
  "fashion-mnist": {
    seed: FASHION_MNIST_SPLIT_SEED,
    rule:
      `per class: ${FASHION_MNIST_PER_CLASS_SPLIT.train} train / ${FASHION_MNIST_PER_CLASS_SPLIT.calibration} ` +
      `calibration / ${FASHION_MNIST_PER_CLASS_SPLIT.test} test`,
  },
  mnist: {
    seed: MNIST_SPLIT_SEED,
    rule:
      `per class: round(${MNIST_HELD_OUT_FRACTION} n) calibration, round(${MNIST_HELD_OUT_FRACTION} n) test, rest train`,
  },
  cifar10: {
    seed: CIFAR10_SPLIT_SEED,
    rule: "per class: round(0.1 n) calibration, round(0.1 n) test, rest train",
  },
  gtsrb: {
    seed: GTSRB_SPLIT_SEED,
    rule:
      "by track (15 frames each), per class: max(1, round(0.15 t)) tracks calibration, as many test, rest train",
  },
};

/** The model `--arch` names for a data set's image shape and class count. */
export function createArchitecture(
  arch: TrainArchitecture,
  dataset: Pick<Dataset, "shape" | "classNames">,
  options: { seed: number; learningRate: number; weightDecay?: number; width?: number },
): tf.LayersModel {
  const { width = 1, ...rest } = options;
  const common = { inputShape: dataset.shape, classes: dataset.classNames.length, ...rest };
  const times = (n: number) => Math.round(n * width);
  switch (arch) {
    case "lenet":
      return createLeNet({ ...common, filters: [times(16), times(32)], denseUnits: times(128) });
    case "lenet-norm":
      return createLeNet({
        ...common,
        filters: [times(16), times(32)],
        denseUnits: times(128),
        perImageNormalization: true,
        dropout: 0.5,
      });
    case "vgg":
      return createVgg({ ...common, blocks: [32, 64, 128].map(times), denseUnits: times(256) });
    case "resnet20":
      return createResNet({ ...common, width: times(16) });
    case "resnet8":
      return createResNet({ ...common, blocks: 1, width: times(16) });
  }
}

/** Sets `model`'s weights to those of the model saved in `dir`; an error naming the first mismatch. */
async function copyWeightsFrom(dir: string, model: tf.LayersModel): Promise<void> {
  const saved = await loadLayersModel(dir);
  try {
    const from = saved.weights;
    const to = model.weights;
    const mismatch = from.length !== to.length
      ? `${from.length} weights, the new model ${to.length}`
      : from.map((w, i) => [w, to[i]] as const).find(([a, b]) => a.shape.join("x") !== b.shape.join("x"))
        ?.map((w) => `${w.name} ${w.shape.join("x")}`).join(" vs ");
    if (mismatch !== undefined) {
      throw new UsageError(`--init ${dir} does not match --arch/--width: ${mismatch}`);
    }
    model.setWeights(saved.getWeights());
  } finally {
    saved.dispose();
  }
}

/** Sets `model`'s weights to the widened function of the narrower model saved in `dir`; a usage error if it cannot. */
async function widenFrom(dir: string, model: tf.LayersModel, seed: number): Promise<void> {
  const saved = await loadLayersModel(dir);
  try {
    widenInto(saved, model, { seed });
  } catch (error) {
    throw new UsageError(`--widen-from ${dir}: ${(error as Error).message}`);
  } finally {
    saved.dispose();
  }
}

/** Runs one training: load, split, train with progress, evaluate, save. Returns the metrics written. */
export async function runTraining(options: TrainRunOptions): Promise<TrainMetrics> {
  const backend = await initBackend(options.backend);
  const loadStarted = performance.now();
  const { dataset, split } = await loadNamedDataset(options.data);
  const { rule, seed: splitSeed } = SPLIT_RULES[options.data];
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

  const model = createArchitecture(options.arch, dataset, {
    seed: options.seed,
    learningRate: options.learningRate,
    weightDecay: options.weightDecay,
    width: options.width,
  });
  if (options.init !== undefined) await copyWeightsFrom(options.init, model);
  if (options.widenFrom !== undefined) await widenFrom(options.widenFrom, model, options.seed);
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
    learningRateForEpoch: LEARNING_RATE_SCHEDULES[options.schedule].create(
      options.learningRate,
      options.epochs,
    ),
    augment: trainingAugmentation(options, model),
    averageFrom: options.averageFrom === undefined ? undefined : options.averageFrom - 1,
    onBatch: ({ epoch, batch, loss, accuracy }) => {
      if (batch === 0) {
        bar.start(batches, 0, {
          epoch: epoch < options.epochs ? epoch + 1 : "average",
          epochs: options.epochs,
          loss: "-",
          acc: "-",
        });
      }
      bar.update(batch + 1, { loss: loss.toFixed(4), acc: accuracy.toFixed(4) });
    },
    onEpoch: (summary) => {
      bar.stop();
      const what = summary.averagedEpochs === undefined
        ? `epoch ${summary.epoch + 1}/${options.epochs}`
        : `mean of the last ${summary.averagedEpochs} epochs' weights, batch-norm statistics re-estimated`;
      console.log(
        `${what}: loss ${summary.loss.toFixed(4)}, acc ${summary.accuracy.toFixed(4)}, calibration acc ${
          summary.validationAccuracy?.toFixed(4)
        }, lr ${summary.learningRate}, ${summary.seconds.toFixed(1)} s`,
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
    arch: options.arch,
    augment: options.augment,
    width: options.width ?? 1,
    ...(options.init === undefined ? {} : { init: options.init }),
    ...(options.widenFrom === undefined ? {} : { widenFrom: options.widenFrom }),
    ...(options.averageFrom === undefined ? {} : { averageFrom: options.averageFrom }),
    ...(options.adversarial === undefined ? {} : { adversarial: options.adversarial }),
    imagesPerSecond: Math.round(
      train.count * options.epochs /
        history.slice(0, options.epochs).reduce((sum, e) => sum + e.seconds, 0) * 10,
    ) / 10,
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
    learningRate: LEARNING_RATE_SCHEDULES[options.schedule].describe(options.learningRate, options.epochs),
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
  await runMain(async () => {
    await runTraining(parseTrainArgs(Deno.args));
  }, import.meta.url);
}
