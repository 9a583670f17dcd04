/**
 * `deno task eval`: attacks the model with each attack and budget, defends the adversarial examples with
 * NIP, and writes `<out>/eval.json` plus `<out>/eval.md`, every DSR beside benign accuracy after defense
 * and the random-noise and random-candidate controls.
 *
 *   deno task eval [--model models/fashion-lenet] [--profile DIR] [--data fashion-mnist] [--n 500]
 *     [--attacks fgsm,pgd-linf|all] [--budgets paper,standard,0.1] [--protocol honest,paper-oracle]
 *     [--out out/eval] [--backend wasm] [--seed 1]
 *   [--adaptive all|pgd-linf-bpda,square,...]   adds the adaptive suite (robust accuracy); `--attacks none`
 *     runs it alone
 *   deno task eval --data fsdd [--n 120] [--out out/eval-speaker]   the speaker comparison (issue 5):
 *     NIP vs the audio baselines vs the controls, spectrogram and waveform attacks
 *
 * @module
 */
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { toTensor } from "../data/dataset.ts";
import { BACKEND_NAMES } from "../engine/backend.ts";
import { type EvalReport, evaluate, type Protocol } from "../eval/harness.ts";
import { renderMarkdown } from "../eval/report.ts";
import { type AdaptiveReport, runAdaptive } from "../eval/adaptive.ts";
import { resolveSpecs } from "../eval/specs.ts";
import { inputKindOf } from "../attacks/mod.ts";
import { DEFAULT_MODEL_DIR, loadPipeline } from "../pipeline.ts";
import { choiceFlag, listFlag, numberFlag, parseFlags, runMain } from "./args.ts";
import { loadNamedDataset } from "./datasets.ts";
import { samplePart } from "../data/splits.ts";
import { createProgress } from "./progress.ts";
import { runSpeakerEvaluation } from "../../audio/eval_speaker.ts";

/** What one evaluation run needs. */
export interface EvalRunOptions {
  modelDir: string;
  profileDir?: string;
  data: string;
  n: number;
  attacks: string[];
  budgets: string[];
  protocols: Protocol[];
  out: string;
  backend: typeof BACKEND_NAMES[number];
  seed: number;
  title: string;
  attackOverrides?: Record<string, Record<string, unknown>>;
  /** Adaptive suite names (`src/eval/adaptive.ts`) run after the attacks; empty: none. */
  adaptive?: string[];
}

/** Runs an evaluation on `n` test examples and writes JSON + Markdown; returns the report and its Markdown. */
export async function runEvaluation(
  options: EvalRunOptions,
): Promise<{ report: EvalReport; adaptive?: AdaptiveReport; markdown: string }> {
  const pipeline = await loadPipeline({
    modelDir: options.modelDir,
    profileDir: options.profileDir,
    backend: options.backend,
  });
  const { dataset, split } = await loadNamedDataset(options.data);
  const test = samplePart(dataset, split, "test", options.n, { seed: options.seed });
  const specs = resolveSpecs(
    options.attacks,
    options.budgets,
    inputKindOf(pipeline.split.inputShape),
    options.attackOverrides,
  );
  const progress = createProgress();
  const x = toTensor(test);
  const started = performance.now();
  const report = await evaluate(pipeline.defense, x, test.labels, specs, {
    protocols: options.protocols,
    seed: options.seed,
    onProgress: (stage, done, total) => progress.update(stage, done, total),
  });
  progress.stop();
  let adaptive: { report: AdaptiveReport; markdown: string } | undefined;
  if (options.adaptive && options.adaptive.length > 0) {
    adaptive = await runAdaptive(pipeline.defense, x, test.labels, {
      attacks: options.adaptive.includes("all") ? undefined : options.adaptive,
      budgets: options.budgets.map((b) => b === "paper" || b === "standard" ? b : Number(b)),
      onProgress: (stage, done, total) => progress.update(stage, done, total),
      title: "Adaptive attacks (the attacker knows the defense): robust accuracy",
    });
    progress.stop();
  }
  x.dispose();
  pipeline.defense.dispose();
  const seconds = (performance.now() - started) / 1000;
  const markdown = (specs.length > 0 ? renderMarkdown(report, options.title) : "") +
    (adaptive ? `\n${adaptive.markdown}` : "") +
    `\nModel \`${options.modelDir}\` (${
      pipeline.modelHash.slice(0, 12)
    }), data ${options.data}/test, n=${options.n}, ` +
    `seed ${options.seed}, backend ${tf.getBackend()}, ${seconds.toFixed(1)} s.\n`;
  await Deno.mkdir(options.out, { recursive: true });
  const meta = { ...options, modelHash: pipeline.modelHash, backend: tf.getBackend(), seconds };
  const json = { meta, report, adaptive: adaptive?.report };
  await Deno.writeTextFile(join(options.out, "eval.json"), JSON.stringify(json, null, 2) + "\n");
  await Deno.writeTextFile(join(options.out, "eval.md"), markdown);
  return { report, adaptive: adaptive?.report, markdown };
}

async function main(): Promise<void> {
  const flags = parseFlags({
    model: { type: "string", default: DEFAULT_MODEL_DIR },
    profile: { type: "string" },
    data: { type: "string", default: "fashion-mnist" },
    n: { type: "string" },
    attacks: { type: "string", default: "fgsm,pgd-linf" },
    budgets: { type: "string", default: "paper,standard" },
    protocol: { type: "string", default: "honest,paper-oracle" },
    out: { type: "string", default: "out/eval" },
    backend: { type: "string", default: "wasm" },
    seed: { type: "string", default: "1" },
    adaptive: { type: "string" },
  });
  if (flags.data === "fsdd") {
    const markdown = await runSpeakerEvaluation({
      n: numberFlag("n", flags.n ?? "120", 1),
      out: flags.out === "out/eval" ? "out/eval-speaker" : flags.out,
      seed: numberFlag("seed", flags.seed),
      backend: choiceFlag("backend", flags.backend, BACKEND_NAMES),
    });
    console.log(markdown);
    return;
  }
  const { markdown } = await runEvaluation({
    modelDir: flags.model,
    profileDir: flags.profile,
    data: flags.data,
    n: numberFlag("n", flags.n ?? "500", 1),
    attacks: flags.attacks === "none" ? [] : listFlag("attacks", flags.attacks),
    budgets: listFlag("budgets", flags.budgets),
    protocols: listFlag("protocol", flags.protocol).map((p) =>
      choiceFlag("protocol", p, ["honest", "paper-oracle"] as const)
    ),
    out: flags.out,
    backend: choiceFlag("backend", flags.backend, BACKEND_NAMES),
    seed: numberFlag("seed", flags.seed),
    title: "NIP evaluation",
    adaptive: flags.adaptive === undefined ? [] : listFlag("adaptive", flags.adaptive),
  });
  console.log(markdown);
  console.log(`written: ${join(flags.out, "eval.json")}, ${join(flags.out, "eval.md")}`);
}

if (import.meta.main) await runMain(main);
