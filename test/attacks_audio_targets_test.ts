import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { loadLayersModel } from "../src/engine/model_io.ts";
import { pgd } from "../src/attacks/pgd.ts";
import { misclassification } from "../src/attacks/criteria.ts";
import {
  clipsFromBatch,
  int16ToWaveform,
  l2ForSnr,
  perturbationLinfInt16,
  perturbationSnrDb,
  spectrogramLinfBudget,
  spectrogramLinfFromDb,
  spectrogramTarget,
  waveformBatch,
  waveformLinfBudget,
  waveformTarget,
} from "../src/attacks/audio_targets.ts";
import { featuresToTensor, featurize } from "../audio/features.ts";
import { disposeFeatureTwin } from "../audio/features_tf.ts";
import { fitToClip } from "../audio/clip.ts";
import { decodeWav } from "../audio/wav.ts";
import { listFsdd } from "../audio/fsdd.ts";
import { fsddTrainDir } from "../src/data/shared_data.ts";

const FSDD = fsddTrainDir();
const MODEL_DIR = new URL("../models/fsdd-speaker", import.meta.url).pathname;

Deno.test("budget conversions use the input's units", () => {
  assert.equal(int16ToWaveform(64), 1 / 512);
  const clip = Float32Array.from({ length: 100 }, () => 0.5); // ||clip|| = 5
  assert.ok(Math.abs(l2ForSnr(clip, 20) - 0.5) < 1e-12);
  const noisy = clip.map((v, i) => v + (i % 2 ? 0.05 : -0.05)); // ||noise|| = 0.5
  assert.ok(Math.abs(perturbationSnrDb(clip, noisy) - 20) < 1e-4);
  assert.ok(Math.abs(perturbationLinfInt16(clip, noisy) - 0.05 * 32768) < 1e-2);
  assert.equal(perturbationSnrDb(clip, clip), Infinity);
  assert.ok(Math.abs(spectrogramLinfFromDb(10) - Math.LN10) < 1e-12);
  assert.match(waveformLinfBudget(64).label!, /64\/32768/);
  assert.match(spectrogramLinfBudget(3).label!, /3 dB/);
});

Deno.test("waveform and spectrogram targets agree, and PGD on the waveform respects its 16-bit budget", async () => {
  await initBackend("wasm");
  const model = await loadLayersModel(MODEL_DIR);
  const baseline = tf.memory().numTensors;
  const entries = listFsdd(FSDD, "validation").filter((_, i) => i % 150 === 7).slice(0, 4);
  const clips = await Promise.all(
    entries.map(async (e) => fitToClip(decodeWav(await Deno.readFile(e.path)).samples)),
  );
  const labels = Int32Array.from(entries, (e) => e.label);

  const waveform = waveformTarget(model);
  const spectrogram = spectrogramTarget(model);
  assert.deepEqual(waveform.inputRange, [-1, 1]);
  assert.deepEqual(spectrogram.inputRange, [0, 32]);
  const batch = waveformBatch(clips);
  const features = featuresToTensor(clips.map(featurize));
  const gap = tf.tidy(() => waveform.scores(batch).sub(spectrogram.scores(features)).abs().max().arraySync());
  assert.ok((gap as number) < 1e-3, `score gap ${gap}`);

  const units = 64;
  const result = await pgd({ steps: 10, seed: 1 }).run(
    waveform,
    batch,
    misclassification(labels),
    waveformLinfBudget(units),
  );
  const adversarial = clipsFromBatch(result.adversarial);
  for (const [i, clip] of clips.entries()) {
    assert.ok(perturbationLinfInt16(clip, adversarial[i]) <= units + 1e-3);
    assert.ok(perturbationSnrDb(clip, adversarial[i]) > 10);
  }
  const fooled = result.success.reduce((a, v) => a + v, 0);
  console.log(`waveform PGD L_inf ${units}/32768, 10 steps: ${fooled}/${clips.length} fooled`);
  assert.ok(fooled >= 1, "a 64-step budget fools the undefended model on some clips");
  tf.dispose([batch, features, result.adversarial]);
  assert.equal(tf.memory().numTensors, baseline + 3); // the twin's cached constants
  disposeFeatureTwin();
  assert.equal(tf.memory().numTensors, baseline);
  model.dispose();
});
