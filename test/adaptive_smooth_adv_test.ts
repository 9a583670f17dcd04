import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { l2Norms } from "../src/attacks/norms.ts";
import { loadNamedDataset } from "../src/data/named_datasets.ts";
import { toTensor } from "../src/data/dataset.ts";
import { samplePart } from "../src/data/splits.ts";
import { initBackend } from "../src/engine/backend.ts";
import { smoothAdv } from "../src/adaptive/smooth_adv.ts";
import { loadSplitModel } from "../src/pipeline.ts";
import { mulberry32 } from "../src/random.ts";
import { SMOOTHING_FACTORY } from "../src/stages/smoothing.ts";

await initBackend("wasm");
const { split } = await loadSplitModel("models/fashion-lenet", { layerName: "flatten", inputRange: [0, 1] });
const { dataset, split: parts } = await loadNamedDataset("fashion-mnist");
const test = samplePart(dataset, parts, "test", 12, { seed: 17 });
const x = toTensor(test);
const stage = SMOOTHING_FACTORY.create({ split, overrides: { sigma: 0.25, denoiser: "none" } });

/** The averaged probability of the true class over `draws` noisy copies (the smoothed soft classifier). */
function trueClassProbability(batch: tf.Tensor, draws: number): number {
  return tf.tidy(() => {
    const random = mulberry32(99);
    let sum = tf.zeros([batch.shape[0], 10]);
    for (let i = 0; i < draws; i++) sum = sum.add(stage.sampleProbabilities!(batch, random));
    const mean = sum.div(draws);
    return mean.mul(tf.oneHot(tf.tensor1d(test.labels, "int32"), 10)).sum(1).mean().dataSync()[0];
  });
}

Deno.test("SmoothAdv stays in the L2 ball and the input range and lowers the smoothed true-class probability", () => {
  const before = tf.memory().numTensors;
  const adversarial = smoothAdv(stage, x, test.labels, {
    epsilon: 1,
    steps: 8,
    samples: 4,
    range: [0, 1],
    seed: 1,
  });
  const [largest, low, high] = tf.tidy(() => [
    l2Norms(adversarial.sub(x)).max().dataSync()[0],
    adversarial.min().dataSync()[0],
    adversarial.max().dataSync()[0],
  ]);
  assert.ok(largest <= 1 + 1e-4, `L2 ${largest}`);
  assert.ok(low >= 0 && high <= 1);
  const clean = trueClassProbability(x, 32);
  const attacked = trueClassProbability(adversarial, 32);
  assert.ok(attacked < clean - 0.1, `true-class probability ${clean} -> ${attacked}`);
  adversarial.dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("SmoothAdv at radius 0 returns the input; a stage without a randomised base is refused", () => {
  const same = smoothAdv(stage, x, test.labels, { epsilon: 0, steps: 5, samples: 2, range: [0, 1] });
  assert.equal(same.sub(x).abs().max().dataSync()[0], 0);
  same.dispose();
  const { sampleProbabilities: _, ...withoutBase } = stage;
  assert.throws(
    () => smoothAdv(withoutBase, x, test.labels, { epsilon: 1, steps: 1, samples: 1, range: [0, 1] }),
    /no randomised base classifier/,
  );
});
