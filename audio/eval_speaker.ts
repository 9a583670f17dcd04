/**
 * The speaker comparison (issue 5; the paper's Fig. 6, under the honest protocol): on FSDD validation
 * clips, attack the speaker model on the log-mel map (the paper's setting) and on the waveform (through
 * the tfjs feature twin: the attacker controls the sound), then defend every adversarial example with NIP
 * (no label, candidates from calibration takes only) and with each audio baseline, and report each DSR
 * beside the random-noise control (Gaussian of the same feature-space L2 change as the defense, SPEC.md
 * section 7), NIP's random-candidate control, benign accuracy after each defense, and ms per clip.
 *
 * Where each defense acts:
 * - NIP, SS, BDR act on the model's features (of the adversarial map, or of the attacked waveform as the
 *   front end computes it);
 * - DS, RC, MC, QTZ act on a waveform: the attacked one, or for spectrogram attacks the adversarial map
 *   resynthesized with the clean clip's phase (`resynth.ts`); "resynthesis only" reports what that step
 *   alone does.
 * Waveform attacks count as successful only when the real front end (meyda) gives the model a wrong label.
 *
 *   deno run -A audio/eval_speaker.ts [--n 120] [--attacks spectrogram:fgsm:2,waveform:pgd-linf:4]
 *     [--baselines DS,RC,MC,QTZ,SS,BDR] [--out out/eval-speaker] [--seed 1] [--strength X]
 *     [--model DIR] [--profile DIR] [--data DIR] [--backend wasm]
 *
 * @module
 */
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { getAttack } from "../src/attacks/mod.ts";
import type { AttackBudget, AttackTarget } from "../src/attacks/types.ts";
import { BACKEND_NAMES, type BackendName } from "../src/engine/backend.ts";
import { changeNorms, finiteMean } from "../src/eval/metrics.ts";
import { agreement, randomCandidateControl, randomNoiseControl } from "../src/eval/controls.ts";
import { mulberry32 } from "../src/random.ts";
import { num, pct, verdict } from "../src/eval/report.ts";
import { type AttackRow, profileSummary } from "../src/eval/harness.ts";
import type { NipDefense } from "../src/nip/defense.ts";
import type { Pipeline } from "../src/pipeline.ts";
import { choiceFlag, listFlag, numberFlag, parseFlags, runMain, UsageError } from "../src/cli/args.ts";
import { createProgress } from "../src/cli/progress.ts";
import {
  clipsFromBatch,
  perturbationLinfInt16,
  perturbationSnrDb,
  spectrogramLinfBudget,
  spectrogramTarget,
  waveformBatch,
  waveformLinfBudget,
  waveformTarget,
} from "./attack_budgets.ts";
import { AUDIO_BASELINES, type AudioBaseline, audioBaseline } from "./baselines/index.ts";
import { fitToClip } from "./clip.ts";
import { MODEL_SAMPLE_RATE } from "./config.ts";
import { featuresToTensor, featurize } from "./features.ts";
import { disposeFeatureTwin } from "./features_tf.ts";
import { FSDD_SPEAKERS, type FsddEntry, listFsdd } from "./fsdd.ts";
import { disposeSplitModel, FSDD_DIR, loadSpeakerPipeline, SPEAKER_MODEL_DIR } from "./nip_speaker.ts";
import { defendedFeaturesToWav, wavRequestToInput } from "./request.ts";
import { resynthesize } from "./resynth.ts";
import { decodeWav, encodeWav } from "./wav.ts";
import { predictLabels } from "../src/nip/neurons.ts";

/** Where an attack perturbs: the log-mel map or the waveform. */
export type SpeakerAttackDomain = "spectrogram" | "waveform";

/**
 * One attack at one budget: `budget` is an L_inf bound in dB of mel power (spectrogram) or in 16-bit
 * sample steps (waveform).
 */
export interface SpeakerAttackSpec {
  domain: SpeakerAttackDomain;
  /** Registry name of a fixed-epsilon L_inf attack, e.g. "fgsm", "pgd-linf". */
  attack: string;
  budget: number;
  params?: Record<string, unknown>;
}

/** The default comparison: FGSM and PGD on the map, PGD on the waveform, two budgets each. */
export const DEFAULT_SPEAKER_ATTACKS: readonly SpeakerAttackSpec[] = [
  { domain: "spectrogram", attack: "fgsm", budget: 2 },
  { domain: "spectrogram", attack: "fgsm", budget: 6 },
  { domain: "spectrogram", attack: "pgd-linf", budget: 2 },
  { domain: "spectrogram", attack: "pgd-linf", budget: 4 },
  { domain: "waveform", attack: "pgd-linf", budget: 4 },
  { domain: "waveform", attack: "pgd-linf", budget: 16 },
];

/** Parses `domain:attack:budget` (e.g. `waveform:pgd-linf:8`). */
export function parseSpeakerAttack(text: string): SpeakerAttackSpec {
  const [domain, attack, budget, extra] = text.split(":");
  const value = Number(budget);
  if (extra !== undefined || (domain !== "spectrogram" && domain !== "waveform") || !attack) {
    throw new UsageError(`attack "${text}": expected spectrogram|waveform:ATTACK:BUDGET`);
  }
  if (!Number.isFinite(value) || value <= 0) {
    throw new UsageError(`attack "${text}": budget must be a positive number (dB or 16-bit steps)`);
  }
  return { domain, attack, budget: value };
}

/** The budget of a spec in the attack library's terms, labelled with its units. */
export function speakerBudget(spec: SpeakerAttackSpec): AttackBudget {
  return spec.domain === "spectrogram" ? spectrogramLinfBudget(spec.budget) : waveformLinfBudget(spec.budget);
}

/** A validation clip: the fitted 1-s waveform, its features and its speaker. */
export interface SpeakerClip {
  path: string;
  clip: Float32Array;
  features: Float32Array;
  label: number;
}

/** DSR of one defense on one attack, beside the random-noise control at that defense's change. */
export interface DefenseScore {
  dsr: number;
  /** Gaussian noise of the same feature-space L2 norm as the defense's change, mean over draws. */
  randomNoise: number;
  /** Mean feature-space L2 norm of the defense's change. */
  changeL2: number;
}

/** The figures of one attack at one budget. */
export interface SpeakerAttackRow {
  domain: SpeakerAttackDomain;
  attack: string;
  budget: string;
  epsilon: number;
  attacked: number;
  adversarial: number;
  asr: number;
  /** Waveform attacks: mean SNR (dB) and L_inf (16-bit steps) of the adversarial examples. */
  perturbation: { snrDb: number; linfInt16: number; featureLinf: number };
  nip: DefenseScore & { randomCandidate: number };
  baselines: Record<string, DefenseScore>;
  /** Spectrogram attacks: DSR of resynthesis alone (the step the waveform baselines run after). */
  resynthesisOnly: number;
  msPerClip: { attack: number };
}

/** Benign accuracy (all evaluated clips) bare and after each defense, with ms per clip. */
export interface SpeakerBenignSummary {
  clips: number;
  accuracy: number;
  afterDefense: Record<string, number>;
  msPerClip: Record<string, number>;
}

/** Per-clip timings (batch of one, after a warm-up) of the audio path. */
export interface SpeakerTiming {
  clips: number;
  /** meyda features of a 1-s clip. */
  featurize: number;
  /** Model inference on one feature map. */
  bare: number;
  /** NIP on one feature map (forward, match, perturb, reclassify). */
  nip: number;
  /** Resynthesis + WAV encoding of defended features. */
  resynthesize: number;
  /** WAV bytes -> label, undefended. */
  wavToLabel: number;
  /** WAV bytes -> defended WAV bytes (decode, features, NIP, resynthesis, encode). */
  wavToDefendedWav: number;
}

/** A whole speaker evaluation. */
export interface SpeakerEvalReport {
  benign: SpeakerBenignSummary;
  rows: SpeakerAttackRow[];
  timing: SpeakerTiming;
  profile: { layer: string; candidates: number; keyMode: string; scaleRule: string; strength: number };
  baselines: { name: string; domain: string; description: string }[];
}

/** Options of {@link evaluateSpeaker}. */
export interface SpeakerEvalCoreOptions {
  attacks?: readonly SpeakerAttackSpec[];
  /** Baseline names (default all six). */
  baselines?: string[];
  seed?: number;
  noiseDraws?: number;
  batchSize?: number;
  /** Clips timed one at a time (default 20). */
  timingClips?: number;
  onProgress?: (stage: string, done: number, total: number) => void;
}

/** Options of {@link runSpeakerEvaluation}. */
export interface SpeakerEvalOptions extends SpeakerEvalCoreOptions {
  modelDir?: string;
  profileDir?: string;
  dataDir?: string;
  /** Validation clips, spread evenly over takes 5-14 (default 120; 600 = all). */
  n?: number;
  /** Output directory for `eval-speaker.json` and `eval-speaker.md` (default out/eval-speaker). */
  out?: string;
  backend?: BackendName;
  /** Overrides the profile's NIP strength (an ablation; the profile's calibrated value by default). */
  strength?: number;
  /** Show a progress display (default true); `onProgress` replaces it. */
  progress?: boolean;
}

/** `n` validation entries spread evenly over the sorted list (every speaker, digit and take). */
export function spreadEntries(entries: FsddEntry[], n: number): FsddEntry[] {
  if (n >= entries.length) return entries;
  return Array.from({ length: n }, (_, i) => entries[Math.floor((i * entries.length) / n)]);
}

/** Decodes and featurizes FSDD entries as {@link SpeakerClip}s. */
export async function loadSpeakerClips(
  entries: FsddEntry[],
  onProgress?: (done: number, total: number) => void,
): Promise<SpeakerClip[]> {
  const clips: SpeakerClip[] = [];
  for (const [i, entry] of entries.entries()) {
    const clip = fitToClip(decodeWav(await Deno.readFile(entry.path)).samples);
    clips.push({ path: entry.path, clip, features: featurize(clip), label: entry.label });
    onProgress?.(i + 1, entries.length);
  }
  return clips;
}

function predictFeatures(model: tf.LayersModel, features: Float32Array[]): Int32Array {
  const x = featuresToTensor(features);
  const labels = predictLabels(model, x);
  x.dispose();
  return labels;
}

function chunks(n: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let start = 0; start < n; start += size) out.push([start, Math.min(n, start + size)]);
  return out;
}

async function baselineOn(
  baseline: AudioBaseline,
  features: Float32Array,
  wave: Float32Array,
  random: () => number,
): Promise<Float32Array> {
  return baseline.domain === "waveform"
    ? featurize(await baseline.apply(wave, random))
    : await baseline.apply(features, random);
}

function l2Distance(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i] - b[i]) ** 2;
  return Math.sqrt(sum);
}

interface AdversarialSet {
  features: Float32Array[];
  /** The attacked waveform, or for spectrogram attacks the map resynthesized with the clean phase. */
  waves: Float32Array[];
  labels: Int32Array;
  attacked: number;
  snrDb: number[];
  linfInt16: number[];
  featureLinf: number[];
  attackMs: number;
}

async function runAttack(
  model: tf.LayersModel,
  clips: SpeakerClip[],
  spec: SpeakerAttackSpec,
  options:
    & Required<Omit<SpeakerEvalCoreOptions, "onProgress" | "attacks" | "baselines">>
    & SpeakerEvalCoreOptions,
  stage: string,
): Promise<AdversarialSet> {
  const bare = predictFeatures(model, clips.map((c) => c.features));
  const correct = clips.filter((c, i) => bare[i] === c.label);
  const attack = getAttack(spec.attack, { ...(spec.params ?? {}) });
  if (attack.norm !== "linf" || attack.mode !== "fixed-epsilon") {
    throw new RangeError(`speaker attack "${spec.attack}" must be a fixed-epsilon L_inf attack`);
  }
  const budget = speakerBudget(spec);
  const target: AttackTarget = spec.domain === "spectrogram"
    ? spectrogramTarget(model)
    : waveformTarget(model);
  const set: AdversarialSet = {
    features: [],
    waves: [],
    labels: new Int32Array(0),
    attacked: correct.length,
    snrDb: [],
    linfInt16: [],
    featureLinf: [],
    attackMs: 0,
  };
  const labels: number[] = [];
  const plan = chunks(correct.length, options.batchSize);
  for (const [k, [start, end]] of plan.entries()) {
    const batch = correct.slice(start, end);
    const batchLabels = Int32Array.from(batch, (c) => c.label);
    const x = spec.domain === "spectrogram"
      ? featuresToTensor(batch.map((c) => c.features))
      : waveformBatch(batch.map((c) => c.clip));
    const t0 = performance.now();
    const result = await attack.run(target, x, { kind: "misclassification", labels: batchLabels }, budget);
    set.attackMs += performance.now() - t0;
    const flat = result.adversarial.dataSync() as Float32Array;
    const size = flat.length / batch.length;
    const adversarial = spec.domain === "spectrogram"
      ? batch.map((_, i) => flat.slice(i * size, (i + 1) * size))
      : clipsFromBatch(result.adversarial).map((wave) => featurize(wave));
    const waves = spec.domain === "waveform" ? clipsFromBatch(result.adversarial) : null;
    tf.dispose([x, result.adversarial]);
    // Waveform attacks are judged through the real front end (meyda), not the twin they optimised.
    const after = predictFeatures(model, adversarial);
    batch.forEach((clean, i) => {
      const hit = spec.domain === "spectrogram" ? result.success[i] === 1 : after[i] !== clean.label;
      if (!hit) return;
      set.features.push(adversarial[i]);
      set.waves.push(waves ? waves[i] : resynthesize(clean.clip, adversarial[i]));
      labels.push(clean.label);
      let linf = 0;
      for (let j = 0; j < clean.features.length; j++) {
        linf = Math.max(linf, Math.abs(adversarial[i][j] - clean.features[j]));
      }
      set.featureLinf.push(linf);
      if (waves) {
        set.snrDb.push(perturbationSnrDb(clean.clip, waves[i]));
        set.linfInt16.push(perturbationLinfInt16(clean.clip, waves[i]));
      }
    });
    options.onProgress?.(stage, k + 1, plan.length);
  }
  set.labels = Int32Array.from(labels);
  return set;
}

async function scoreDefenses(
  defense: NipDefense,
  set: AdversarialSet,
  baselines: readonly AudioBaseline[],
  spec: SpeakerAttackSpec,
  options:
    & Required<Omit<SpeakerEvalCoreOptions, "onProgress" | "attacks" | "baselines">>
    & SpeakerEvalCoreOptions,
  stage: string,
): Promise<Pick<SpeakerAttackRow, "nip" | "baselines" | "resynthesisOnly">> {
  const { model, inputRange } = defense.split;
  const random = mulberry32(options.seed);
  const m = set.labels.length;
  const sums = { nip: 0, noise: 0, candidate: 0 };
  const nipL2: number[] = [];
  const plan = chunks(m, options.batchSize);
  for (const [start, end] of plan) {
    const x = featuresToTensor(set.features.slice(start, end));
    const expected = set.labels.subarray(start, end);
    const outcome = defense.defendBatch(x);
    const change = changeNorms(outcome.defended, x);
    outcome.defended.dispose();
    nipL2.push(...change.l2);
    const size = end - start;
    sums.nip += agreement(outcome.labelsAfter, expected) * size;
    sums.noise += randomNoiseControl(model, x, change.l2, expected, inputRange, {
      draws: options.noiseDraws,
      seed: options.seed + start,
    }) * size;
    sums.candidate += randomCandidateControl(defense, x, expected, random) * size;
    x.dispose();
  }
  const result: Pick<SpeakerAttackRow, "nip" | "baselines" | "resynthesisOnly"> = {
    nip: {
      dsr: sums.nip / m,
      randomNoise: sums.noise / m,
      randomCandidate: sums.candidate / m,
      changeL2: finiteMean(nipL2),
    },
    baselines: {},
    resynthesisOnly: NaN,
  };
  if (spec.domain === "spectrogram") {
    result.resynthesisOnly = agreement(
      predictFeatures(model, set.waves.map((w) => featurize(w))),
      set.labels,
    );
  }
  for (const [b, baseline] of baselines.entries()) {
    const defended: Float32Array[] = [];
    for (let i = 0; i < m; i++) {
      defended.push(await baselineOn(baseline, set.features[i], set.waves[i], random));
    }
    const norms = Float32Array.from(defended, (d, i) => l2Distance(d, set.features[i]));
    const x = featuresToTensor(set.features);
    result.baselines[baseline.name] = {
      dsr: agreement(predictFeatures(model, defended), set.labels),
      randomNoise: randomNoiseControl(model, x, norms, set.labels, inputRange, {
        draws: options.noiseDraws,
        seed: options.seed + 7919 * (b + 1),
      }),
      changeL2: finiteMean(norms),
    };
    x.dispose();
    options.onProgress?.(stage, b + 1, baselines.length);
  }
  return result;
}

async function benignSummary(
  defense: NipDefense,
  clips: SpeakerClip[],
  baselines: readonly AudioBaseline[],
  options:
    & Required<Omit<SpeakerEvalCoreOptions, "onProgress" | "attacks" | "baselines">>
    & SpeakerEvalCoreOptions,
): Promise<SpeakerBenignSummary> {
  const labels = Int32Array.from(clips, (c) => c.label);
  const features = clips.map((c) => c.features);
  const random = mulberry32(options.seed);
  let t0 = performance.now();
  const bare = predictFeatures(defense.split.model, features);
  const summary: SpeakerBenignSummary = {
    clips: clips.length,
    accuracy: agreement(bare, labels),
    afterDefense: {},
    msPerClip: { bare: (performance.now() - t0) / clips.length },
  };
  t0 = performance.now();
  const nipLabels = new Int32Array(clips.length);
  for (const [start, end] of chunks(clips.length, options.batchSize)) {
    const x = featuresToTensor(features.slice(start, end));
    const outcome = defense.defendBatch(x);
    tf.dispose([x, outcome.defended]);
    nipLabels.set(outcome.labelsAfter, start);
  }
  summary.msPerClip.NIP = (performance.now() - t0) / clips.length;
  summary.afterDefense.NIP = agreement(nipLabels, labels);
  for (const [b, baseline] of baselines.entries()) {
    t0 = performance.now();
    const defended: Float32Array[] = [];
    for (const clip of clips) defended.push(await baselineOn(baseline, clip.features, clip.clip, random));
    summary.msPerClip[baseline.name] = (performance.now() - t0) / clips.length;
    summary.afterDefense[baseline.name] = agreement(predictFeatures(defense.split.model, defended), labels);
    options.onProgress?.("benign baselines", b + 1, baselines.length);
  }
  return summary;
}

function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function measureTiming(defense: NipDefense, clips: SpeakerClip[], count: number): SpeakerTiming {
  const timed = clips.slice(0, Math.max(1, Math.min(count, clips.length)));
  const wavs = timed.map((c) => encodeWav(c.clip, MODEL_SAMPLE_RATE));
  const times: Record<keyof Omit<SpeakerTiming, "clips">, number[]> = {
    featurize: [],
    bare: [],
    nip: [],
    resynthesize: [],
    wavToLabel: [],
    wavToDefendedWav: [],
  };
  const clock = <T>(key: keyof typeof times, work: () => T): T => {
    const start = performance.now();
    const out = work();
    times[key].push(performance.now() - start);
    return out;
  };
  const classify = (features: Float32Array) => predictFeatures(defense.split.model, [features])[0];
  const defend = (features: Float32Array): Float32Array =>
    tf.tidy(() => {
      const outcome = defense.defendBatch(featuresToTensor(features));
      const out = outcome.defended.dataSync() as Float32Array;
      outcome.defended.dispose();
      return out;
    });
  // One untimed pass warms the backend's kernels up.
  defend(timed[0].features);
  timed.forEach((clip, i) => {
    const features = clock("featurize", () => featurize(clip.clip));
    clock("bare", () => classify(features));
    const defended = clock("nip", () => defend(features));
    clock("resynthesize", () => defendedFeaturesToWav(clip.clip, defended));
    clock("wavToLabel", () => classify(wavRequestToInput(wavs[i]).features));
    clock("wavToDefendedWav", () => {
      const input = wavRequestToInput(wavs[i]);
      return defendedFeaturesToWav(input.samples, defend(input.features));
    });
  });
  return {
    clips: timed.length,
    featurize: median(times.featurize),
    bare: median(times.bare),
    nip: median(times.nip),
    resynthesize: median(times.resynthesize),
    wavToLabel: median(times.wavToLabel),
    wavToDefendedWav: median(times.wavToDefendedWav),
  };
}

/** Runs the comparison on loaded clips with a loaded defense; nothing is written and nothing disposed. */
export async function evaluateSpeaker(
  defense: NipDefense,
  clips: SpeakerClip[],
  options: SpeakerEvalCoreOptions = {},
): Promise<SpeakerEvalReport> {
  const resolved = {
    seed: options.seed ?? 1,
    noiseDraws: options.noiseDraws ?? 5,
    batchSize: options.batchSize ?? 50,
    timingClips: options.timingClips ?? 20,
    onProgress: options.onProgress,
  };
  const baselines = (options.baselines ?? AUDIO_BASELINES.map((b) => b.name)).map((name) =>
    audioBaseline(name)
  );
  const benign = await benignSummary(defense, clips, baselines, resolved);
  const rows: SpeakerAttackRow[] = [];
  for (const spec of options.attacks ?? DEFAULT_SPEAKER_ATTACKS) {
    const budget = speakerBudget(spec);
    const stage = `${spec.domain} ${spec.attack} ${spec.budget}`;
    const set = await runAttack(defense.split.model, clips, spec, resolved, `attack ${stage}`);
    const m = set.labels.length;
    const row: SpeakerAttackRow = {
      domain: spec.domain,
      attack: spec.attack,
      budget: budget.label ?? String(budget.epsilon),
      epsilon: budget.epsilon,
      attacked: set.attacked,
      adversarial: m,
      asr: set.attacked === 0 ? NaN : m / set.attacked,
      perturbation: {
        snrDb: finiteMean(set.snrDb),
        linfInt16: finiteMean(set.linfInt16),
        featureLinf: finiteMean(set.featureLinf),
      },
      nip: { dsr: NaN, randomNoise: NaN, randomCandidate: NaN, changeL2: NaN },
      baselines: {},
      resynthesisOnly: NaN,
      msPerClip: { attack: set.attacked === 0 ? NaN : set.attackMs / set.attacked },
    };
    if (m > 0) {
      Object.assign(row, await scoreDefenses(defense, set, baselines, spec, resolved, `defend ${stage}`));
    }
    rows.push(row);
  }
  return {
    benign,
    rows,
    timing: measureTiming(defense, clips, resolved.timingClips),
    profile: profileSummary(defense),
    baselines: baselines.map((b) => ({ name: b.name, domain: b.domain, description: b.description })),
  };
}

/** NIP's verdict against its two controls, with the image report's rule (>= 2 pp above both). */
export function nipVerdict(row: SpeakerAttackRow): string {
  // The image report's verdict reads only these three fields of a row.
  const asImageRow = {
    adversarial: row.adversarial,
    dsr: { honest: row.nip.dsr },
    controls: { randomNoise: row.nip.randomNoise, randomCandidate: row.nip.randomCandidate },
  } as AttackRow;
  return verdict(asImageRow);
}

/** Renders the report as Markdown. */
export function renderSpeakerMarkdown(
  report: SpeakerEvalReport,
  title = "NIP on speaker recognition (FSDD)",
): string {
  const names = report.baselines.map((b) => b.name);
  const { benign, timing, profile } = report;
  const perturbation = (row: SpeakerAttackRow) =>
    row.domain === "waveform"
      ? `SNR ${num(row.perturbation.snrDb, 1)} dB, L_inf ${num(row.perturbation.linfInt16, 0)} steps`
      : `L_inf ${num(row.perturbation.featureLinf, 2)} ln-units`;
  const lines = [
    `## ${title}`,
    "",
    `NIP profile: layer \`${profile.layer}\`, ${profile.candidates} candidates (FSDD calibration takes), key ` +
    `\`${profile.keyMode}\`, scale \`${profile.scaleRule}\` with strength ${profile.strength}. Honest protocol: ` +
    "no true label, no benign twin, candidates matched by key only.",
    "",
    `Benign validation clips: ${benign.clips}; accuracy ${pct(benign.accuracy)} bare.`,
    "",
    `| defense | benign accuracy after defense | ms per clip |`,
    `|---|---|---|`,
    `| none | ${pct(benign.accuracy)} | ${num(benign.msPerClip.bare, 2)} |`,
    ...["NIP", ...names].map((name) =>
      `| ${name} | ${pct(benign.afterDefense[name])} | ${num(benign.msPerClip[name], 2)} |`
    ),
    "",
    "### DSR per attack",
    "",
    "DSR = adversarial examples classified correctly after defense / adversarial examples. Spectrogram " +
    "budgets are L_inf in dB of mel power on the log-mel map; waveform budgets are L_inf in 16-bit sample " +
    "steps (PGD through the tfjs twin of the front end; success judged through meyda). The random-noise " +
    "control adds Gaussian noise of the same feature-space L2 norm as NIP's change; the random-candidate " +
    "control uses a random candidate instead of the matched one.",
    "",
    `| domain | attack | budget | ASR | perturbation | **NIP** | random-noise ctrl | random-candidate ctrl | ` +
    `${names.join(" | ")} | resynthesis only | NIP verdict |`,
    `|---|---|---|---|---|---|---|---|${names.map(() => "---|").join("")}---|---|`,
  ];
  for (const row of report.rows) {
    lines.push(
      `| ${row.domain} | ${row.attack} | ${row.budget} | ${
        pct(row.asr)
      } (${row.adversarial}/${row.attacked}) | ` +
        `${perturbation(row)} | **${pct(row.nip.dsr)}** | ${pct(row.nip.randomNoise)} | ` +
        `${pct(row.nip.randomCandidate)} | ${names.map((n) => pct(row.baselines[n]?.dsr)).join(" | ")} | ` +
        `${pct(row.resynthesisOnly)} | ${nipVerdict(row)} |`,
    );
  }
  lines.push(
    "",
    "### Each defense beside its own random-noise control",
    "",
    "Cell: DSR / random-noise control at the same feature-space L2 change (mean L2 change in ln-units).",
    "",
    `| domain | attack | budget | NIP | ${names.join(" | ")} |`,
    `|---|---|---|---|${names.map(() => "---|").join("")}`,
  );
  const cell = (score: DefenseScore | undefined) =>
    score ? `${pct(score.dsr)} / ${pct(score.randomNoise)} (${num(score.changeL2, 1)})` : "–";
  for (const row of report.rows) {
    lines.push(
      `| ${row.domain} | ${row.attack} | ${row.budget} | ${
        cell(row.adversarial > 0 ? row.nip : undefined)
      } | ` +
        `${names.map((n) => cell(row.baselines[n])).join(" | ")} |`,
    );
  }
  lines.push(
    "",
    "### Audio path, ms per clip (one clip at a time, median)",
    "",
    `| step | ms |`,
    `|---|---|`,
    `| features (meyda, 1 s) | ${num(timing.featurize, 2)} |`,
    `| bare inference | ${num(timing.bare, 2)} |`,
    `| NIP defense (features -> defended features + label) | ${num(timing.nip, 2)} |`,
    `| resynthesis + WAV encode | ${num(timing.resynthesize, 2)} |`,
    `| WAV -> label, undefended | ${num(timing.wavToLabel, 2)} |`,
    `| WAV -> defended WAV | ${num(timing.wavToDefendedWav, 2)} |`,
    "",
    `Baselines: ${report.baselines.map((b) => `${b.name} = ${b.description} (${b.domain})`).join("; ")}.`,
  );
  return lines.join("\n") + "\n";
}

/**
 * Loads the speaker model and profile, evaluates on `n` FSDD validation clips, writes
 * `<out>/eval-speaker.json` and `<out>/eval-speaker.md`, frees every tensor it made, and returns the
 * Markdown.
 */
export async function runSpeakerEvaluation(options: SpeakerEvalOptions = {}): Promise<string> {
  const modelDir = options.modelDir ?? SPEAKER_MODEL_DIR;
  const dataDir = options.dataDir ?? FSDD_DIR;
  const out = options.out ?? "out/eval-speaker";
  const n = options.n ?? 120;
  const progress = options.onProgress === undefined && options.progress !== false ? createProgress() : null;
  const onProgress = options.onProgress ??
    ((stage: string, done: number, total: number) => progress?.update(stage, done, total));
  const pipeline: Pipeline = await loadSpeakerPipeline({
    modelDir,
    profileDir: options.profileDir,
    backend: options.backend,
    strength: options.strength,
  });
  const started = performance.now();
  try {
    const entries = spreadEntries(listFsdd(dataDir, "validation"), n);
    if (entries.length === 0) throw new RangeError(`${dataDir}: no FSDD validation recordings (takes 5-14)`);
    const clips = await loadSpeakerClips(entries, (d, t) => onProgress("features (validation)", d, t));
    const report = await evaluateSpeaker(pipeline.defense, clips, { ...options, onProgress });
    progress?.stop();
    const seconds = (performance.now() - started) / 1000;
    const markdown = renderSpeakerMarkdown(report) +
      `\nModel \`${modelDir}\` (${pipeline.modelHash.slice(0, 12)}), FSDD validation takes 5-14, ` +
      `${clips.length} clips (${FSDD_SPEAKERS.length} speakers), seed ${options.seed ?? 1}, backend ` +
      `${tf.getBackend()}, ${seconds.toFixed(1)} s.\n`;
    await Deno.mkdir(out, { recursive: true });
    const meta = {
      modelDir,
      modelHash: pipeline.modelHash,
      dataDir,
      clips: clips.length,
      seed: options.seed ?? 1,
      backend: tf.getBackend(),
      seconds,
      attacks: options.attacks ?? DEFAULT_SPEAKER_ATTACKS,
      strength: pipeline.defense.strength,
    };
    await Deno.writeTextFile(
      join(out, "eval-speaker.json"),
      JSON.stringify({ meta, report }, null, 2) + "\n",
    );
    await Deno.writeTextFile(join(out, "eval-speaker.md"), markdown);
    return markdown;
  } finally {
    progress?.stop();
    pipeline.defense.dispose();
    disposeSplitModel(pipeline.split);
    disposeFeatureTwin();
  }
}

async function main(): Promise<void> {
  const flags = parseFlags({
    model: { type: "string", default: SPEAKER_MODEL_DIR },
    profile: { type: "string" },
    data: { type: "string", default: FSDD_DIR },
    n: { type: "string", default: "120" },
    attacks: { type: "string" },
    baselines: { type: "string" },
    out: { type: "string", default: "out/eval-speaker" },
    backend: { type: "string", default: "wasm" },
    seed: { type: "string", default: "1" },
    strength: { type: "string" },
  });
  const markdown = await runSpeakerEvaluation({
    modelDir: flags.model,
    profileDir: flags.profile,
    dataDir: flags.data,
    n: numberFlag("n", flags.n, 1),
    attacks: flags.attacks === undefined
      ? undefined
      : listFlag("attacks", flags.attacks).map(parseSpeakerAttack),
    baselines: flags.baselines === undefined ? undefined : listFlag("baselines", flags.baselines),
    out: flags.out,
    backend: choiceFlag("backend", flags.backend, BACKEND_NAMES),
    seed: numberFlag("seed", flags.seed),
    strength: flags.strength === undefined ? undefined : numberFlag("strength", flags.strength, 0),
  });
  console.log(markdown);
  console.log(`written: ${join(flags.out, "eval-speaker.json")}, ${join(flags.out, "eval-speaker.md")}`);
}

if (import.meta.main) await runMain(main);
