import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { loadLayersModel } from "../src/engine/model_io.ts";
import { AUDIO_BASELINES, audioBaseline, baselineFeatures } from "../audio/baselines/index.ts";
import { listFsdd, loadFsddFeatures } from "../audio/fsdd.ts";
import { decodeWav } from "../audio/wav.ts";
import { speakerAccuracy } from "../audio/train.ts";
import { mulberry32 } from "../src/random.ts";
import { MEL_BANDS, NUM_FRAMES } from "../audio/config.ts";
import { fsddTrainDir } from "../src/data/shared_data.ts";

const FSDD = fsddTrainDir();
const MODEL_DIR = new URL("../models/fsdd-speaker", import.meta.url).pathname;

Deno.test("the registry lists the paper's four audio baselines and the two feature-map ones", () => {
  assert.deepEqual(AUDIO_BASELINES.map((b) => b.name), ["DS", "RC", "MC", "QTZ", "SS", "BDR"]);
  assert.equal(audioBaseline("qtz").domain, "waveform");
  assert.equal(audioBaseline("SS").domain, "features");
  assert.throws(() => audioBaseline("JPEG"), /expected one of DS,RC,MC,QTZ,SS,BDR/);
});

Deno.test("every baseline gives model features and keeps most benign verdicts of the committed model", async () => {
  await initBackend("wasm");
  const baseline = tf.memory().numTensors;
  const model = await loadLayersModel(MODEL_DIR);
  const entries = listFsdd(FSDD, "validation").filter((_, i) => i % 50 === 11); // 12 clips
  const clean = await loadFsddFeatures(entries);
  const cleanAccuracy = await speakerAccuracy(model, clean);
  for (const baseline of AUDIO_BASELINES) {
    const random = mulberry32(5);
    const features: Float32Array[] = [];
    for (const entry of entries) {
      const samples = decodeWav(await Deno.readFile(entry.path)).samples;
      features.push(await baselineFeatures(baseline, samples, random));
    }
    assert.ok(features.every((f) => f.length === NUM_FRAMES * MEL_BANDS));
    const accuracy = await speakerAccuracy(model, { features, labels: clean.labels });
    console.log(
      `${baseline.name} (${baseline.description}): benign accuracy ${accuracy} (clean ${cleanAccuracy})`,
    );
    assert.ok(accuracy >= 0.5, `${baseline.name} keeps ${accuracy}`);
  }
  model.dispose();
  assert.equal(tf.memory().numTensors, baseline);
});
