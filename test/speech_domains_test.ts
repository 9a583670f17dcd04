import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  DEFAULT_SPEAKER_ATTACKS,
  speakerAttackSpec,
  speakerEvalSet,
  SPECTROGRAM_DOMAIN,
  spreadEntries,
  WAVEFORM_DOMAIN,
} from "../src/eval/speech_domains.ts";
import { featurize } from "../audio/features.ts";
import { FSDD_SPEAKERS, listFsdd } from "../audio/fsdd.ts";
import { initBackend } from "../src/engine/backend.ts";
import { fsddTrainDir } from "../src/data/shared_data.ts";

await initBackend("wasm");

Deno.test("speaker attack specs parse from the command line and carry their domain and units", () => {
  const wave = speakerAttackSpec("waveform:pgd-linf:16");
  assert.equal(wave.domain, WAVEFORM_DOMAIN);
  assert.equal(wave.budget.epsilon, 16 / 32768);
  const map = speakerAttackSpec("spectrogram:fgsm:2");
  assert.equal(map.domain, SPECTROGRAM_DOMAIN);
  assert.match(map.budget.label!, /2 dB/);
  assert.throws(() => speakerAttackSpec("image:fgsm:2"), /spectrogram\|waveform/);
  assert.throws(() => speakerAttackSpec("spectrogram:fgsm:-1"), /positive number/);
  assert.throws(() => speakerAttackSpec("waveform:cw:2"), /fixed-epsilon L_inf/);
  assert.ok(DEFAULT_SPEAKER_ATTACKS.every((a) => speakerAttackSpec(a)));
});

Deno.test("the evaluation subset spreads over every speaker of the validation takes", () => {
  const picked = spreadEntries(listFsdd(fsddTrainDir(), "validation"), 60);
  assert.equal(picked.length, 60);
  assert.equal(new Set(picked.map((e) => e.path)).size, 60);
  assert.deepEqual(new Set(picked.map((e) => e.speaker)), new Set(FSDD_SPEAKERS));
  assert.ok(picked.every((e) => e.take >= 5 && e.take <= 14));
});

Deno.test("the domains bring adversarial examples to the model's input with their signals and measures", async () => {
  const entries = spreadEntries(listFsdd(fsddTrainDir(), "validation"), 3);
  const set = await speakerEvalSet(entries);
  assert.deepEqual(set.x.shape, [3, 63, 40, 1]);
  assert.deepEqual(Array.from(set.labels), entries.map((e) => e.label));
  const before = tf.memory().numTensors;

  // Waveform: the real front end makes the model's input; SNR and 16-bit L_inf are measured.
  const waves = WAVEFORM_DOMAIN.inputs(set, [0, 2]);
  const louder = tf.tidy(() => waves.add(4 / 32768));
  const wave = WAVEFORM_DOMAIN.toModel(louder, set, [0, 2]);
  const first = tf.tidy(() => wave.x.slice(0, 1).dataSync());
  const expected = featurize(wave.signals![0]);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(first[i] - expected[i]) < 1e-4);
  wave.measures!["L_inf 16-bit steps"].forEach((v) => assert.ok(Math.abs(v - 4) < 0.01, `${v}`));
  wave.measures!["SNR dB"].forEach((v) => assert.ok(v > 20 && v < 90, `${v}`));

  // Spectrogram: the map itself is the model's input; waveform stages get it resynthesised.
  const maps = SPECTROGRAM_DOMAIN.inputs(set, [1]);
  const shifted = tf.tidy(() => maps.add(0.1));
  const map = SPECTROGRAM_DOMAIN.toModel(shifted, set, [1]);
  assert.equal(map.signals![0].length, set.signals![1].length);
  assert.ok(Math.abs(map.measures!["feature L_inf"][0] - 0.1) < 1e-4);
  tf.dispose([waves, louder, wave.x, maps, shifted, map.x]);
  assert.equal(tf.memory().numTensors, before);
  set.x.dispose();
});
