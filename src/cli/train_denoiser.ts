/**
 * `deno task train:denoiser`: trains the denoisers of denoised smoothing (Salman et al. 2020) for a model
 * and stores them in its profile (the smoothing stage's state). Per noise level: an MSE denoiser from a
 * fresh initialisation, then a stability denoiser initialised from that MSE denoiser (the paper's best
 * recipe), trained through the frozen classifier. Training reads the train part of the fixed split only;
 * each denoiser is then measured on held-out calibration images (denoising MSE, and the classifier's
 * accuracy on the denoised and on the plain noisy images). Each denoiser is saved into the profile as soon
 * as it is trained, and the run is written to `<model>/denoisers.json`.
 *
 *   deno task train:denoiser [--model models/fashion-lenet] [--profile DIR] [--sigma 0.12,0.25,0.5]
 *     [--objective mse,stability] [--epochs 3] [--stability-epochs 1] [--batch-size 64] [--lr 0.001]
 *     [--seed 1] [--limit N] [--held-out 1000] [--data fashion-mnist] [--backend wasm]
 *
 * @module
 */
import { join } from "node:path";
import process from "node:process";
import cliProgress from "cli-progress";
import * as tf from "@tensorflow/tfjs";
import { type Dataset, subset } from "../data/dataset.ts";
import { samplePart, seededShuffle, splitPart } from "../data/splits.ts";
import { BACKEND_NAMES, initBackend } from "../engine/backend.ts";
import { loadLayersModel, modelHash } from "../engine/model_io.ts";
import {
  createDenoiser,
  defaultDenoiserSpec,
  denoiserFromWeights,
  type DenoiserSpec,
  flattenWeights,
} from "../models/denoiser.ts";
import {
  type DenoiserEpochSummary,
  type DenoiserEvaluation,
  evaluateDenoiser,
  trainDenoiser,
} from "../models/denoiser_training.ts";
import type { NipProfile } from "../nip/profile.ts";
import { DEFAULT_MODEL_DIR, defaultProfileDir } from "../pipeline.ts";
import { loadProfile, saveProfile } from "../profile_io.ts";
import {
  DENOISER_OBJECTIVES,
  denoiserName,
  denoiserNames,
  type DenoiserObjective,
  type DenoiserRecord,
  withDenoiser,
} from "../smoothing/denoiser_state.ts";
import { SMOOTHING } from "../stages/smoothing.ts";
import { choiceFlag, listFlag, numberFlag, parseFlags, runMain, UsageError } from "./args.ts";
import { DATASET_NAMES, loadNamedDataset } from "../data/named_datasets.ts";

/** One trained denoiser as written to `denoisers.json`. */
export interface DenoiserRunEntry {
  record: DenoiserRecord;
  settings: { batchSize: number; learningRate: number; seed: number };
  history: DenoiserEpochSummary[];
  heldOut: DenoiserEvaluation & { data: string };
}

/** What `denoisers.json` holds: the run's settings and each denoiser trained by this or earlier runs. */
export interface DenoiserRunReport {
  model: string;
  profile: string;
  data: string;
  spec: DenoiserSpec;
  backend: string;
  tfjsVersion: string;
  updatedAt: string;
  denoisers: Record<string, DenoiserRunEntry>;
}

function integerFlag(name: string, value: string, min: number): number {
  const parsed = numberFlag(name, value, min);
  if (!Number.isInteger(parsed)) throw new UsageError(`--${name}: expected an integer, got "${value}"`);
  return parsed;
}

async function readReport(path: string): Promise<Record<string, DenoiserRunEntry>> {
  try {
    return (JSON.parse(await Deno.readTextFile(path)) as DenoiserRunReport).denoisers ?? {};
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return {};
    throw new Error(`${path}: cannot read the earlier run (${(error as Error).message})`);
  }
}

function percent(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

async function main(): Promise<void> {
  const flags = parseFlags({
    model: { type: "string", default: DEFAULT_MODEL_DIR },
    profile: { type: "string" },
    sigma: { type: "string", default: "0.12,0.25,0.5" },
    objective: { type: "string", default: DENOISER_OBJECTIVES.join(",") },
    epochs: { type: "string", default: "3" },
    "stability-epochs": { type: "string", default: "1" },
    "batch-size": { type: "string", default: "64" },
    lr: { type: "string", default: "0.001" },
    seed: { type: "string", default: "1" },
    limit: { type: "string" },
    "held-out": { type: "string", default: "1000" },
    data: { type: "string", default: "fashion-mnist" },
    backend: { type: "string", default: "wasm" },
  });
  if (flags.positionals.length > 0) {
    throw new UsageError(`unexpected argument "${flags.positionals[0]}"; every setting is a --flag`);
  }
  const sigmas = listFlag("sigma", flags.sigma).map((s) => numberFlag("sigma", s, 1e-4, 10));
  const objectives = listFlag("objective", flags.objective).map((o) =>
    choiceFlag("objective", o, DENOISER_OBJECTIVES)
  );
  const epochs: Record<DenoiserObjective, number> = {
    mse: integerFlag("epochs", flags.epochs, 1),
    stability: integerFlag("stability-epochs", flags["stability-epochs"], 1),
  };
  const batchSize = integerFlag("batch-size", flags["batch-size"], 1);
  const learningRate = numberFlag("lr", flags.lr, 1e-8, 1);
  const seed = integerFlag("seed", flags.seed, 0);
  const limit = flags.limit === undefined ? undefined : integerFlag("limit", flags.limit, 1);
  const heldOutCount = integerFlag("held-out", flags["held-out"], 1);
  const data = choiceFlag("data", flags.data, DATASET_NAMES);
  const backendName = choiceFlag("backend", flags.backend, BACKEND_NAMES);

  const modelDir = flags.model;
  const profileDir = flags.profile ?? defaultProfileDir(modelDir);
  const reportPath = join(modelDir, "denoisers.json");
  const backend = await initBackend(backendName);
  const classifier = await loadLayersModel(modelDir);
  let profile: NipProfile = await loadProfile(profileDir, await modelHash(modelDir));
  const { dataset, split } = await loadNamedDataset(data);
  const modelShape = classifier.inputs[0].shape.slice(1);
  if (JSON.stringify(modelShape) !== JSON.stringify(dataset.shape)) {
    throw new UsageError(
      `--data ${data}: images of shape ${JSON.stringify(dataset.shape)}, the model ${modelDir} takes ` +
        JSON.stringify(modelShape),
    );
  }
  let train: Dataset = splitPart(dataset, split, "train");
  if (limit !== undefined && limit < train.count) {
    const chosen = seededShuffle(Int32Array.from({ length: train.count }, (_, i) => i), seed);
    train = subset(train, chosen.subarray(0, limit), train.name);
  }
  const heldOut = samplePart(dataset, split, "calibration", heldOutCount, { seed });
  const heldOutData = `${data}/calibration, ${heldOut.count} images in the seeded order of seed ${seed}`;
  const spec = defaultDenoiserSpec(dataset.shape);
  console.log(
    `${data}: training on ${train.count} images of the train part; held out: ${heldOutData}; backend ` +
      `${backend}; denoiser ${JSON.stringify(spec)}; sigma ${sigmas.join(", ")}; objectives ` +
      `${objectives.join(", ")}`,
  );

  const entries = await readReport(reportPath);
  const batches = Math.ceil(train.count / batchSize);
  const bar = new cliProgress.SingleBar({
    format:
      "{name} epoch {epoch}/{epochs} [{bar}] {value}/{total} batches | loss {loss} | ETA {eta_formatted}",
    stream: process.stdout,
    noTTYOutput: true,
    notTTYSchedule: 10_000,
    hideCursor: true,
  }, cliProgress.Presets.shades_classic);

  try {
    for (const sigma of sigmas) {
      let mseWeights: Float32Array | undefined;
      for (const objective of DENOISER_OBJECTIVES.filter((o) => objectives.includes(o))) {
        const name = denoiserName(objective, sigma);
        // The stability denoiser starts from this run's MSE denoiser, or else from a stored one.
        const mseName = denoiserName("mse", sigma);
        const smoothing = profile.stages?.[SMOOTHING];
        const stored = smoothing && denoiserNames(smoothing).includes(mseName)
          ? smoothing.arrays[mseName] as Float32Array
          : undefined;
        const start = objective === "stability" ? mseWeights ?? stored : undefined;
        const denoiser = start ? denoiserFromWeights(spec, start) : createDenoiser(spec, seed);
        try {
          const started = performance.now();
          const history = await trainDenoiser(denoiser, train, {
            sigma,
            objective,
            classifier: objective === "stability" ? classifier : undefined,
            epochs: epochs[objective],
            batchSize,
            learningRate,
            seed,
            onBatch: ({ epoch, batch, loss }) => {
              if (batch === 0) {
                bar.start(batches, 0, { name, epoch: epoch + 1, epochs: epochs[objective], loss: "-" });
              }
              bar.update(batch + 1, { loss: loss.toFixed(4) });
            },
            onEpoch: (summary) => {
              bar.stop();
              console.log(
                `${name} epoch ${summary.epoch + 1}/${epochs[objective]}: loss ${summary.loss.toFixed(5)}, ` +
                  `${summary.seconds.toFixed(1)} s`,
              );
            },
          });
          const seconds = (performance.now() - started) / 1000;
          const evaluation = await evaluateDenoiser(denoiser, classifier, heldOut, sigma, seed);
          console.log(
            `${name} held out (${heldOut.count} calibration images): MSE noisy ${
              evaluation.noisyMse.toFixed(5)
            } -> denoised ${evaluation.denoisedMse.toFixed(5)}; classifier accuracy clean ${
              percent(evaluation.cleanAccuracy)
            }, noisy ${percent(evaluation.noisyAccuracy)}, denoised ${percent(evaluation.denoisedAccuracy)}`,
          );
          const weights = flattenWeights(denoiser);
          if (objective === "mse") mseWeights = weights;
          const record: DenoiserRecord = {
            sigma,
            objective,
            epochs: epochs[objective],
            trainImages: train.count,
            seconds: Math.round(seconds * 10) / 10,
            finalLoss: history[history.length - 1].loss,
            initialisedFrom: start ? mseName : "none",
          };
          profile = {
            ...profile,
            stages: { ...profile.stages, [SMOOTHING]: withDenoiser(smoothing, spec, record, weights) },
          };
          await saveProfile(profile, profileDir);
          entries[name] = {
            record,
            settings: { batchSize, learningRate, seed },
            history,
            heldOut: { ...evaluation, data: heldOutData },
          };
          const report: DenoiserRunReport = {
            model: modelDir,
            profile: profileDir,
            data: `${data}/train`,
            spec,
            backend,
            tfjsVersion: tf.version.tfjs,
            updatedAt: new Date().toISOString(),
            denoisers: entries,
          };
          await Deno.writeTextFile(reportPath, JSON.stringify(report, null, 2) + "\n");
          console.log(
            `saved ${name} into ${profileDir} (${seconds.toFixed(1)} s of training); ${reportPath}`,
          );
        } finally {
          denoiser.dispose();
        }
      }
    }
  } finally {
    classifier.dispose();
  }
}

if (import.meta.main) await runMain(main, import.meta.url);
