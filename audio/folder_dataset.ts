/**
 * Folder-per-speaker data sets, so users can train the speaker model on their own recordings or on
 * VCTK. Layouts recognised under a root folder:
 * - VCTK 0.80: `wav48/pNNN/*.wav`
 * - VCTK 0.92: `wav48_silence_trimmed/pNNN/*.flac` (FLAC decoded with `@wasm-audio-decoders/flac`;
 *   only `_mic1` files when both microphones are present)
 * - generic: `SPEAKER/*.wav|*.flac`
 * Audio is mixed to mono and resampled to the model's rate, then featurized like FSDD.
 *
 * @module
 */
import { FLACDecoder } from "@wasm-audio-decoders/flac";
import { MODEL_SAMPLE_RATE } from "./config.ts";
import { AudioInputError } from "./errors.ts";
import { type LabelledFeatures, loadLabelledFeatures } from "./fsdd.ts";
import { resample } from "./resample.ts";
import { type DecodedAudio, decodeWav } from "./wav.ts";

/** One recording of a folder data set. */
export interface SpeakerItem {
  path: string;
  speaker: string;
  /** Index of the speaker in the listing's `speakers`. */
  label: number;
}

/** What {@link listSpeakerFolder} found. */
export interface SpeakerFolderListing {
  layout: "vctk-0.80" | "vctk-0.92" | "generic";
  /** Speaker names (folder names), sorted: the label order. */
  speakers: string[];
  items: SpeakerItem[];
}

const AUDIO_FILE = /\.(wav|flac)$/i;

function subfolders(dir: string): string[] {
  return [...Deno.readDirSync(dir)].filter((e) => e.isDirectory).map((e) => e.name).sort();
}

function audioFiles(dir: string): string[] {
  let names = [...Deno.readDirSync(dir)].filter((e) => e.isFile && AUDIO_FILE.test(e.name)).map((e) =>
    e.name
  );
  if (names.some((n) => /_mic1\.flac$/i.test(n))) names = names.filter((n) => !/_mic2\.flac$/i.test(n));
  return names.sort();
}

/** Lists a folder-per-speaker data set (see the module doc for the layouts). */
export function listSpeakerFolder(root: string): SpeakerFolderListing {
  const top = subfolders(root);
  const layout = top.includes("wav48_silence_trimmed")
    ? "vctk-0.92"
    : top.includes("wav48")
    ? "vctk-0.80"
    : "generic";
  const base = layout === "vctk-0.92"
    ? `${root}/wav48_silence_trimmed`
    : layout === "vctk-0.80"
    ? `${root}/wav48`
    : root;
  const speakers: string[] = [];
  const items: SpeakerItem[] = [];
  for (const speaker of subfolders(base)) {
    const files = audioFiles(`${base}/${speaker}`);
    if (files.length === 0) continue;
    const label = speakers.push(speaker) - 1;
    for (const name of files) items.push({ path: `${base}/${speaker}/${name}`, speaker, label });
  }
  if (speakers.length < 2) {
    throw new Error(
      `${base}: found ${speakers.length} speaker folder(s) with .wav/.flac files; need at least 2`,
    );
  }
  return { layout, speakers, items };
}

/** Options of {@link splitSpeakerItems}. */
export interface SplitOptions {
  /** Fraction of each speaker's files (the last ones in name order) held out for validation (default 0.15). */
  validationFraction?: number;
  /** Use at most this many files per speaker (the first in name order). */
  maxPerSpeaker?: number;
}

/** Splits items per speaker, deterministically, so every speaker is in both splits. */
export function splitSpeakerItems(items: SpeakerItem[], options: SplitOptions = {}) {
  const fraction = options.validationFraction ?? 0.15;
  const bySpeaker = new Map<number, SpeakerItem[]>();
  for (const item of items) bySpeaker.set(item.label, [...(bySpeaker.get(item.label) ?? []), item]);
  const train: SpeakerItem[] = [];
  const validation: SpeakerItem[] = [];
  for (const list of bySpeaker.values()) {
    const used = list.slice(0, options.maxPerSpeaker ?? list.length);
    const held = Math.max(1, Math.round(used.length * fraction));
    train.push(...used.slice(0, used.length - held));
    validation.push(...used.slice(used.length - held));
  }
  return { train, validation };
}

let flacDecoder: FLACDecoder | null = null;

/** Decodes a FLAC file to mono at `targetSampleRate` (default the model's rate). */
export async function decodeFlac(
  bytes: Uint8Array,
  targetSampleRate = MODEL_SAMPLE_RATE,
): Promise<DecodedAudio> {
  if (bytes.length < 4 || String.fromCharCode(...bytes.subarray(0, 4)) !== "fLaC") {
    throw new AudioInputError("not-flac", `not a FLAC file: the first 4 bytes are not "fLaC"`);
  }
  if (flacDecoder === null) {
    flacDecoder = new FLACDecoder();
    await flacDecoder.ready;
  } else {
    await flacDecoder.reset();
  }
  const decoded = await flacDecoder.decodeFile(bytes);
  if (decoded.samplesDecoded === 0 || decoded.channelData.length === 0) {
    const why = decoded.errors.map((e: { message: string }) => e.message).join("; ");
    throw new AudioInputError("empty-data", `FLAC file decoded to no samples${why ? `: ${why}` : ""}`);
  }
  const mono = new Float32Array(decoded.samplesDecoded);
  for (const channel of decoded.channelData) {
    for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / decoded.channelData.length;
  }
  return {
    samples: decoded.sampleRate === targetSampleRate
      ? mono
      : resample(mono, decoded.sampleRate, targetSampleRate),
    sampleRate: targetSampleRate,
    source: {
      sampleRate: decoded.sampleRate,
      channels: decoded.channelData.length,
      bitDepth: decoded.bitDepth,
      format: 1,
      durationSeconds: decoded.samplesDecoded / decoded.sampleRate,
    },
  };
}

/** Decodes a .wav or .flac file to mono at the model's rate. */
export async function decodeAudioFile(path: string): Promise<DecodedAudio> {
  const bytes = await Deno.readFile(path);
  return /\.flac$/i.test(path) ? await decodeFlac(bytes) : decodeWav(bytes);
}

/** Decodes and featurizes items; `onProgress(done, total)` is called as files finish. */
export function loadSpeakerFolderFeatures(
  items: SpeakerItem[],
  onProgress?: (done: number, total: number) => void,
): Promise<LabelledFeatures> {
  return loadLabelledFeatures(items, decodeAudioFile, onProgress);
}
