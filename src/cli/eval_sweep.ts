/**
 * `deno task eval --sweep PARAM=V1,V2,...`: NIP's sensitivity to one setting (the paper's Figs. 7-9) on a
 * model with its profile: `strength` (eta / alpha: the profile's candidates, another strength), `k1` or `k2`
 * (recalibrated with the profile's own calibration examples and strength), or `layer` (recalibrated at each
 * named layer or graph node). Each value is evaluated against one attack (the first of `--attacks` at the
 * first of `--budgets`) on the same test examples, with its random-noise control and benign accuracy. Writes
 * `<out>/eval.json` (its `sweep`, which `deno task report` charts) and `<out>/eval.md`.
 *
 *   deno task eval --sweep strength=0.1,0.3,1,2 [--model M] [--profile P] [--data D | --test SOURCE] [--n 300]
 *     [--attacks fgsm] [--budgets paper] [--calibration SOURCE] [--out out/sweep] [--seed 1] [--backend wasm]
 *
 * This task names NIP: the settings it sweeps are NIP's own.
 *
 * @module
 */
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { type Dataset, toTensor } from "../data/dataset.ts";
import { BACKEND_NAMES } from "../engine/backend.ts";
import { resolveSpecs } from "../eval/specs.ts";
import { runSweep, type SweepVariant } from "../eval/sweep.ts";
import { inputKindOf } from "../attacks/mod.ts";
import { calibrateProfile } from "../nip/calibrate.ts";
import type { NipProfile } from "../nip/profile.ts";
import type { SplitModel } from "../nip/types.ts";
import { DEFAULT_MODEL_DIR, loadPipeline, loadSplitModel, type Pipeline } from "../pipeline.ts";
import { buildPipelines } from "../stages/registry.ts";
import { choiceFlag, listFlag, numberFlag, parseFlags, UsageError } from "./args.ts";
import { sampleFlag } from "./data_flags.ts";
import { createProgress } from "./progress.ts";

const PARAMETERS = ["strength", "k1", "k2", "layer"] as const;

function nipPipeline(split: SplitModel, profile: NipProfile, loaded: Pipeline, strength?: number) {
  const [pipeline] = buildPipelines([["nip"]], {
    split,
    profile,
    modality: loaded.modality,
    overrides: strength === undefined ? undefined : { nip: { strength } },
  });
  return pipeline;
}

/** `deno task eval --sweep ...` (see the module doc). */
export async function sweepMain(): Promise<void> {
  const flags = parseFlags({
    sweep: { type: "string" },
    model: { type: "string", default: DEFAULT_MODEL_DIR },
    profile: { type: "string" },
    data: { type: "string", default: "fashion-mnist" },
    test: { type: "string" },
    calibration: { type: "string" },
    n: { type: "string", default: "300" },
    attacks: { type: "string", default: "fgsm" },
    budgets: { type: "string", default: "paper" },
    out: { type: "string", default: "out/sweep" },
    seed: { type: "string", default: "1" },
    backend: { type: "string", default: "wasm" },
  });
  const [name, valueList] = (flags.sweep ?? "").split("=");
  const parameter = choiceFlag("sweep", name, PARAMETERS);
  const values = listFlag("sweep", valueList ?? "");
  const seed = numberFlag("seed", flags.seed);
  const loaded = await loadPipeline({
    modelDir: flags.model,
    profileDir: flags.profile,
    backend: choiceFlag("backend", flags.backend, BACKEND_NAMES),
    defenses: [],
  });
  const { profile } = loaded;
  const { dataset: test, description } = await sampleFlag(
    flags.test === undefined ? "data" : "test",
    flags.test ?? flags.data,
    "test",
    numberFlag("n", flags.n, 1),
    { shape: loaded.split.inputShape, seed, upTo: flags.test !== undefined },
  );
  let spec;
  try {
    [spec] = resolveSpecs(
      [listFlag("attacks", flags.attacks)[0]],
      [listFlag("budgets", flags.budgets)[0]],
      inputKindOf(loaded.split.inputShape),
    );
  } catch (error) {
    throw new UsageError(`--attacks / --budgets: ${(error as Error).message}`);
  }
  // The profile's own calibration examples, read once for every recalibrated value (all share the input shape).
  let candidates: Promise<{ dataset: Dataset }> | undefined;
  const recalibrate = async (split: SplitModel, settings: { k1?: number; k2?: number }) => {
    candidates ??= sampleFlag(
      flags.calibration ? "calibration" : "data",
      flags.calibration ?? String(profile.provenance.data ?? flags.data),
      "calibration",
      Number(profile.provenance.candidateDraws ?? profile.candidateCount),
      { shape: split.inputShape, seed: Number(profile.provenance.seed ?? 1) },
    );
    const { dataset } = await candidates;
    const x = toTensor(dataset);
    try {
      return calibrateProfile(split, { x, labels: dataset.labels }, undefined, {
        settings: { ...profile.settings, ...settings },
        strength: profile.settings.alpha,
        modelHash: loaded.modelHash,
        provenance: profile.provenance,
      });
    } finally {
      x.dispose();
    }
  };
  const variants = values.map((text, i) => async (): Promise<SweepVariant> => {
    if (parameter === "layer") {
      const { split } = await loadSplitModel(flags.model, {
        layerName: text,
        preprocessing: profile.preprocessing,
      });
      const pipeline = nipPipeline(split, await recalibrate(split, {}), loaded);
      return { value: i, label: text, pipeline, dispose: () => pipeline.dispose() };
    }
    const value = numberFlag("sweep", text, 0);
    const pipeline = parameter === "strength"
      ? nipPipeline(loaded.split, profile, loaded, value)
      : nipPipeline(loaded.split, await recalibrate(loaded.split, { [parameter]: value }), loaded);
    return { value, pipeline, dispose: () => pipeline.dispose() };
  });
  const progress = createProgress();
  const set = { x: toTensor(test), labels: test.labels };
  const started = performance.now();
  try {
    const sweep = await runSweep(parameter, variants, set, spec!, {
      seed,
      onProgress: (stage, done, total) => progress.update(stage, done, total),
    });
    progress.stop();
    const seconds = (performance.now() - started) / 1000;
    const meta = {
      modelDir: flags.model,
      modelHash: loaded.modelHash,
      profileDir: flags.profile,
      data: flags.test ?? flags.data,
      n: test.count,
      attacks: [sweep.attack],
      budgets: [sweep.budget],
      protocols: ["honest"],
      sweep: flags.sweep,
      seed,
      backend: tf.getBackend(),
      seconds,
    };
    const rows = sweep.points.map((p) =>
      `| ${p.label ?? p.value} | ${(p.dsr * 100).toFixed(1)}% | ${(p.randomNoise * 100).toFixed(1)}% | ` +
      `${(p.benignAccuracy * 100).toFixed(1)}% | ${p.adversarial} |`
    );
    const markdown =
      `# Sensitivity of NIP to ${parameter}\n\n${sweep.attack} at ${sweep.budget}, ${description}; ` +
      `honest protocol; model \`${flags.model}\` (${loaded.modelHash.slice(0, 12)}), seed ${seed}, ${
        seconds.toFixed(1)
      } s.\n\n` +
      `| ${parameter} | DSR | random-noise control | benign acc. after defense | adversarial examples |\n|---|---|---|---|---|\n` +
      rows.join("\n") + "\n";
    await Deno.mkdir(flags.out, { recursive: true });
    await Deno.writeTextFile(
      join(flags.out, "eval.json"),
      JSON.stringify({ meta, sweep: [sweep] }, null, 2) + "\n",
    );
    await Deno.writeTextFile(join(flags.out, "eval.md"), markdown);
    console.log(markdown);
    console.log(`written: ${join(flags.out, "eval.json")}, ${join(flags.out, "eval.md")}`);
  } finally {
    progress.stop();
    set.x.dispose();
    loaded.defense.dispose();
  }
}

/** This module's URL: `deno task eval --sweep --help` prints its doc. */
export const SWEEP_MODULE_URL = import.meta.url;
