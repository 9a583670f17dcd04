/**
 * `deno task eval --certify`: certified robustness of randomized smoothing on the embedded default (or
 * another image model): for each sigma, CERTIFY on test examples with the frozen model alone, with its
 * query-access (MSE) and full-access (stability) denoisers from the profile, and with a noise-trained
 * model of the same architecture when one exists (Cohen et al.'s reference); certified accuracy against
 * L2 radius, PREDICT's abstention, the bare model and the noise control beside them, and SmoothAdv at the
 * same radii on a subset. Writes `<out>/certify.json`, `<out>/certify.md` and the curves as
 * `<out>/certify.svg`.
 *
 *   deno task eval --certify [--model models/fashion-lenet] [--data fashion-mnist] [--n 500]
 *     [--sigmas 0.12,0.25,0.5] [--variants frozen,mse,stability,noise-trained] [--n0 100] [--samples 1000]
 *     [--alpha 0.001] [--predict-n 100] [--radii 0,0.25,0.5,0.75,1,1.25,1.5,1.75,2]
 *     [--noise-models <model>-noise-{sigma}] [--adaptive-n 100 | 0] [--adaptive-epsilons 0.25,0.5,1]
 *     [--adaptive-steps 10] [--adaptive-samples 8] [--out out/certify] [--seed 1] [--backend wasm]
 *   deno task eval --certify --data fsdd --sigmas 1,2,4 --radii 0,1,2,4,6   the speaker model (frozen only),
 *     noise and radii on the log-mel features in dB
 *   deno task eval --certify --merge out/a,out/b [--out DIR] [--title T]   joins runs split by sigma or variant
 *
 * @module
 */
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import type { ModelPart } from "../nip/types.ts";
import { toTensor } from "../data/dataset.ts";
import { samplePart } from "../data/splits.ts";
import { BACKEND_NAMES } from "../engine/backend.ts";
import {
  type CertificationOptions,
  type CertificationVariant,
  certifyVariant,
  type VariantCertification,
} from "../eval/certification.ts";
import {
  type CertificationReport,
  mergeCertificationReports,
  renderCertificationMarkdown,
  renderCertificationSvg,
} from "../eval/certification_report.ts";
import { listFsdd } from "../../audio/fsdd.ts";
import { fsddTrainDir } from "../data/shared_data.ts";
import type { EvalSet } from "../eval/harness.ts";
import { speakerEvalSet, spreadEntries } from "../eval/speech_domains.ts";
import { DEFAULT_MODEL_DIR, loadPipeline, loadSplitModel } from "../pipeline.ts";
import { SPEAKER_MODEL_DIR } from "../speaker_pipeline.ts";
import { buildStages } from "../stages/registry.ts";
import { SMOOTHING } from "../stages/smoothing.ts";
import type { StageSettings } from "../stages/stage.ts";
import { choiceFlag, listFlag, numberFlag, parseFlags, runMain, UsageError } from "./args.ts";
import { loadNamedDataset } from "../data/named_datasets.ts";
import { createProgress } from "./progress.ts";

/** The variants of a smoothed classifier the evaluation compares. */
export const CERTIFY_VARIANTS = ["frozen", "mse", "stability", "noise-trained"] as const;
type Variant = typeof CERTIFY_VARIANTS[number];

const VARIANT_NAMES: Record<Variant, string> = {
  frozen: "frozen model alone",
  mse: "frozen + denoiser (MSE, query access)",
  stability: "frozen + denoiser (stability, full access)",
  "noise-trained": "noise-trained model (reference)",
};

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Runs the certification evaluation from the command line. */
export async function certifyMain(): Promise<void> {
  const flags = parseFlags({
    certify: { type: "boolean", default: true },
    model: { type: "string" },
    profile: { type: "string" },
    data: { type: "string", default: "fashion-mnist" },
    n: { type: "string", default: "500" },
    sigmas: { type: "string", default: "0.12,0.25,0.5" },
    variants: { type: "string" },
    n0: { type: "string", default: "100" },
    samples: { type: "string", default: "1000" },
    alpha: { type: "string", default: "0.001" },
    "predict-n": { type: "string", default: "100" },
    radii: { type: "string", default: "0,0.25,0.5,0.75,1,1.25,1.5,1.75,2" },
    "noise-models": { type: "string" },
    "adaptive-n": { type: "string", default: "100" },
    "adaptive-epsilons": { type: "string", default: "0.25,0.5,1" },
    "adaptive-steps": { type: "string", default: "10" },
    "adaptive-samples": { type: "string", default: "8" },
    out: { type: "string", default: "out/certify" },
    seed: { type: "string", default: "1" },
    backend: { type: "string", default: "wasm" },
    title: { type: "string", default: "Certified robustness: randomized smoothing" },
    merge: { type: "string" },
  });
  if (flags.merge !== undefined) {
    const reports: CertificationReport[] = [];
    for (const dir of listFlag("merge", flags.merge)) {
      const file = join(dir, "certify.json");
      try {
        reports.push(JSON.parse(await Deno.readTextFile(file)));
      } catch (error) {
        throw new UsageError(`--merge: cannot read ${file}: ${(error as Error).message}`);
      }
    }
    let merged: CertificationReport;
    try {
      merged = { ...mergeCertificationReports(reports), title: flags.title };
    } catch (error) {
      throw new UsageError(`--merge: ${(error as Error).message}`);
    }
    return await writeReport(merged, flags.out);
  }
  const sigmas = listFlag("sigmas", flags.sigmas).map((s) => numberFlag("sigmas", s, 1e-4, 10));
  // The speaker model has no denoisers or noise-trained twin: its default is the frozen model alone.
  const variantList = flags.variants ?? (flags.data === "fsdd" ? "frozen" : CERTIFY_VARIANTS.join(","));
  const variants = listFlag("variants", variantList).map((v) => choiceFlag("variants", v, CERTIFY_VARIANTS));
  const n = numberFlag("n", flags.n, 1);
  const seed = numberFlag("seed", flags.seed, 0);
  const adaptiveN = numberFlag("adaptive-n", flags["adaptive-n"], 0);
  const steps = numberFlag("adaptive-steps", flags["adaptive-steps"], 1);
  const samples = numberFlag("adaptive-samples", flags["adaptive-samples"], 1);
  const options: CertificationOptions = {
    n0: numberFlag("n0", flags.n0, 1, 10_000),
    n: numberFlag("samples", flags.samples, 1, 100_000),
    alpha: numberFlag("alpha", flags.alpha, 1e-12, 0.499),
    radii: listFlag("radii", flags.radii).map((r) => numberFlag("radii", r, 0)),
    seed,
    adaptive: adaptiveN === 0 ? undefined : {
      epsilons: listFlag("adaptive-epsilons", flags["adaptive-epsilons"]).map((e) =>
        numberFlag("adaptive-epsilons", e, 0)
      ),
      n: adaptiveN,
      steps,
      samples,
      strongerSteps: steps * 2,
      strongerSamples: samples * 2,
    },
  };
  const predictN = numberFlag("predict-n", flags["predict-n"], 1, 100_000);
  const speech = flags.data === "fsdd";
  const modelDir = flags.model ?? (speech ? SPEAKER_MODEL_DIR : DEFAULT_MODEL_DIR);
  const loaded = await loadPipeline({
    modelDir,
    profileDir: flags.profile,
    backend: choiceFlag("backend", flags.backend, BACKEND_NAMES),
    defenses: [],
  });
  const { set, description } = speech ? await speechSet(n) : await imageSet(flags.data, n, seed);
  const progress = createProgress();
  const started = performance.now();
  const bySigma: CertificationReport["bySigma"] = [];
  try {
    for (const sigma of sigmas) {
      const results: VariantCertification[] = [];
      for (const variant of variants) {
        const noiseModels = flags["noise-models"] ?? `${modelDir.replace(/\/$/, "")}-noise-{sigma}`;
        const built = await buildVariant(variant, sigma, predictN, options, loaded, noiseModels);
        if (!built) {
          console.error(`skipped: ${VARIANT_NAMES[variant]} at sigma ${sigma} (not trained)`);
          continue;
        }
        try {
          results.push(
            await certifyVariant(built.variant, set, {
              ...options,
              onProgress: (stage, done, total) => progress.update(`sigma ${sigma}, ${stage}`, done, total),
            }),
          );
        } finally {
          built.dispose();
          progress.stop();
        }
      }
      bySigma.push({ sigma, variants: results });
    }
  } finally {
    set.x.dispose();
    loaded.defense.dispose();
  }
  const report: CertificationReport = {
    title: flags.title,
    data:
      `${description} (model ${loaded.modelName}, ${
        loaded.modelHash.slice(0, 12)
      }, backend ${tf.getBackend()})` +
      (speech ? "; noise and radii on the log-mel features, in dB: no waveform guarantee" : ""),
    examples: set.labels.length,
    n0: options.n0,
    n: options.n,
    alpha: options.alpha,
    inputValues: loaded.split.inputShape.reduce((a, b) => a * b, 1),
    radii: options.radii,
    bySigma,
    seconds: (performance.now() - started) / 1000,
    createdAt: new Date().toISOString(),
  };
  await writeReport(report, flags.out);
}

/** Writes `certify.json`, `certify.md` and `certify.svg` into `out` and prints the Markdown. */
async function writeReport(report: CertificationReport, out: string): Promise<void> {
  await Deno.mkdir(out, { recursive: true });
  const markdown = renderCertificationMarkdown(report);
  await Deno.writeTextFile(join(out, "certify.json"), JSON.stringify(report, null, 2) + "\n");
  await Deno.writeTextFile(join(out, "certify.md"), markdown);
  await Deno.writeTextFile(join(out, "certify.svg"), renderCertificationSvg(report));
  console.log(markdown);
  console.log(`written: ${join(out, "certify.{json,md,svg}")}`);
}

/** `n` test examples of an image data set's fixed split. */
async function imageSet(
  data: string,
  n: number,
  seed: number,
): Promise<{ set: EvalSet; description: string }> {
  const { dataset, split } = await loadNamedDataset(data);
  const test = samplePart(dataset, split, "test", n, { seed });
  return { set: { x: toTensor(test), labels: test.labels }, description: `${data}/test` };
}

/** `n` FSDD validation clips (takes 5-14) as log-mel features, spread over speakers and digits. */
async function speechSet(n: number): Promise<{ set: EvalSet; description: string }> {
  const entries = spreadEntries(listFsdd(fsddTrainDir(), "validation"), n);
  if (entries.length === 0) {
    throw new UsageError(`--data fsdd: no FSDD validation recordings in ${fsddTrainDir()}`);
  }
  return { set: await speakerEvalSet(entries), description: "FSDD validation takes 5-14" };
}

/** Builds one variant's smoothing stage (and its model when it has its own), or undefined when absent. */
async function buildVariant(
  variant: Variant,
  sigma: number,
  predictN: number,
  options: CertificationOptions,
  loaded: Awaited<ReturnType<typeof loadPipeline>>,
  noiseModels: string,
): Promise<{ variant: CertificationVariant; dispose(): void } | undefined> {
  const settings: StageSettings = {
    sigma,
    denoiser: variant === "mse" || variant === "stability" ? variant : "none",
    "predict-n": predictN,
    n0: options.n0,
    n: options.n,
    alpha: options.alpha,
  };
  let split = loaded.split;
  let ownModel: ModelPart | undefined;
  if (variant === "noise-trained") {
    const dir = noiseModels.replaceAll("{sigma}", String(sigma));
    if (!await exists(join(dir, "model.json"))) return undefined;
    split =
      (await loadSplitModel(dir, { layerName: loaded.split.layerName, inputRange: loaded.split.inputRange }))
        .split;
    ownModel = split.model;
  }
  try {
    const [stage] = buildStages([SMOOTHING], {
      split,
      profile: variant === "noise-trained" ? undefined : loaded.profile,
      modality: loaded.modality,
      overrides: { [SMOOTHING]: settings },
    });
    return {
      variant: { name: VARIANT_NAMES[variant], stage, split },
      dispose() {
        stage.dispose();
        ownModel?.dispose();
      },
    };
  } catch (error) {
    ownModel?.dispose();
    if (error instanceof RangeError && /no denoiser/.test(error.message)) return undefined;
    throw error;
  }
}

/** This module's URL: `deno task eval --certify --help` prints its doc. */
export const CERTIFY_MODULE_URL = import.meta.url;

if (import.meta.main) await runMain(certifyMain, import.meta.url);
