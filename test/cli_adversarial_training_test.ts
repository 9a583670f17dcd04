import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../src/engine/backend.ts";
import { loadLayersModel } from "../src/engine/model_io.ts";
import { adversarialAugmentation, parseAdversarialTraining } from "../src/cli/adversarial_training.ts";
import { loadNamedDataset } from "../src/data/named_datasets.ts";
import { samplePart } from "../src/data/splits.ts";
import { toTensor } from "../src/data/dataset.ts";

await initBackend("wasm");

Deno.test("parseAdversarialTraining: pgd:EPS[:STEPS] and fgsm-rs:EPS, anything else named", () => {
  assert.deepEqual(parseAdversarialTraining("pgd:0.1"), { method: "pgd", epsilon: 0.1, steps: 7 });
  assert.deepEqual(parseAdversarialTraining("pgd:0.03:10"), { method: "pgd", epsilon: 0.03, steps: 10 });
  assert.deepEqual(parseAdversarialTraining("fgsm-rs:0.1"), { method: "fgsm-rs", epsilon: 0.1, steps: 1 });
  for (const bad of ["pgd", "pgd:2", "fgsm-rs:0.1:3", "trades:0.1", "pgd:0.1:0"]) {
    assert.throws(() => parseAdversarialTraining(bad), /--adversarial: expected/, bad);
  }
});

Deno.test("adversarialAugmentation: batches within the L_inf ball that the model gets wrong far more often", async () => {
  const model = await loadLayersModel("models/fashion-lenet");
  const { dataset, split } = await loadNamedDataset("fashion-mnist");
  const sample = samplePart(dataset, split, "test", 64, { seed: 2 });
  const x = toTensor(sample) as tf.Tensor4D;
  const y = tf.oneHot(tf.tensor1d(sample.labels, "int32"), 10).toFloat() as tf.Tensor2D;
  const before = tf.memory().numTensors;
  for (const method of ["pgd:0.1", "fgsm-rs:0.1"]) {
    const adversarial = await adversarialAugmentation(model, parseAdversarialTraining(method))(x, 5, y);
    const [distance, accuracyClean, accuracyAdversarial] = tf.tidy(() => [
      tf.max(tf.abs(tf.sub(adversarial, x))).dataSync()[0],
      tf.mean(tf.equal((model.predict(x) as tf.Tensor).argMax(-1), y.argMax(-1))).dataSync()[0],
      tf.mean(tf.equal((model.predict(adversarial) as tf.Tensor).argMax(-1), y.argMax(-1))).dataSync()[0],
    ]);
    assert.ok(distance <= 0.1 + 1e-6, `${method}: ${distance}`);
    assert.ok(
      accuracyAdversarial < accuracyClean - 0.3,
      `${method}: ${accuracyClean} -> ${accuracyAdversarial}`,
    );
    adversarial.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x, y]);
  model.dispose();
});
