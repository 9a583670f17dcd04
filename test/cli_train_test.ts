import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { createArchitecture, parseTrainArgs, runTraining } from "../src/cli/train.ts";
import { UsageError } from "../src/cli/args.ts";
import { initBackend } from "../src/engine/backend.ts";

await initBackend("wasm");

Deno.test("parseTrainArgs: --init names the model a warm restart starts from", () => {
  assert.equal(parseTrainArgs(["--init", "models/fashion-lenet"]).init, "models/fashion-lenet");
  assert.equal(parseTrainArgs([]).init, undefined);
});

Deno.test("--arch lenet-norm: the LeNet with a per-image standardisation first and dropout before the logits", () => {
  assert.equal(parseTrainArgs(["--arch", "lenet-norm"]).arch, "lenet-norm");
  const before = tf.memory().numTensors;
  const model = createArchitecture("lenet-norm", { shape: [32, 32, 3], classNames: ["a", "b", "c"] }, {
    seed: 1,
    learningRate: 0.001,
    width: 2,
  });
  try {
    assert.deepEqual(model.layers.map((layer) => layer.name), [
      "input_norm",
      "conv1",
      "pool1",
      "conv2",
      "pool2",
      "flatten",
      "dense1",
      "dropout",
      "logits",
      "softmax",
    ]);
    assert.deepEqual(model.getLayer("dense1").outputShape, [null, 256]);
  } finally {
    model.optimizer.dispose();
    model.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("parseTrainArgs: --average-from is an epoch of the run; --schedule constant", () => {
  const options = parseTrainArgs(["--epochs", "6", "--average-from", "3", "--schedule", "constant"]);
  assert.equal(options.averageFrom, 3);
  assert.equal(options.schedule, "constant");
  assert.equal(parseTrainArgs([]).averageFrom, undefined);
  assert.throws(
    () => parseTrainArgs(["--epochs", "2", "--average-from", "3"]),
    (e: Error) =>
      e instanceof UsageError && /--average-from must be at most --epochs \(2\), got 3/.test(e.message),
  );
});

Deno.test("train --init: starts from the saved weights (a tiny learning rate keeps their accuracy)", async () => {
  const out = await Deno.makeTempDir();
  try {
    const metrics = await runTraining({
      ...parseTrainArgs([
        "--epochs",
        "1",
        "--limit",
        "64",
        "--lr",
        "0.000001",
        "--init",
        "models/fashion-lenet",
      ]),
      out,
    });
    assert.equal(metrics.init, "models/fashion-lenet");
    // The saved LeNet reaches 91.6% on this test split; a fresh initialisation after one 64-image epoch is
    // near chance.
    assert.ok(metrics.testAccuracy > 0.9, `test accuracy ${metrics.testAccuracy}`);
    const saved = JSON.parse(await Deno.readTextFile(`${out}/metrics.json`));
    assert.equal(saved.init, "models/fashion-lenet");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("train --init: a model of another shape is a usage error naming the first mismatch", async () => {
  const out = await Deno.makeTempDir();
  try {
    await assert.rejects(
      runTraining({
        ...parseTrainArgs([
          "--epochs",
          "1",
          "--limit",
          "8",
          "--width",
          "2",
          "--init",
          "models/fashion-lenet",
        ]),
        out,
      }),
      (error: Error) =>
        error instanceof UsageError &&
        /--init models\/fashion-lenet does not match --arch\/--width: .+ vs .+/.test(error.message),
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("train --widen-from: a 1.5x wider LeNet starts with the saved narrow one's accuracy", async () => {
  const out = await Deno.makeTempDir();
  try {
    const args = ["--epochs", "1", "--limit", "64", "--lr", "0.000001", "--width", "1.5"];
    const metrics = await runTraining({
      ...parseTrainArgs([...args, "--widen-from", "models/fashion-lenet"]),
      out,
    });
    assert.equal(metrics.widenFrom, "models/fashion-lenet");
    assert.equal(metrics.parameters > 2 * 100_000, true, `parameters ${metrics.parameters}`);
    // As in the --init test: 91.6% for the saved LeNet, near chance for a fresh wide one after 64 images.
    assert.ok(metrics.testAccuracy > 0.9, `test accuracy ${metrics.testAccuracy}`);
    await assert.rejects(
      runTraining({
        ...parseTrainArgs([...args, "--width", "0.5", "--widen-from", "models/fashion-lenet"]),
        out,
      }),
      (error: Error) =>
        error instanceof UsageError &&
        /--widen-from models\/fashion-lenet: .*must be wider/.test(error.message),
    );
    assert.throws(
      () => parseTrainArgs(["--init", "models/fashion-lenet", "--widen-from", "models/fashion-lenet"]),
      (error: Error) => error instanceof UsageError && /give one/.test(error.message),
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
