/**
 * `deno task eval`: one harness for images and speech. Attacks the model with each attack and budget,
 * defends the adversarial examples with every listed defense, and writes `<out>/eval.json` plus
 * `<out>/eval.md`: a column group per defense (DSR, its random-noise control, its own control, benign
 * accuracy after defense, ms per example).
 *
 *   deno task eval [--model models/fashion-lenet] [--profile DIR] [--data fashion-mnist] [--n 500]
 *     [--defenses nip,ss,cbdr,jc,tvm,fdistill] [--settings nip.strength=0.5,cbdr.bits=4]
 *     [--attacks fgsm,pgd-linf|all] [--budgets paper,standard,0.1] [--protocol honest,paper-oracle]
 *     [--out out/eval] [--backend wasm] [--seed 1] [--attack-params cw-l2.steps=100,deepfool-l2.steps=20]
 *   [--adaptive all|pgd-linf-bpda,square,...]   adds the adaptive suite against each defense (robust
 *     accuracy; gradients through each stage by BPDA); `--attacks none` runs it alone
 *   deno task eval --detect [--alpha 0.05] [--detect-adaptive 0.1,0.2|none [--runs 5] [--adaptive-n 100]
 *     [--steps 100] [--square-steps 1000] [--boundary-epsilon 2] [--boundary-steps 500] [--boundary-n 20]]
 *     the profile's calibrated detection: false positives, detection per attack; with --detect-adaptive,
 *     attacks aware of the detection at those L_inf radii (none: the L2 Boundary attack alone; boundary
 *     epsilon 0 skips it), rejected-or-correct, worst of runs
 *   deno task eval --data fsdd [--n 120] [--defenses nip,ds,rc,mc,qtz,ss,cbdr]
 *     [--attacks spectrogram:fgsm:2,waveform:pgd-linf:4]   the speaker model (models/fsdd-speaker) on FSDD
 *     validation clips; each attack names its domain and budget (dB on the map, 16-bit steps on the wave);
 *     `--data speaker --test DIR` reads a folder of WAV/FLAC files, one sub-folder per speaker (name order =
 *     the model's speaker order), instead
 *   deno task eval --certify [...]   certified robustness of randomized smoothing (`eval_certify.ts`)
 *   deno task eval --sweep strength=0.1,0.5,1|k1=...|k2=...|layer=A,B   NIP's sensitivity to one setting
 *     (`eval_sweep.ts`)
 *   deno task eval [...] --shard K/S [--block-size 100]   evaluates only shard K of S (every S-th block of
 *     examples from block K) and writes `<out>/shard-K-of-S.json` (+ `.timing.json`); the same command with
 *     K = 0..S-1, e.g. as a Kubernetes Indexed Job (deploy/eval-job.yaml), then
 *   deno task eval --merge-shards DIR[,DIR...] [--out out/eval]   joins the shards into exactly the report
 *     of the unsharded run (eval.json, eval.md)
 *
 * Defenses separated by commas are compared side by side; stages joined by `+` run as one pipeline
 * (`ss+nip`).
 *
 * @module
 */
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { audioFrontEnd } from "../../audio/baselines/index.ts";
import {
  DEFAULT_SPEAKER_ATTACKS,
  speakerAttackSpec,
  speakerEvalSet,
  spreadEntries,
} from "../eval/speech_domains.ts";
import { isDetectionCalibrationTake, listFsdd } from "../../audio/fsdd.ts";
import { listSpeakerFolder } from "../../audio/folder_dataset.ts";
import { toTensor } from "../data/dataset.ts";
import { fsddTrainDir } from "../data/shared_data.ts";
import { BACKEND_NAMES } from "../engine/backend.ts";
import { type AdaptiveReport, runAdaptive } from "../eval/adaptive.ts";
import {
  type AttackSpec,
  type EvalReport,
  type EvalSet,
  evaluate,
  evaluateBlocks,
  type Protocol,
} from "../eval/harness.ts";
import { inShard, mergeShards, parseShard, type Shard, shardFileName, shardFiles } from "../eval/shards.ts";
import type { DefensePipeline } from "../stages/pipeline.ts";
import { IMAGE_CORRUPTIONS } from "../eval/corruptions.ts";
import { type DetectionReport, evaluateDetection, renderDetectionMarkdown } from "../eval/detection.ts";
import {
  type AdaptiveDetectionOptions,
  type AdaptiveDetectionReport,
  evaluateAdaptiveDetection,
  renderAdaptiveDetectionMarkdown,
} from "../eval/detection_adaptive.ts";
import { renderMarkdown } from "../eval/report.ts";
import { DETECTION } from "../stages/detection.ts";
import { resolveSpecs } from "../eval/specs.ts";
import { inputKindOf } from "../attacks/mod.ts";
import { DEFAULT_MODEL_DIR, loadPipeline, type Pipeline } from "../pipeline.ts";
import { buildPipelines, parseDefenseList, stageFactory } from "../stages/registry.ts";
import type { StageSettings } from "../stages/stage.ts";
import { choiceFlag, listFlag, numberFlag, parseFlags, runMain, settingsFlag, UsageError } from "./args.ts";
import { sampleFlag } from "./data_flags.ts";
import { CERTIFY_MODULE_URL, certifyMain } from "./eval_certify.ts";
import { SWEEP_MODULE_URL, sweepMain } from "./eval_sweep.ts";
import { createProgress } from "./progress.ts";

/** The committed speaker model, evaluated with `--data fsdd`. */
export const SPEAKER_MODEL_DIR = "models/fsdd-speaker";

/** What one evaluation run needs. */
export interface EvalRunOptions {
  modelDir: string;
  profileDir?: string;
  /** A data source (`src/data/source.ts`: a named set's test part, an image folder, ...), or `fsdd` (speech). */
  data: string;
  /** The test examples' source when it differs from `data` (the user's own files: used whole, up to `n`). */
  test?: string;
  n: number;
  /** Defenses (see {@link parseDefenseList}), default `nip`. */
  defenses?: string;
  /** Settings per stage name. */
  settings?: Record<string, StageSettings>;
  /** Image attacks by name (or `all`), or for `fsdd` `domain:attack:budget` specs. */
  attacks: string[];
  /** Image budgets (`paper`, `standard`, a number); speaker attacks carry their own. */
  budgets: string[];
  protocols: Protocol[];
  out: string;
  backend: typeof BACKEND_NAMES[number];
  seed: number;
  title: string;
  attackOverrides?: Record<string, Record<string, unknown>>;
  /** Adaptive suite names (`src/eval/adaptive.ts`) run against each defense after the attacks; empty: none. */
  adaptive?: string[];
  /** Evaluate the profile's calibrated detection at this `alpha` (SPEC.md section 8). */
  detectAlpha?: number;
  /** With `detectAlpha`: also attack the detection adaptively at these L_inf radii. */
  detectAdaptive?: Omit<AdaptiveDetectionOptions, "onProgress" | "seed">;
  /** Examples per block (default 100; shards split by block). */
  blockSize?: number;
  /** Evaluate only this shard's blocks and write its shard files instead of the report (`eval/shards.ts`). */
  shard?: Shard;
}

/** Runs one shard of the defense table and writes its two files; returns a line saying what was written. */
async function runShard(
  options: EvalRunOptions,
  shard: Shard,
  pipelines: DefensePipeline[],
  set: EvalSet,
  specs: AttackSpec[],
  loaded: Pipeline,
  onProgress: (stage: string, done: number, total: number) => void,
): Promise<string> {
  const run = await evaluateBlocks(pipelines, set, specs, {
    protocols: options.protocols,
    seed: options.seed,
    frontEnd: loaded.modality === "audio" ? audioFrontEnd : undefined,
    blockSize: options.blockSize,
    selectBlock: (block) => inShard(shard, block),
    onProgress,
  });
  const { out, shard: _, ...settings } = options;
  const files = shardFiles(run, shard, { ...settings, modelHash: loaded.modelHash });
  await Deno.mkdir(out, { recursive: true });
  const path = join(out, shardFileName(shard));
  await Deno.writeTextFile(path, JSON.stringify(files.tallies, null, 2) + "\n");
  await Deno.writeTextFile(
    path.replace(/\.json$/, ".timing.json"),
    JSON.stringify(files.timing, null, 2) + "\n",
  );
  return `shard ${shard.index}/${shard.count}: ${run.tallies.length} of ${run.blockCount} blocks; written: ${path}`;
}

async function evaluationData(
  options: EvalRunOptions,
  pipeline: Pipeline,
  onProgress: (stage: string, done: number, total: number) => void,
): Promise<{ set: EvalSet; specs: AttackSpec[]; description: string }> {
  if (pipeline.modality === "audio" && options.test !== undefined) {
    const listing = listSpeakerFolder(options.test);
    const entries = spreadEntries(listing.items, options.n);
    const set = await speakerEvalSet(entries, (d, t) => onProgress("features (test)", d, t));
    const specs = options.attacks.map((a) =>
      speakerAttackSpec(a, options.attackOverrides?.[a.split(":")[1]])
    );
    return {
      set,
      specs,
      description: `speaker folder ${options.test} (${
        listing.speakers.join(", ")
      }), ${entries.length} recordings`,
    };
  }
  if (options.data === "fsdd") {
    const dir = fsddTrainDir();
    // Detection was calibrated on takes 5-9: its evaluation reads only the other validation takes.
    const detecting = options.detectAlpha !== undefined;
    const takes = detecting ? "10-14" : "5-14";
    const validation = listFsdd(dir, "validation").filter((e) =>
      !detecting || !isDetectionCalibrationTake(e.take)
    );
    const entries = spreadEntries(validation, options.n);
    if (entries.length === 0) throw new RangeError(`${dir}: no FSDD validation recordings (takes ${takes})`);
    const set = await speakerEvalSet(entries, (d, t) => onProgress("features (validation)", d, t));
    const specs = options.attacks.map((a) =>
      speakerAttackSpec(a, options.attackOverrides?.[a.split(":")[1]])
    );
    return { set, specs, description: `FSDD validation takes ${takes}, ${entries.length} clips` };
  }
  const { dataset: test, description } = await sampleFlag(
    options.test === undefined ? "data" : "test",
    options.test ?? options.data,
    "test",
    options.n,
    { shape: pipeline.split.inputShape, seed: options.seed, upTo: options.test !== undefined },
  );
  let specs: AttackSpec[];
  try {
    specs = resolveSpecs(
      options.attacks,
      options.budgets,
      inputKindOf(pipeline.split.inputShape),
      options.attackOverrides,
      (reason) => console.error(`skipped: ${reason}`),
    );
  } catch (error) {
    throw new UsageError(`--attacks / --budgets: ${(error as Error).message}`);
  }
  return {
    set: { x: toTensor(test), labels: test.labels },
    specs,
    description,
  };
}

/** Runs an evaluation and writes JSON + Markdown; returns the report and its Markdown. */
export async function runEvaluation(
  options: EvalRunOptions,
): Promise<
  { report?: EvalReport; adaptive: AdaptiveReport[]; detection?: DetectionReport; markdown: string }
> {
  const loaded = await loadPipeline({
    modelDir: options.modelDir,
    profileDir: options.profileDir,
    backend: options.backend,
    defenses: [],
  });
  const pipelines = buildPipelines(options.defenses === undefined ? [] : parseDefenseList(options.defenses), {
    split: loaded.split,
    profile: loaded.profile,
    modality: loaded.modality,
    overrides: options.settings,
  });
  const progress = createProgress();
  const onProgress = (stage: string, done: number, total: number) => progress.update(stage, done, total);
  const started = performance.now();
  const { set, specs, description } = await evaluationData(options, loaded, onProgress);
  try {
    if (options.shard) {
      const markdown = await runShard(options, options.shard, pipelines, set, specs, loaded, onProgress);
      return { adaptive: [], markdown };
    }
    const report = pipelines.length === 0 ? undefined : await evaluate(pipelines, set, specs, {
      protocols: options.protocols,
      blockSize: options.blockSize,
      seed: options.seed,
      frontEnd: loaded.modality === "audio" ? audioFrontEnd : undefined,
      onProgress,
    });
    progress.stop();
    let detection: DetectionReport | undefined;
    let adaptiveDetection: AdaptiveDetectionReport | undefined;
    if (options.detectAlpha !== undefined) {
      const [detector] = buildPipelines([[DETECTION]], {
        split: loaded.split,
        profile: loaded.profile,
        modality: loaded.modality,
        alpha: options.detectAlpha,
      });
      try {
        detection = await evaluateDetection(detector, set, specs, {
          alpha: options.detectAlpha,
          corruptions: loaded.modality === "image" ? IMAGE_CORRUPTIONS : [],
          seed: options.seed,
          onProgress,
        });
        if (options.detectAdaptive) {
          adaptiveDetection = await evaluateAdaptiveDetection(detector, set, {
            ...options.detectAdaptive,
            seed: options.seed,
            onProgress,
          });
        }
      } finally {
        detector.dispose();
        progress.stop();
      }
    }
    const adaptive: { report: AdaptiveReport; markdown: string }[] = [];
    for (const pipeline of options.adaptive?.length ? pipelines : []) {
      adaptive.push(
        await runAdaptive(pipeline, set.x as tf.Tensor4D, set.labels, {
          attacks: options.adaptive!.includes("all") ? undefined : options.adaptive,
          budgets: options.budgets.map((b) => b === "paper" || b === "standard" ? b : Number(b)),
          onProgress,
          title: `Adaptive attacks on \`${pipeline.name}\` (the attacker knows the defense): robust accuracy`,
        }),
      );
      progress.stop();
    }
    const seconds = (performance.now() - started) / 1000;
    const markdown = (report && specs.length > 0 ? renderMarkdown(report, options.title) : "") +
      (detection ? `\n${renderDetectionMarkdown(detection)}` : "") +
      (adaptiveDetection ? `\n${renderAdaptiveDetectionMarkdown(adaptiveDetection)}` : "") +
      adaptive.map((a) => `\n${a.markdown}`).join("") +
      `\nModel \`${options.modelDir}\` (${loaded.modelHash.slice(0, 12)}), ${description}, ` +
      `seed ${options.seed}, backend ${tf.getBackend()}, ${seconds.toFixed(1)} s.\n`;
    await Deno.mkdir(options.out, { recursive: true });
    const meta = { ...options, modelHash: loaded.modelHash, backend: tf.getBackend(), seconds };
    const json = { meta, report, detection, adaptiveDetection, adaptive: adaptive.map((a) => a.report) };
    await Deno.writeTextFile(join(options.out, "eval.json"), JSON.stringify(json, null, 2) + "\n");
    await Deno.writeTextFile(join(options.out, "eval.md"), markdown);
    return { report, adaptive: adaptive.map((a) => a.report), detection, markdown };
  } finally {
    progress.stop();
    set.x.dispose();
    pipelines.forEach((p) => p.dispose());
    loaded.defense.dispose();
  }
}

/** `--merge-shards a,b`: the shard files (or folders holding them) of one run, to eval.json + eval.md. */
async function mergeMain(): Promise<void> {
  const flags = parseFlags({
    "merge-shards": { type: "string" },
    out: { type: "string", default: "out/eval" },
  });
  const paths: string[] = [];
  for (const entry of listFlag("merge-shards", flags["merge-shards"] ?? "")) {
    const info = await Deno.stat(entry).catch(() => {
      throw new UsageError(`--merge-shards: ${entry}: no such file or folder`);
    });
    if (!info.isDirectory) {
      paths.push(entry);
      continue;
    }
    for await (const file of Deno.readDir(entry)) {
      if (/^shard-\d+-of-\d+\.json$/.test(file.name)) paths.push(join(entry, file.name));
    }
  }
  const read = async (path: string) => {
    try {
      return JSON.parse(await Deno.readTextFile(path));
    } catch (error) {
      throw new UsageError(`${path}: ${(error as Error).message}`);
    }
  };
  const shards = await Promise.all(paths.map(read));
  const timingPaths = paths.map((p) => p.replace(/\.json$/, ".timing.json"));
  const timings = [];
  for (const path of timingPaths) {
    if (await Deno.stat(path).then(() => true, () => false)) timings.push(await read(path));
  }
  let merged;
  try {
    merged = mergeShards(shards, paths, timings);
  } catch (error) {
    throw new UsageError(`--merge-shards: ${(error as Error).message}`);
  }
  const identity = merged.identity as { title?: string; modelDir?: string; data?: string; n?: number };
  const markdown = renderMarkdown(merged.report, identity.title) +
    `\nModel \`${identity.modelDir}\`, ${identity.data}, n=${identity.n}; merged from ${paths.length} shards` +
    (timings.length === paths.length ? "" : " (times from some shards only: ms columns partial)") + ".\n";
  await Deno.mkdir(flags.out, { recursive: true });
  const json = { meta: { ...identity, shards: paths.length }, report: merged.report, adaptive: [] };
  await Deno.writeTextFile(join(flags.out, "eval.json"), JSON.stringify(json, null, 2) + "\n");
  await Deno.writeTextFile(join(flags.out, "eval.md"), markdown);
  console.log(markdown);
  console.log(`written: ${join(flags.out, "eval.json")}, ${join(flags.out, "eval.md")}`);
}

function shardFlag(value: string): Shard {
  try {
    return parseShard(value);
  } catch (error) {
    throw new UsageError(`--shard: ${(error as Error).message}`);
  }
}

async function main(): Promise<void> {
  const flags = parseFlags({
    model: { type: "string" },
    profile: { type: "string" },
    data: { type: "string", default: "fashion-mnist" },
    test: { type: "string" },
    n: { type: "string" },
    defenses: { type: "string" },
    detect: { type: "boolean", default: false },
    alpha: { type: "string", default: "0.05" },
    settings: { type: "string" },
    attacks: { type: "string" },
    budgets: { type: "string" },
    protocol: { type: "string", default: "honest,paper-oracle" },
    out: { type: "string" },
    backend: { type: "string", default: "wasm" },
    seed: { type: "string", default: "1" },
    adaptive: { type: "string" },
    "attack-params": { type: "string" },
    "detect-adaptive": { type: "string" },
    runs: { type: "string", default: "5" },
    "adaptive-n": { type: "string", default: "100" },
    steps: { type: "string", default: "100" },
    "square-steps": { type: "string", default: "1000" },
    "boundary-epsilon": { type: "string", default: "2" },
    "boundary-steps": { type: "string", default: "500" },
    "boundary-n": { type: "string", default: "20" },
    shard: { type: "string" },
    "block-size": { type: "string", default: "100" },
  });
  if (flags.shard !== undefined && (flags.detect || flags.adaptive !== undefined)) {
    throw new UsageError("--shard splits the defense table only: run --detect and --adaptive unsharded");
  }
  if (flags["detect-adaptive"] !== undefined && !flags.detect) {
    throw new UsageError("--detect-adaptive attacks the detection: give --detect too");
  }
  // With --detect alone only the detection is evaluated; --defenses adds the defense table.
  const defenseList = flags.defenses ?? (flags.detect ? undefined : "nip");
  const defenses = defenseList === undefined ? [] : parseDefenseList(defenseList);
  for (const name of defenses.flat()) {
    try {
      stageFactory(name);
    } catch (error) {
      throw new UsageError(`--defenses: ${(error as Error).message}`);
    }
  }
  const speech = flags.data === "fsdd" || flags.data === "speaker";
  if (flags.data === "speaker" && flags.test === undefined) {
    throw new UsageError(
      "--data speaker reads a folder of recordings: give --test DIR (one sub-folder per speaker)",
    );
  }
  if (speech && flags.budgets !== undefined) {
    throw new UsageError(
      "--budgets: speaker attacks carry their own budget (--attacks spectrogram:fgsm:2,...)",
    );
  }
  const out = flags.out ?? (speech ? "out/eval-speaker" : "out/eval");
  const attacks = flags.attacks ?? (speech ? DEFAULT_SPEAKER_ATTACKS.join(",") : "fgsm,pgd-linf");
  const { markdown } = await runEvaluation({
    modelDir: flags.model ?? (speech ? SPEAKER_MODEL_DIR : DEFAULT_MODEL_DIR),
    profileDir: flags.profile,
    data: flags.data,
    test: flags.test,
    n: numberFlag("n", flags.n ?? (speech ? "120" : "500"), 1),
    defenses: defenseList,
    detectAlpha: flags.detect ? numberFlag("alpha", flags.alpha, 1e-6, 0.5) : undefined,
    detectAdaptive: flags["detect-adaptive"] === undefined ? undefined : {
      epsilons: flags["detect-adaptive"] === "none"
        ? []
        : listFlag("detect-adaptive", flags["detect-adaptive"]).map((e) =>
          numberFlag("detect-adaptive", e, 1e-6)
        ),
      runs: numberFlag("runs", flags.runs, 1),
      n: numberFlag("adaptive-n", flags["adaptive-n"], 1),
      steps: numberFlag("steps", flags.steps, 1),
      squareSteps: numberFlag("square-steps", flags["square-steps"], 1),
      boundaryEpsilon: numberFlag("boundary-epsilon", flags["boundary-epsilon"], 0),
      boundarySteps: numberFlag("boundary-steps", flags["boundary-steps"], 1),
      boundaryN: numberFlag("boundary-n", flags["boundary-n"], 1),
    },
    settings: flags.settings === undefined ? undefined : settingsFlag(flags.settings),
    attackOverrides: flags["attack-params"] === undefined
      ? undefined
      : settingsFlag(flags["attack-params"], "attack-params", "attack"),
    attacks: attacks === "none" ? [] : listFlag("attacks", attacks),
    budgets: listFlag("budgets", flags.budgets ?? "paper,standard"),
    protocols: listFlag("protocol", flags.protocol).map((p) =>
      choiceFlag("protocol", p, ["honest", "paper-oracle"] as const)
    ),
    out,
    backend: choiceFlag("backend", flags.backend, BACKEND_NAMES),
    seed: numberFlag("seed", flags.seed),
    title: speech ? "Defenses on speaker recognition (FSDD)" : "Defense evaluation",
    adaptive: flags.adaptive === undefined ? [] : listFlag("adaptive", flags.adaptive),
    shard: flags.shard === undefined ? undefined : shardFlag(flags.shard),
    blockSize: numberFlag("block-size", flags["block-size"], 1),
  });
  console.log(markdown);
  // A shard's line above already says what it wrote.
  if (flags.shard === undefined) console.log(`written: ${join(out, "eval.json")}, ${join(out, "eval.md")}`);
}

if (import.meta.main) {
  const certify = Deno.args.includes("--certify");
  const sweep = Deno.args.includes("--sweep");
  const merge = Deno.args.includes("--merge-shards");
  await runMain(
    certify ? certifyMain : sweep ? sweepMain : merge ? mergeMain : main,
    certify ? CERTIFY_MODULE_URL : sweep ? SWEEP_MODULE_URL : import.meta.url,
  );
}
