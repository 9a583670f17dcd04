/**
 * Every defense stage by name, and how a list of names becomes stages for a loaded model. The CLI, the
 * harness and the server go through here and name no stage themselves.
 *
 * @module
 */
import { AUDIO_BASELINES } from "../../audio/baselines/index.ts";
import type { NipProfile } from "../nip/profile.ts";
import type { SplitModel } from "../nip/types.ts";
import { IMAGE_BASELINES } from "./image/mod.ts";
import { DETECTION, detectionMembers, detectionStage } from "./detection.ts";
import { DETECTORS } from "./detectors/mod.ts";
import { NIP } from "./nip.ts";
import { DefensePipeline } from "./pipeline.ts";
import { SMOOTHING, SMOOTHING_FACTORY } from "./smoothing.ts";
import type { Policy } from "./policy.ts";
import type { DefenseStage, StageFactory, StageModality, StageSettings } from "./stage.ts";

/** The combined detection: the members stored in the profile, each with its calibration, as one stage. */
const DETECTION_FACTORY: StageFactory<NipProfile> = {
  name: DETECTION,
  summary: "detection: the calibrated detectors combined into one conformal p-value",
  modalities: ["image", "audio"],
  needsProfile: true,
  create({ split, profile, overrides }) {
    const states = profile?.stages;
    if (!states?.[DETECTION]) {
      throw new RangeError(
        `${DETECTION}: the profile has no detector calibration; run \`deno task calibrate:detectors\``,
      );
    }
    const members: DefenseStage[] = [];
    try {
      for (const name of detectionMembers(states[DETECTION])) {
        members.push(stageFactory(name).create({ split, profile, state: states[name], overrides }));
      }
      return detectionStage(members, states);
    } catch (error) {
      members.forEach((m) => m.dispose());
      throw error;
    }
  },
};

/** Names of the detectors, for `calibrate:detectors` and listings. */
export const DETECTOR_NAMES: readonly string[] = DETECTORS.map((d) => d.name);

/** All stage factories, NIP first. */
export const STAGES: readonly StageFactory[] = [
  NIP as StageFactory,
  ...IMAGE_BASELINES,
  ...AUDIO_BASELINES,
  ...DETECTORS,
  DETECTION_FACTORY as StageFactory,
  SMOOTHING_FACTORY,
];

/**
 * Settings that differ by modality where a stage serves both: on the log-mel map, bit-depth reduction
 * keeps 4 bits (Xu et al.'s 1 bit is for MNIST digits and would erase a spectrogram), and smoothing's
 * noise is 2 dB (the map's values span 0-32 dB; the image default 0.25 is for pixels in [0, 1]).
 */
const MODALITY_DEFAULTS: Record<StageModality, Record<string, StageSettings>> = {
  image: {},
  audio: { cbdr: { bits: 4 }, smooth: { sigma: 2 } },
};

/** Stage names for a modality, for listings and usage errors. */
export function stageNames(modality?: StageModality): string[] {
  return STAGES.filter((s) => modality === undefined || s.modalities.includes(modality)).map((s) => s.name);
}

/** The factory called `name`; the error lists the names valid for the modality. */
export function stageFactory(name: string, modality?: StageModality): StageFactory {
  const factory = STAGES.find((s) => s.name === name.toLowerCase());
  if (!factory || (modality && !factory.modalities.includes(modality))) {
    throw new RangeError(
      `unknown defense "${name}"${modality ? ` for ${modality} models` : ""}; expected one of ` +
        stageNames(modality).join(", "),
    );
  }
  return factory;
}

/** What {@link buildStages} needs. */
export interface BuildOptions {
  split: SplitModel;
  /** The model's calibration profile (checked against the model's hash by whoever loaded it). */
  profile?: NipProfile;
  modality: StageModality;
  /** Settings per stage name, e.g. `{ nip: { strength: 0.5 } }`. */
  overrides?: Record<string, StageSettings>;
  /** The policy and alpha the pipelines carry (default `defend`, 0.05). */
  policy?: Policy;
  alpha?: number;
}

/** Builds the named stages in order; a stage that needs a profile refuses to build without one. */
export function buildStages(names: readonly string[], options: BuildOptions): DefenseStage[] {
  const factories = names.map((name) => stageFactory(name, options.modality));
  const built: DefenseStage[] = [];
  try {
    for (const factory of factories) {
      if (factory.needsProfile && !options.profile) {
        throw new RangeError(
          `defense "${factory.name}" needs the model's calibration profile; none was loaded`,
        );
      }
      built.push(factory.create({
        split: options.split,
        profile: options.profile,
        state: options.profile?.stages?.[factory.name],
        overrides: {
          ...MODALITY_DEFAULTS[options.modality][factory.name],
          ...options.overrides?.[factory.name],
        },
      }));
    }
  } catch (error) {
    built.forEach((s) => s.dispose());
    throw error;
  }
  return built;
}

/**
 * Parses a defense list: stages separated by commas are separate defenses, stages joined by `+` run as
 * one pipeline in that order (e.g. `nip,ss,ss+nip`). `none` is the empty pipeline.
 */
export function parseDefenseList(text: string): string[][] {
  return text.split(",").map((s) => s.trim()).filter((s) => s.length > 0).map((item) =>
    item === "none" ? [] : item.split("+").map((s) => s.trim())
  );
}

/** One pipeline per entry of a parsed defense list. */
export function buildPipelines(list: readonly string[][], options: BuildOptions): DefensePipeline[] {
  const pipelines: DefensePipeline[] = [];
  try {
    for (const names of list) {
      const stages = buildStages(names, options);
      try {
        pipelines.push(new DefensePipeline(options.split, stages, options.policy, options.alpha));
      } catch (error) {
        stages.forEach((s) => s.dispose());
        throw error;
      }
    }
  } catch (error) {
    pipelines.forEach((p) => p.dispose());
    throw error;
  }
  return pipelines;
}

/**
 * The stage that certifies for a deployment whose pipeline has none of its own: randomized smoothing with
 * the deployment's settings for it and the profile's denoiser for its sigma, when there is one.
 */
export function certifyingStage(options: Omit<BuildOptions, "policy" | "alpha">): DefenseStage {
  const [stage] = buildStages([SMOOTHING], options);
  return stage;
}

/**
 * Parses stage settings written `stage.setting=value,...` (e.g. `smooth.sigma=0.5,nip.strength=0.3`):
 * numbers where they parse, text otherwise. The error names the item it cannot read.
 */
export function parseStageSettings(text: string): Record<string, Record<string, number | string>> {
  const settings: Record<string, Record<string, number | string>> = {};
  const items = text.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (items.length === 0) throw new RangeError(`expected stage.setting=value, got "${text}"`);
  for (const item of items) {
    const match = /^([a-z0-9-]+)\.([A-Za-z0-9-]+)=(.+)$/.exec(item);
    if (!match) throw new RangeError(`expected stage.setting=value, got "${item}"`);
    const number = Number(match[3]);
    (settings[match[1]] ??= {})[match[2]] = Number.isFinite(number) ? number : match[3];
  }
  return settings;
}
