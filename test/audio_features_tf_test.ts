import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { featurize } from "../audio/features.ts";
import { disposeFeatureTwin, featurizeTensor } from "../audio/features_tf.ts";
import { fitToClip } from "../audio/clip.ts";
import { decodeWav } from "../audio/wav.ts";
import { fsddTrainDir } from "../src/data/shared_data.ts";

const FSDD = fsddTrainDir();

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test(`the tfjs twin matches meyda's features on real FSDD clips (${backend})`, async () => {
    await initBackend(backend);
    const baseline = tf.memory().numTensors;
    const clips: Float32Array[] = [];
    for (const name of ["1_jackson_40.wav", "5_lucas_6.wav", "9_nicolas_25.wav"]) {
      clips.push(fitToClip(decodeWav(await Deno.readFile(`${FSDD}/${name}`)).samples));
    }
    clips.push(Float32Array.from({ length: 8000 }, (_, i) => 0.99 * Math.sin(i * 0.9))); // near full scale
    const input = tf.tensor2d(clips.map((c) => Array.from(c)));
    const twin = featurizeTensor(input);
    const values = twin.dataSync();
    let worst = 0;
    let total = 0;
    clips.forEach((clip, b) => {
      const reference = featurize(clip);
      for (let i = 0; i < reference.length; i++) {
        const difference = Math.abs(values[b * reference.length + i] - reference[i]);
        worst = Math.max(worst, difference);
        total += difference;
      }
    });
    // Features span 0..25 (natural log); float32 DFT sums leave ~1e-2 on the quietest bins of loud frames.
    assert.ok(worst < 2e-2, `largest |twin - meyda| = ${worst}`);
    assert.ok(total / values.length < 2e-4, `mean |twin - meyda| = ${total / values.length}`);
    tf.dispose([input, twin]);
    disposeFeatureTwin();
    assert.equal(tf.memory().numTensors, baseline);
  });
}

Deno.test("the twin is differentiable: its gradient predicts the change of a feature sum", async () => {
  await initBackend("wasm");
  const baseline = tf.memory().numTensors;
  // Noise keeps every bin well above zero power, where log1p of a squared magnitude is smooth.
  let seed = 7;
  const noise = () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 2e-2;
  const clip = fitToClip(decodeWav(await Deno.readFile(`${FSDD}/2_theo_30.wav`)).samples).map((v) =>
    v + noise()
  );
  const loss = (x: tf.Tensor) => featurizeTensor(x as tf.Tensor2D).sum();
  const x = tf.tensor2d([Array.from(clip)]);
  const gradient = tf.grad(loss)(x);
  const direction = tf.tidy(() => gradient.div(gradient.norm()));
  const step = 1e-4;
  const [plus, minus] = tf.tidy(() => [
    loss(x.add(direction.mul(step)) as tf.Tensor2D).arraySync() as number,
    loss(x.sub(direction.mul(step)) as tf.Tensor2D).arraySync() as number,
  ]);
  const predicted = step * 2 * (tf.tidy(() => gradient.norm().arraySync()) as number);
  const observed = plus - minus;
  assert.ok(
    Math.abs(observed - predicted) / predicted < 0.05,
    `observed ${observed}, predicted ${predicted}`,
  );
  tf.dispose([x, gradient, direction]);
  disposeFeatureTwin();
  assert.equal(tf.memory().numTensors, baseline);
});
