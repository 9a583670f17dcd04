import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../src/data/dataset.ts";
import { buildProfile } from "../src/nip/calibrate.ts";
import {
  buildPipelines,
  buildStages,
  certifyingStage,
  parseDefenseList,
  parseStageSettings,
  stageFactory,
  stageNames,
  STAGES,
} from "../src/stages/registry.ts";
import { nipFixture } from "./nip_fixture.ts";

const fixture = await nipFixture();
const calibrationX = toTensor(fixture.calibration, 0, 200);
const profile = buildProfile(fixture.split, calibrationX, fixture.calibration.labels.slice(0, 200), {
  modelHash: "f",
});
calibrationX.dispose();

Deno.test("every stage is registered once, NIP first, with the modalities it serves", () => {
  const names = STAGES.map((s) => s.name);
  assert.deepEqual(names, [
    ..."nip ss cbdr jc tvm fdistill ds rc mc qtz".split(" "),
    ..."influence nip-response squeeze mahalanobis input-mahalanobis knn detect smooth".split(" "),
  ]);
  assert.equal(new Set(names).size, names.length);
  const detection = "influence nip-response squeeze mahalanobis input-mahalanobis knn detect smooth".split(
    " ",
  );
  assert.deepEqual(stageNames("image"), ["nip", "ss", "cbdr", "jc", "tvm", "fdistill", ...detection]);
  assert.deepEqual(stageNames("audio"), ["nip", "ss", "cbdr", "ds", "rc", "mc", "qtz", ...detection]);
  assert.equal(stageFactory("JC").name, "jc");
});

Deno.test("unknown names and stages of another modality are refused with the valid names", () => {
  assert.throws(() => stageFactory("blur"), /unknown defense "blur"; expected one of nip, ss, cbdr, jc/);
  assert.throws(
    () => stageFactory("jc", "audio"),
    /unknown defense "jc" for audio models; expected one of nip, ss/,
  );
  assert.throws(
    () => buildStages(["nip"], { split: fixture.split, modality: "image" }),
    /"nip" needs the model's calibration profile/,
  );
  assert.throws(
    () => buildStages(["detect"], { split: fixture.split, profile, modality: "image" }),
    /detect: the profile has no detector calibration; run `deno task calibrate:detectors/,
  );
});

Deno.test("settings: overrides per stage, and the audio default of bit-depth reduction", () => {
  const image = buildStages(["cbdr", "nip"], {
    split: fixture.split,
    profile,
    modality: "image",
    overrides: { nip: { strength: 0.25 } },
  });
  assert.equal(image[0].settings.bits, 1, "Xu et al.'s 1 bit for a single-channel image");
  assert.equal(image[1].settings.strength, 0.25);
  const audio = buildStages(["cbdr"], { split: fixture.split, modality: "audio" });
  assert.equal(audio[0].settings.bits, 4, "4 bits on a log-mel map");
  const overridden = buildStages(["cbdr"], {
    split: fixture.split,
    modality: "audio",
    overrides: { cbdr: { bits: 6 } },
  });
  assert.equal(overridden[0].settings.bits, 6);
  [...image, ...audio, ...overridden].forEach((s) => s.dispose());
});

Deno.test("a defense list: commas separate defenses, + chains stages into one pipeline", () => {
  assert.deepEqual(parseDefenseList("nip, ss+nip ,none"), [["nip"], ["ss", "nip"], []]);
  const before = tf.memory().numTensors;
  const pipelines = buildPipelines(parseDefenseList("nip,jc+nip,none"), {
    split: fixture.split,
    profile,
    modality: "image",
  });
  assert.deepEqual(pipelines.map((p) => p.name), ["nip", "jc+nip", "none"]);
  assert.deepEqual(pipelines[1].stages.map((s) => s.name), ["jc", "nip"]);
  pipelines.forEach((p) => p.dispose());
  assert.equal(tf.memory().numTensors, before);
  assert.throws(
    () => buildPipelines([["nip"], ["nip", "nip"]], { split: fixture.split, profile, modality: "image" }),
    /"nip" appears twice/,
  );
  assert.equal(tf.memory().numTensors, before, "a failed build frees what it built");
});

Deno.test("stage settings are read from stage.setting=value lists, numbers where they parse", () => {
  assert.deepEqual(
    parseStageSettings("smooth.sigma=0.5, smooth.predict-n=200,smooth.denoiser=mse,nip.strength=1"),
    {
      smooth: { sigma: 0.5, "predict-n": 200, denoiser: "mse" },
      nip: { strength: 1 },
    },
  );
  assert.throws(() => parseStageSettings("sigma=0.5"), /expected stage.setting=value, got "sigma=0.5"/);
  assert.throws(() => parseStageSettings(" , "), /expected stage.setting=value/);
});

Deno.test("the certifying stage is randomized smoothing with the deployment's settings for it", () => {
  const stage = certifyingStage({
    split: fixture.split,
    modality: "image",
    overrides: { smooth: { sigma: 0.5, n: 300 } },
  });
  assert.equal(stage.name, "smooth");
  assert.equal(stage.role, "answer");
  assert.equal(stage.settings.sigma, 0.5);
  assert.equal(stage.settings.n, 300);
  assert.equal(stage.settings.denoiser, "none", "a profile without denoisers smooths the bare model");
  stage.dispose();
});
