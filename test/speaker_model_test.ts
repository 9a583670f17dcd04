import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { loadLayersModel } from "../src/engine/model_io.ts";
import { buildSpeakerModel, SPEAKER_NIP_LAYER } from "../src/models/speaker_model.ts";
import { FSDD_SPEAKERS, fsddSplitOfTake, listFsdd, loadFsddFeatures, parseFsddName } from "../audio/fsdd.ts";
import { augmentFeatures, speakerAccuracy, trainSpeakerModel } from "../src/models/speaker_training.ts";
import { mulberry32 } from "../src/random.ts";
import { featurize } from "../audio/features.ts";
import { MEL_BANDS, NUM_FRAMES } from "../audio/config.ts";
import { fsddTrainDir } from "../src/data/shared_data.ts";

const FSDD = fsddTrainDir();
const MODEL_DIR = new URL("../models/fsdd-speaker", import.meta.url).pathname;

Deno.test("FSDD names parse and takes split into disjoint train / calibration / validation", () => {
  assert.deepEqual(parseFsddName("7_yweweler_33.wav"), { digit: 7, speaker: "yweweler", take: 33, label: 5 });
  assert.equal(parseFsddName("7_nobody_33.wav"), null);
  assert.equal(parseFsddName("readme.txt"), null);
  const all = listFsdd(FSDD);
  assert.equal(all.length, 2700);
  const counts = { train: 0, calibration: 0, validation: 0 };
  for (const e of all) counts[fsddSplitOfTake(e.take)]++;
  assert.deepEqual(counts, { train: 1800, calibration: 300, validation: 600 });
  const validation = listFsdd(FSDD, "validation");
  assert.deepEqual(new Set(validation.map((e) => e.speaker)).size, FSDD_SPEAKERS.length);
  assert.ok(validation.every((e) => e.take >= 5 && e.take <= 14));
});

Deno.test("augmentation shifts in time and scales power exactly in the log1p domain", () => {
  const map = Float32Array.from({ length: NUM_FRAMES * MEL_BANDS }, (_, i) => (i % 7) + 5);
  const out = augmentFeatures(map, mulberry32(2));
  assert.equal(out.length, map.length);
  assert.notDeepEqual(out, map);
  const silent = augmentFeatures(new Float32Array(map.length), mulberry32(2));
  assert.ok(silent.every((v) => v === 0));
});

Deno.test("the CNN names its NIP layer and learns speakers from a small FSDD subset (wasm)", async () => {
  await initBackend("wasm");
  const baseline = tf.memory().numTensors;
  const model = buildSpeakerModel(FSDD_SPEAKERS.length, { seed: 3, learningRate: 3e-3 });
  assert.equal(model.getLayer(SPEAKER_NIP_LAYER).getClassName(), "Flatten");
  assert.deepEqual(model.outputs[0].shape, [null, 6]);
  const train = await loadFsddFeatures(listFsdd(FSDD, "train").filter((e) => e.take < 26));
  const history = await trainSpeakerModel(model, train, train, {
    epochs: 5,
    batchSize: 16,
    seed: 3,
    augment: false,
  });
  assert.ok(history[history.length - 1] > 0.6, `train-subset accuracy ${history}`); // chance is 1/6
  model.optimizer.dispose(); // Adam's moment estimates are not the model's to free
  model.dispose();
  assert.equal(tf.memory().numTensors, baseline);
});

Deno.test("the committed model reaches >= 95% speaker accuracy on validation takes", async () => {
  await initBackend("wasm");
  const model = await loadLayersModel(MODEL_DIR);
  // every third validation file (200 of 600) keeps the test fast; the card reports all 600
  const entries = listFsdd(FSDD, "validation").filter((_, i) => i % 3 === 0);
  const data = await loadFsddFeatures(entries);
  const accuracy = await speakerAccuracy(model, data);
  assert.ok(accuracy >= 0.95, `validation accuracy ${accuracy}`);
  const shape = tf.tidy(() =>
    (model.predict(tf.tensor4d(featurize(new Float32Array(100)), [1, NUM_FRAMES, MEL_BANDS, 1])) as tf.Tensor)
      .shape
  );
  assert.deepEqual(shape, [1, 6]);
  model.dispose();
});
