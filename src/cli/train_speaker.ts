/**
 * `deno task train:speaker`: trains the speaker CNN on FSDD (default) or on a folder-per-speaker
 * data set (`--folder`, e.g. VCTK), prints validation accuracy per epoch and saves the model.
 *
 *   deno task train:speaker [--data DIR] [--folder DIR] [--epochs 30] [--batch-size 32] [--seed 1]
 *     [--backend wasm] [--out models/fsdd-speaker] [--max-per-speaker N]
 *
 * @module
 */
import { relative } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend, parseBackendName } from "../engine/backend.ts";
import { saveModel } from "../engine/model_io.ts";
import { createProgress } from "./progress.ts";
import { numberFlag, parseFlags, runMain } from "./args.ts";
import { FSDD_SPEAKERS, type LabelledFeatures, listFsdd, loadFsddFeatures } from "../../audio/fsdd.ts";
import {
  listSpeakerFolder,
  loadSpeakerFolderFeatures,
  splitSpeakerItems,
} from "../../audio/folder_dataset.ts";
import { buildSpeakerModel } from "../models/speaker_model.ts";
import { speakerAccuracy, trainSpeakerModel } from "../models/speaker_training.ts";
import { fsddTrainDir } from "../data/shared_data.ts";

const DEFAULT_FSDD = fsddTrainDir();

async function main(): Promise<void> {
  const values = parseFlags({
    data: { type: "string", default: DEFAULT_FSDD },
    folder: { type: "string" },
    epochs: { type: "string", default: "30" },
    "batch-size": { type: "string", default: "32" },
    seed: { type: "string", default: "1" },
    backend: { type: "string", default: "wasm" },
    out: { type: "string", default: "models/fsdd-speaker" },
    "max-per-speaker": { type: "string" },
  });

  const epochs = numberFlag("epochs", values.epochs, 1);
  const seed = numberFlag("seed", values.seed);
  await initBackend(parseBackendName(values.backend!));
  const progress = createProgress();

  let speakers: string[];
  let train: LabelledFeatures;
  let validation: LabelledFeatures;
  let dataDescription: string;
  if (values.folder) {
    const listing = listSpeakerFolder(values.folder);
    const maxPerSpeaker = values["max-per-speaker"] ? Number(values["max-per-speaker"]) : undefined;
    const split = splitSpeakerItems(listing.items, { maxPerSpeaker });
    speakers = listing.speakers;
    train = await loadSpeakerFolderFeatures(split.train, (d, t) => progress.update("features (train)", d, t));
    validation = await loadSpeakerFolderFeatures(
      split.validation,
      (d, t) => progress.update("features (val)", d, t),
    );
    dataDescription = `${
      relative(Deno.cwd(), values.folder!)
    } (${listing.layout}, ${speakers.length} speakers)`;
  } else {
    speakers = [...FSDD_SPEAKERS];
    train = await loadFsddFeatures(
      listFsdd(values.data!, "train"),
      (d, t) => progress.update("features (train)", d, t),
    );
    validation = await loadFsddFeatures(
      listFsdd(values.data!, "validation"),
      (d, t) => progress.update("features (val)", d, t),
    );
    // Relative to where it ran, so the committed record names no machine's paths.
    dataDescription = `FSDD ${relative(Deno.cwd(), values.data!)} (train takes 20-49, validation takes 5-14)`;
  }
  progress.stop();
  console.log(
    `data: ${dataDescription}; ${train.features.length} train, ${validation.features.length} validation`,
  );

  const model = buildSpeakerModel(speakers.length, { seed });
  const started = performance.now();
  await trainSpeakerModel(model, train, validation, {
    epochs,
    batchSize: Number(values["batch-size"]),
    seed,
    onProgress: (event) => {
      if (event.validationAccuracy === undefined) {
        progress.update(`epoch ${event.epoch}/${epochs}`, event.batch, event.batches);
      } else {
        progress.stop();
        console.log(
          `epoch ${event.epoch}/${epochs}: validation accuracy ${
            (100 * event.validationAccuracy).toFixed(2)
          }% ` +
            `(${((performance.now() - started) / 1000).toFixed(0)} s)`,
        );
      }
    },
  });
  const trainAccuracy = await speakerAccuracy(model, train);
  const validationAccuracy = await speakerAccuracy(model, validation);
  await saveModel(model, values.out!);
  await Deno.writeTextFile(
    `${values.out}/training.json`,
    JSON.stringify(
      {
        data: dataDescription,
        speakers,
        epochs,
        batchSize: Number(values["batch-size"]),
        seed,
        backend: tf.getBackend(),
        trainExamples: train.features.length,
        validationExamples: validation.features.length,
        trainAccuracy,
        validationAccuracy,
        seconds: Math.round((performance.now() - started) / 1000),
      },
      null,
      2,
    ) + "\n",
  );
  console.log(
    `train accuracy ${(100 * trainAccuracy).toFixed(2)}%, validation accuracy ${
      (100 * validationAccuracy).toFixed(2)
    }%; saved to ${values.out}`,
  );
}

if (import.meta.main) await runMain(main, import.meta.url);
