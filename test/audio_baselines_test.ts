import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { AUDIO_BASELINES, audioFrontEnd } from "../audio/baselines/index.ts";
import { FEATURE_SHAPE } from "../audio/config.ts";
import { featuresToTensor, featurize } from "../audio/features.ts";
import { fitToClip } from "../audio/clip.ts";
import { listFsdd } from "../audio/fsdd.ts";
import { decodeWav } from "../audio/wav.ts";
import { fsddTrainDir } from "../src/data/shared_data.ts";
import { loadPipeline, modalityOf } from "../src/pipeline.ts";
import { DefensePipeline } from "../src/stages/pipeline.ts";
import { buildStages, stageNames } from "../src/stages/registry.ts";

Deno.test("the registry lists the paper's four waveform baselines as signal stages of audio models only", () => {
  assert.deepEqual(AUDIO_BASELINES.map((b) => b.name), ["ds", "rc", "mc", "qtz"]);
  for (const name of ["ds", "rc", "mc", "qtz", "ss", "cbdr", "nip"]) {
    assert.ok(stageNames("audio").includes(name));
  }
  for (const name of ["ds", "rc", "mc", "qtz"]) assert.ok(!stageNames("image").includes(name));
  const split = { inputShape: [...FEATURE_SHAPE], inputRange: [0, 32] } as never;
  const [qtz] = buildStages(["qtz"], { split, modality: "audio", overrides: { qtz: { step: 512 } } });
  assert.equal(qtz.domain, "signal");
  assert.deepEqual(qtz.settings, { step: 512 });
  assert.throws(
    () => buildStages(["rc"], { split, modality: "audio", overrides: { rc: { count: -1 } } }),
    /positive/,
  );
  assert.throws(
    () => buildStages(["mc"], { split, modality: "image" }),
    /unknown defense "mc" for image models/,
  );
});

Deno.test("each waveform stage, run through a pipeline, keeps most benign verdicts of the committed model", async () => {
  const loaded = await loadPipeline({ modelDir: "models/fsdd-speaker", defenses: [] });
  assert.equal(modalityOf(loaded.split), "audio");
  const entries = listFsdd(fsddTrainDir(), "validation").filter((_, i) => i % 50 === 11); // 12 clips
  const clips = await Promise.all(
    entries.map(async (e) => fitToClip(decodeWav(await Deno.readFile(e.path)).samples)),
  );
  const labels = entries.map((e) => e.label);
  const x = featuresToTensor(clips.map((c) => featurize(c)));
  const baseline = tf.memory().numTensors;
  for (const factory of AUDIO_BASELINES) {
    const pipeline = new DefensePipeline(
      loaded.split,
      buildStages([factory.name], { ...loaded, modality: "audio" }),
    );
    const outcome = await pipeline.runWithSignals(x, clips, audioFrontEnd, { seed: 5 });
    assert.deepEqual(outcome.defended.shape, [12, ...FEATURE_SHAPE]);
    const changed = tf.tidy(() => outcome.defended.sub(x).abs().max().dataSync()[0]);
    assert.ok(changed > 0, `${factory.name} changed nothing`);
    const kept = labels.filter((l, i) => outcome.labelsAfter![i] === l).length;
    console.log(
      `${factory.name} (${pipeline.stages[0].description}): ${kept}/12 benign clips keep their speaker`,
    );
    assert.ok(kept >= 6, `${factory.name} keeps ${kept}/12`);
    outcome.defended.dispose();
    pipeline.dispose();
    assert.equal(tf.memory().numTensors, baseline);
  }
  x.dispose();
  loaded.defense.dispose();
});
