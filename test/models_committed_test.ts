import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { loadPipeline } from "../src/pipeline.ts";

/** Every committed model with a profile: what a user names with `--model models/<name>`. */
const committed = [...Deno.readDirSync("models")]
  .filter((entry) => entry.isDirectory && existsSync(`models/${entry.name}/profile/profile.json`))
  .map((entry) => entry.name)
  .sort();

Deno.test("committed models: there are the default, the speaker and the paper-scale image models", () => {
  for (const name of ["fashion-lenet", "fsdd-speaker", "cifar10-resnet8", "gtsrb-resnet20"]) {
    assert.ok(committed.includes(name), `${name} among ${committed.join(", ")}`);
  }
});

for (const name of committed) {
  Deno.test(`committed model ${name}: a card, and its profile matches its weights and defends a batch`, async () => {
    const dir = `models/${name}`;
    assert.ok(existsSync(`${dir}/MODEL_CARD.md`), `${dir}/MODEL_CARD.md`);
    // loadPipeline refuses a profile whose model hash is not that of the weights beside it.
    const pipeline = await loadPipeline({ modelDir: dir, defenses: ["nip"] });
    const before = tf.memory().numTensors;
    const [low, high] = pipeline.split.inputRange;
    const x = tf.fill([2, ...pipeline.split.inputShape], (low + high) / 2);
    const outcome = pipeline.defense.run(x);
    assert.deepEqual(outcome.defended.shape, x.shape);
    assert.equal(outcome.labelsBefore.length, 2);
    assert.equal(outcome.labelsAfter?.length, 2);
    tf.dispose([x, outcome.defended]);
    assert.equal(tf.memory().numTensors, before);
    pipeline.defense.dispose();
  });
}
