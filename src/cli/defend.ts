/**
 * `deno task defend`: defends image files, or a part of a data set split, with a calibrated profile.
 *
 *   deno task defend a.png b.jpg [--out out/defended]      defended PNGs + defend.json
 *   deno task defend --data fashion-mnist --split test --n 500   accuracy before / after, label flips
 *
 * Common flags: [--model models/fashion-lenet] [--profile DIR] [--defense nip|jc+nip|...]
 *   [--settings nip.strength=0.5] [--backend wasm].
 *
 * @module
 */
import { basename, extname, join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../data/dataset.ts";
import { BACKEND_NAMES } from "../engine/backend.ts";
import { decodeImage, encodePng } from "../image/codec.ts";
import { imageToInput, inputToImage } from "../image/resize.ts";
import { DEFAULT_MODEL_DIR, loadPipeline, type Pipeline } from "../pipeline.ts";
import { choiceFlag, numberFlag, parseFlags, runMain, settingsFlag, UsageError } from "./args.ts";
import { sampleFlag } from "./data_flags.ts";
import { createProgress } from "./progress.ts";

async function defendFiles(pipeline: Pipeline, files: string[], out: string): Promise<unknown[]> {
  const { split, defense } = pipeline;
  const shape = split.inputShape as [number, number, number];
  const rows: Float32Array[] = [];
  for (const file of files) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(file);
    } catch (error) {
      throw new UsageError(`${file}: cannot read (${(error as Error).message})`);
    }
    try {
      rows.push(imageToInput(decodeImage(bytes), shape, split.inputRange));
    } catch (error) {
      throw new UsageError(`${file}: ${(error as Error).message}`);
    }
  }
  await Deno.mkdir(out, { recursive: true });
  const x = tf.tensor4d(concatRows(rows), [files.length, ...shape]);
  const outcome = defense.run(x);
  const defended = outcome.defended.dataSync() as Float32Array;
  const size = rows[0].length;
  const results = [];
  for (const [i, file] of files.entries()) {
    const target = join(out, `${basename(file, extname(file))}.defended.png`);
    await Deno.writeFile(
      target,
      encodePng(inputToImage(defended.subarray(i * size, (i + 1) * size), shape, split.inputRange)),
    );
    results.push({
      file,
      defended: target,
      labelBefore: outcome.labelsBefore[i],
      labelAfter: outcome.labelsAfter![i],
      stages: Object.fromEntries(
        Object.entries(outcome.details).map(([stage, details]) => [
          stage,
          Object.fromEntries(Object.entries(details).map(([key, values]) => [key, values[i]])),
        ]),
      ),
    });
  }
  tf.dispose([x, outcome.defended]);
  return results;
}

function concatRows(rows: Float32Array[]): Float32Array {
  const out = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
  rows.forEach((row, i) => out.set(row, i * row.length));
  return out;
}

async function defendSplit(pipeline: Pipeline, data: string, part: string, n: number, seed: number) {
  const { dataset: sample } = await sampleFlag(
    "data",
    data,
    choiceFlag("split", part, ["calibration", "test"] as const),
    n,
    {
      shape: pipeline.split.inputShape,
      seed,
    },
  );
  const progress = createProgress();
  let correctBefore = 0;
  let correctAfter = 0;
  let flips = 0;
  let ms = 0;
  const batch = 100;
  for (let start = 0; start < n; start += batch) {
    const end = Math.min(n, start + batch);
    const x = toTensor(sample, start, end);
    const t0 = performance.now();
    const outcome = pipeline.defense.run(x);
    ms += performance.now() - t0;
    for (let i = 0; i < end - start; i++) {
      const label = sample.labels[start + i];
      correctBefore += outcome.labelsBefore[i] === label ? 1 : 0;
      correctAfter += outcome.labelsAfter![i] === label ? 1 : 0;
      flips += outcome.labelsBefore[i] !== outcome.labelsAfter![i] ? 1 : 0;
    }
    tf.dispose([x, outcome.defended]);
    progress.update("defend", end, n);
  }
  progress.stop();
  return {
    data: `${data}/${part}`,
    defense: pipeline.defense.name,
    examples: n,
    accuracyBefore: correctBefore / n,
    accuracyAfter: correctAfter / n,
    labelFlips: flips / n,
    msPerExample: ms / n,
  };
}

async function main(): Promise<void> {
  const flags = parseFlags({
    model: { type: "string", default: DEFAULT_MODEL_DIR },
    profile: { type: "string" },
    data: { type: "string", default: "fashion-mnist" },
    split: { type: "string" },
    n: { type: "string", default: "500" },
    out: { type: "string", default: "out/defend" },
    defense: { type: "string", default: "nip" },
    settings: { type: "string" },
    backend: { type: "string", default: "wasm" },
    seed: { type: "string", default: "1" },
  });
  const files = flags.positionals;
  if (files.length === 0 && flags.split === undefined) {
    throw new UsageError("give image files to defend, or --split test|calibration to defend a data set part");
  }
  const pipeline = await loadPipeline({
    modelDir: flags.model,
    profileDir: flags.profile,
    backend: choiceFlag("backend", flags.backend, BACKEND_NAMES),
    defenses: flags.defense.split("+").map((s) => s.trim()),
    overrides: flags.settings === undefined ? undefined : settingsFlag(flags.settings),
  });
  const result = files.length > 0 ? await defendFiles(pipeline, files, flags.out) : await defendSplit(
    pipeline,
    flags.data,
    flags.split!,
    numberFlag("n", flags.n, 1),
    numberFlag("seed", flags.seed),
  );
  await Deno.mkdir(flags.out, { recursive: true });
  await Deno.writeTextFile(join(flags.out, "defend.json"), JSON.stringify(result, null, 2) + "\n");
  console.log(JSON.stringify(result, null, 2));
  pipeline.defense.dispose();
}

if (import.meta.main) await runMain(main, import.meta.url);
