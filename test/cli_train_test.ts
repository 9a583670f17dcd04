import assert from "node:assert/strict";
import { parseTrainArgs, runTraining } from "../src/cli/train.ts";
import { UsageError } from "../src/cli/args.ts";

Deno.test("parseTrainArgs: --init names the model a warm restart starts from", () => {
  assert.equal(parseTrainArgs(["--init", "models/fashion-lenet"]).init, "models/fashion-lenet");
  assert.equal(parseTrainArgs([]).init, undefined);
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
