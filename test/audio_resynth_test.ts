import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { loadLayersModel } from "../src/engine/model_io.ts";
import { pgd } from "../src/attacks/pgd.ts";
import { misclassification } from "../src/attacks/criteria.ts";
import {
  perturbationSnrDb as snrDb,
  spectrogramLinfBudget,
  spectrogramTarget,
} from "../src/attacks/audio_targets.ts";
import { featuresToTensor } from "../audio/features.ts";
import { listFsdd } from "../audio/fsdd.ts";
import { encodeWav } from "../audio/wav.ts";
import { featurize } from "../audio/features.ts";
import { fitToClip } from "../audio/clip.ts";
import { resynthesize } from "../audio/resynth.ts";
import { istft, stft } from "../audio/stft.ts";
import { decodeWav } from "../audio/wav.ts";
import { CLIP_SAMPLES, FEATURE_RANGE, MEL_BANDS } from "../audio/config.ts";
import { fsddTrainDir } from "../src/data/shared_data.ts";

const FSDD = fsddTrainDir();
const MODEL_DIR = new URL("../models/fsdd-speaker", import.meta.url).pathname;

async function clipOf(name: string): Promise<Float32Array> {
  return fitToClip(decodeWav(await Deno.readFile(`${FSDD}/${name}`)).samples);
}

Deno.test("istft inverts stft exactly", async () => {
  const clip = await clipOf("4_george_17.wav");
  assert.ok(snrDb(clip, istft(stft(clip))) > 100);
});

Deno.test("undefended features resynthesize near-transparently (SNR >= 40 dB) on real FSDD clips", async () => {
  for (const name of ["0_jackson_21.wav", "6_nicolas_44.wav", "8_yweweler_9.wav"]) {
    const clip = await clipOf(name);
    const out = resynthesize(clip, featurize(clip));
    assert.equal(out.length, CLIP_SAMPLES);
    const snr = snrDb(clip, out);
    assert.ok(snr >= 40, `${name}: SNR ${snr.toFixed(1)} dB`);
  }
});

Deno.test("a defended feature map comes back closer to the defended than to the original features", async () => {
  const clip = await clipOf("3_lucas_12.wav");
  const original = featurize(clip);
  // A smooth change of the kind a defense makes: +-1 (natural log) over speech bands and frames.
  const defended = original.map((v, i) => {
    const band = i % MEL_BANDS;
    return v > 3 && band > 8 ? v + Math.sin(band / 2 + Math.floor(i / MEL_BANDS) / 9) : v;
  });
  const back = featurize(resynthesize(clip, defended));
  let miss = 0;
  let change = 0;
  for (let i = 0; i < back.length; i++) {
    miss += Math.abs(back[i] - defended[i]);
    change += Math.abs(original[i] - defended[i]);
  }
  assert.ok(miss < 0.5 * change, `mean miss ${miss / back.length}, mean change ${change / back.length}`);
  assert.throws(() => resynthesize(clip, new Float32Array(5)), /expected 63x40/);
});

Deno.test("the defended WAV, featurized again, gets the model's verdict on the defended features", async () => {
  await initBackend("wasm");
  const baseline = tf.memory().numTensors;
  const model = await loadLayersModel(MODEL_DIR);
  const entries = listFsdd(FSDD, "validation").filter((_, i) => i % 50 === 3); // 12 clips, all speakers
  const clips = await Promise.all(
    entries.map(async (e) => fitToClip(decodeWav(await Deno.readFile(e.path)).samples)),
  );
  const original = clips.map(featurize);
  const verdict = (maps: Float32Array[]) =>
    tf.tidy(() => Array.from((model.predict(featuresToTensor(maps)) as tf.Tensor).argMax(1).dataSync()));

  // Defended features shaped like NIP's output (paper Eq. 8, alpha = 1): x + Mean(x) * rho / (max - min)
  // with rho the gradient of the predicted class score, plus adversarial features from spectrogram PGD,
  // whose verdicts differ from the clean ones: both must survive the trip through a WAV.
  const predicted = verdict(original);
  const defended = tf.tidy(() => {
    const x = featuresToTensor(original);
    const rho = tf.grad((input: tf.Tensor) =>
      (model.predict(input) as tf.Tensor).mul(tf.oneHot(predicted, 6)).sum()
    )(x);
    const span = rho.max([1, 2, 3], true).sub(rho.min([1, 2, 3], true)).add(1e-12);
    const step = x.mean([1, 2, 3], true).mul(rho).div(span);
    const out = x.add(step).clipByValue(FEATURE_RANGE[0], FEATURE_RANGE[1]);
    return tf.unstack(out).map((t) => t.dataSync() as Float32Array);
  });
  const clean = featuresToTensor(original);
  const attack = await pgd({ steps: 20, seed: 2 }).run(
    spectrogramTarget(model),
    clean,
    misclassification(Int32Array.from(predicted)),
    spectrogramLinfBudget(6),
  );
  const adversarial = tf.tidy(() => tf.unstack(attack.adversarial).map((t) => t.dataSync() as Float32Array));
  const fooled = attack.success.reduce((a, v) => a + v, 0);
  tf.dispose([attack.adversarial, clean]);

  for (const [name, maps] of [["NIP-shaped", defended], ["adversarial", adversarial]] as const) {
    const started = performance.now();
    const resynthesized = maps.map((map, i) => featurize(encodeDecode(resynthesize(clips[i], map))));
    const ms = (performance.now() - started) / maps.length;
    const expected = verdict(maps);
    const got = verdict(resynthesized);
    const agree = expected.filter((v, i) => v === got[i]).length;
    console.log(`${name}: ${agree}/${maps.length} verdicts kept through WAV (${ms.toFixed(0)} ms/clip)`);
    // NIP-shaped changes are smooth and must survive; PGD's per-cell changes sit at the decision
    // boundary and are partly smeared by overlap-add (8/12 measured), so only a majority is required.
    const needed = name === "NIP-shaped" ? maps.length : Math.ceil(maps.length / 2);
    assert.ok(agree >= needed, `${name}: expected ${expected}, got ${got}`);
  }
  console.log(`spectrogram PGD 6 dB fooled ${fooled}/${clips.length} clean clips`);
  assert.ok(fooled >= clips.length / 2);
  model.dispose();
  assert.equal(tf.memory().numTensors, baseline);
});

/** Through a real 16-bit WAV file, as the sidecar returns it. */
function encodeDecode(samples: Float32Array): Float32Array {
  return decodeWav(encodeWav(samples, 8000)).samples;
}
