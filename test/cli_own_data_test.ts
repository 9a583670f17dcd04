import assert from "node:assert/strict";
import { join } from "node:path";
import { encodePng } from "../src/image/codec.ts";
import { loadNamedDataset } from "../src/data/named_datasets.ts";
import { samplePart } from "../src/data/splits.ts";
import { runTask } from "./task_runner.ts";

/** Writes `count` Fashion-MNIST test images as 56x56 RGB PNGs into class folders (a user's photo folder). */
async function photoFolder(dir: string, count: number): Promise<void> {
  const { dataset, split } = await loadNamedDataset("fashion-mnist");
  const sample = samplePart(dataset, split, "test", count, { seed: 5 });
  for (let i = 0; i < count; i++) {
    // Class folders are read in name order: numbered so that folder i is the model's class i.
    const label = sample.labels[i];
    const classDir = join(dir, `${label}-${sample.classNames[label].replace("/", "-")}`);
    await Deno.mkdir(classDir, { recursive: true });
    const data = new Uint8Array(56 * 56 * 3);
    for (let y = 0; y < 56; y++) {
      for (let x = 0; x < 56; x++) {
        const value = Math.round(sample.images[i * 784 + (y >> 1) * 28 + (x >> 1)] * 255);
        data.fill(value, (y * 56 + x) * 3, (y * 56 + x) * 3 + 3);
      }
    }
    await Deno.writeFile(join(classDir, `${i}.png`), encodePng({ width: 56, height: 56, channels: 3, data }));
  }
}

Deno.test("accuracy and eval read a folder of the user's photos (resized, grey), whole and apart from any split", async () => {
  const dir = await Deno.makeTempDir();
  const photos = join(dir, "photos");
  await photoFolder(photos, 40);
  const accuracy = await runTask("accuracy", ["--data", photos, "--out", join(dir, "accuracy.json")]);
  assert.equal(accuracy.code, 0, accuracy.stderr);
  const report = JSON.parse(await Deno.readTextFile(join(dir, "accuracy.json")));
  assert.equal(report.examples, 40);
  assert.ok(report.accuracy > 0.6, `${report.accuracy}`);
  assert.match(report.data, /image folder .*photos, resized to 28x28x1 \(the whole file source\)/);

  const named = await runTask("accuracy", ["--n", "300"]);
  assert.equal(named.code, 0, named.stderr);
  // The demo's 300 test images (seed 1): bare accuracy 87.7% there too.
  assert.match(named.stdout, /accuracy 87\.67% on 300 examples/);

  const out = join(dir, "eval");
  const evaluated = await runTask("eval", [
    "--test",
    photos,
    "--n",
    "100",
    "--attacks",
    "fgsm",
    "--budgets",
    "0.1",
    "--out",
    out,
  ]);
  assert.equal(evaluated.code, 0, evaluated.stderr);
  const result = JSON.parse(await Deno.readTextFile(join(out, "eval.json")));
  assert.equal(result.report.benign.examples, 40, "a file source is used whole, up to --n");
  assert.match(await Deno.readTextFile(join(out, "eval.md")), /image folder/);

  const wrongShape = await runTask("accuracy", ["--data", "cifar10"]);
  assert.equal(wrongShape.code, 2);
  assert.match(wrongShape.stderr, /--data cifar10: .*32x32x3 but the model takes 28x28x1/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("calibrate --mean/--std keeps the model's preprocessing in the profile; eval applies it as accuracy does", async () => {
  const dir = await Deno.makeTempDir();
  const profile = join(dir, "profile");
  const normalise = ["--mean", "0.5", "--std", "0.5"];
  const calibrated = await runTask("calibrate", [
    ...normalise,
    "--candidates",
    "100",
    "--held-out",
    "100",
    "--out",
    profile,
  ]);
  assert.equal(calibrated.code, 0, calibrated.stderr);
  const manifest = JSON.parse(await Deno.readTextFile(join(profile, "profile.json")));
  assert.deepEqual(manifest.meta.preprocessing, { mean: [0.5], std: [0.5] });

  const accuracy = await runTask("accuracy", [...normalise, "--n", "100", "--out", join(dir, "a.json")]);
  assert.equal(accuracy.code, 0, accuracy.stderr);
  const expected = JSON.parse(await Deno.readTextFile(join(dir, "a.json"))).accuracy;
  const plain = await runTask("accuracy", ["--n", "100", "--out", join(dir, "b.json")]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.notEqual(JSON.parse(await Deno.readTextFile(join(dir, "b.json"))).accuracy, expected);

  const out = join(dir, "eval");
  const evaluated = await runTask("eval", [
    "--profile",
    profile,
    "--n",
    "100",
    "--attacks",
    "fgsm",
    "--budgets",
    "0.1",
    "--out",
    out,
  ]);
  assert.equal(evaluated.code, 0, evaluated.stderr);
  const report = JSON.parse(await Deno.readTextFile(join(out, "eval.json"))).report;
  assert.equal(report.benign.accuracy, expected);
  await Deno.remove(dir, { recursive: true });
});
