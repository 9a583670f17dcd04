import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { modelHash } from "../src/engine/model_io.ts";
import { loadProfile } from "../src/profile_io.ts";
import {
  calibrateSpeakerProfile,
  CANDIDATE_TAKES,
  defendSpeakerFeatures,
  disposeSplitModel,
  FSDD_DIR,
  fsddTakes,
  HELD_OUT_TAKES,
  loadSpeakerPipeline,
  SPEAKER_MODEL_DIR,
  SPEAKER_PROFILE_DIR,
} from "../src/speaker_pipeline.ts";
import { listFsdd, loadFsddFeatures } from "../audio/fsdd.ts";
import { getAttack } from "../src/attacks/mod.ts";
import { spectrogramLinfBudget, spectrogramTarget } from "../src/attacks/audio_targets.ts";
import { featuresToTensor } from "../audio/features.ts";
import { FEATURE_RANGE } from "../audio/config.ts";

Deno.test("the committed speaker profile matches the committed model and stays small", async () => {
  const profile = await loadProfile(SPEAKER_PROFILE_DIR, await modelHash(SPEAKER_MODEL_DIR));
  assert.equal(profile.layerName, "flatten");
  assert.equal(profile.neuronCount, 1680);
  assert.deepEqual(profile.inputShape, [63, 40, 1]);
  assert.deepEqual(profile.inputRange, [...FEATURE_RANGE]);
  assert.ok(
    profile.candidateCount > 150 && profile.candidateCount <= 300,
    `${profile.candidateCount} candidates`,
  );
  assert.match(String(profile.provenance.part), /calibration takes 15-17/);
  assert.equal(profile.strengthCalibration?.heldOut, 120);
  assert.equal(profile.settings.alpha, profile.strengthCalibration?.chosen);
  // The detection's calibration (validation takes 5-9): the Mahalanobis detectors, fitted on fewer clips
  // than features, keep their precision as ridge plus low rank; a dense one would be 11 and 25 MB.
  const stages = profile.stages!;
  assert.match(String(stages.detect.meta.data), /fsdd validation takes 5-9/);
  for (const name of ["mahalanobis", "input-mahalanobis"]) {
    assert.equal(stages[name].arrays.precision, undefined, name);
    assert.ok(stages[name].arrays.basis.length > 0, name);
  }
  const bytes = (await Deno.stat(`${SPEAKER_PROFILE_DIR}/profile.bin`)).size;
  assert.ok(bytes < 5e6, `${bytes} bytes`);
});

Deno.test("candidate and held-out takes are disjoint calibration recordings", () => {
  const candidates = fsddTakes(FSDD_DIR, CANDIDATE_TAKES);
  const heldOut = fsddTakes(FSDD_DIR, HELD_OUT_TAKES);
  assert.equal(candidates.length, 180);
  assert.equal(heldOut.length, 120);
  const names = new Set(candidates.map((e) => e.path));
  assert.ok(heldOut.every((e) => !names.has(e.path)));
  const validation = new Set(listFsdd(FSDD_DIR, "validation").map((e) => e.path));
  assert.ok(
    [...candidates, ...heldOut].every((e) => !validation.has(e.path) && e.take >= 15 && e.take <= 19),
  );
});

Deno.test("recalibrating reproduces the committed profile", async () => {
  await initBackend("wasm");
  const baseline = tf.memory().numTensors;
  const committed = await loadProfile(SPEAKER_PROFILE_DIR);
  const fresh = await calibrateSpeakerProfile();
  assert.equal(tf.memory().numTensors, baseline);
  assert.equal(fresh.modelHash, committed.modelHash);
  assert.equal(fresh.candidateCount, committed.candidateCount);
  assert.deepEqual(fresh.candidateLabels, committed.candidateLabels);
  assert.deepEqual(fresh.template, committed.template);
  assert.equal(fresh.settings.alpha, committed.settings.alpha);
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < fresh.rho.length; i++) {
    worst = Math.max(worst, Math.abs(fresh.rho[i] - committed.rho[i]));
    scale = Math.max(scale, Math.abs(committed.rho[i]));
  }
  assert.ok(worst <= 1e-4 * scale, `rho differs by ${worst} (scale ${scale})`);
  await assert.rejects(
    () => calibrateSpeakerProfile({ candidateTakes: [15, 18], heldOutTakes: [18, 19] }),
    /overlap/,
  );
});

Deno.test("NIP defends real validation clips without labels, in range, and frees its tensors", async () => {
  const pipeline = await loadSpeakerPipeline();
  const baseline = tf.memory().numTensors;
  const entries = listFsdd(FSDD_DIR, "validation").filter((_, i) => i % 25 === 4); // 24 clips
  const clean = await loadFsddFeatures(entries);
  const benign = defendSpeakerFeatures(pipeline.defense, clean.features);
  const kept = benign.labelsAfter.filter((l, i) => l === clean.labels[i]).length;
  assert.ok(kept >= 22, `${kept}/24 benign clips keep their speaker after defense`);
  for (const map of benign.defended) {
    assert.ok(map.every((v) => v >= FEATURE_RANGE[0] && v <= FEATURE_RANGE[1]));
  }
  assert.ok(
    benign.defended.some((map, i) => map.some((v, j) => v !== clean.features[i][j])),
    "NIP changed nothing",
  );

  // On adversarial maps the defense runs the same way (no label) and changes the input by a bounded amount.
  const x = featuresToTensor(clean.features);
  const attack = await getAttack("fgsm", {}).run(
    spectrogramTarget(pipeline.split.model),
    x,
    { kind: "misclassification", labels: clean.labels },
    spectrogramLinfBudget(6),
  );
  const adversarial = Array.from(
    { length: entries.length },
    (_, i) => (attack.adversarial.dataSync() as Float32Array).slice(i * 2520, (i + 1) * 2520),
  );
  tf.dispose([x, attack.adversarial]);
  const defended = defendSpeakerFeatures(pipeline.defense, adversarial);
  assert.equal(defended.labelsAfter.length, entries.length);
  const candidates = defended.details.nip.candidateIndex;
  assert.ok(candidates.every((c) => c >= 0 && c < pipeline.profile.candidateCount));
  assert.equal(tf.memory().numTensors, baseline);
  pipeline.defense.dispose();
  disposeSplitModel(pipeline.split);
});
