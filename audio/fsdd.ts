/**
 * The Free Spoken Digit Dataset (FSDD) for speaker recognition: file names, the six speakers, and the
 * split by take number. Takes 0-4 (FSDD's official test set) are not in the shared copy, so:
 * validation = takes 5-14, calibration (NIP's benign examples, alpha selection) = takes 15-19,
 * training = takes 20-49. Every speaker and digit is in every split; splits share no recording. Detection
 * is calibrated on validation takes 5-9 and evaluated on takes 10-14 ({@link DETECTION_CALIBRATION_TAKES}).
 *
 * @module
 */
import { type DecodedAudio, decodeWav } from "./wav.ts";
import { featurize } from "./features.ts";

/** The six FSDD speakers, in label order. */
export const FSDD_SPEAKERS = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"] as const;

/** A named split of FSDD. */
export type FsddSplit = "train" | "calibration" | "validation";

/**
 * The validation takes a speaker model's detection is calibrated on, [first, end): 5-9. Its detection is
 * then evaluated on the other validation takes (10-14) only, so that calibration and test stay disjoint
 * (NIP's calibration takes 15-19 hold its candidates, which the detectors must not see either).
 */
export const DETECTION_CALIBRATION_TAKES: readonly [number, number] = [5, 10];

/** Whether a take is one of {@link DETECTION_CALIBRATION_TAKES}. */
export function isDetectionCalibrationTake(take: number): boolean {
  return take >= DETECTION_CALIBRATION_TAKES[0] && take < DETECTION_CALIBRATION_TAKES[1];
}

/** Which split a take number belongs to (see the module doc). */
export function fsddSplitOfTake(take: number): FsddSplit {
  if (take < 15) return "validation";
  if (take < 20) return "calibration";
  return "train";
}

/** One FSDD recording, parsed from `{digit}_{speaker}_{take}.wav`. */
export interface FsddEntry {
  path: string;
  digit: number;
  speaker: string;
  take: number;
  /** Index of the speaker in {@link FSDD_SPEAKERS}. */
  label: number;
}

/** Parses an FSDD file name; null when the name does not follow the pattern or names an unknown speaker. */
export function parseFsddName(name: string): Omit<FsddEntry, "path"> | null {
  const match = /^(\d)_([a-z]+)_(\d+)\.wav$/.exec(name);
  if (!match) return null;
  const label = (FSDD_SPEAKERS as readonly string[]).indexOf(match[2]);
  if (label < 0) return null;
  return { digit: Number(match[1]), speaker: match[2], take: Number(match[3]), label };
}

/** Lists the FSDD recordings of `dir` in one split (or all), sorted by file name. */
export function listFsdd(dir: string, split?: FsddSplit): FsddEntry[] {
  const entries: FsddEntry[] = [];
  for (const item of Deno.readDirSync(dir)) {
    const parsed = item.isFile ? parseFsddName(item.name) : null;
    if (parsed && (split === undefined || fsddSplitOfTake(parsed.take) === split)) {
      entries.push({ path: `${dir}/${item.name}`, ...parsed });
    }
  }
  return entries.sort((a, b) => a.path.localeCompare(b.path));
}

/** Features and labels of a list of recordings. */
export interface LabelledFeatures {
  features: Float32Array[];
  labels: Int32Array;
}

/**
 * Decodes (with `decode`, given a file's path) and featurizes labelled recordings, in order;
 * `onProgress(done, total)` is called as files finish.
 */
export async function loadLabelledFeatures(
  items: readonly { path: string; label: number }[],
  decode: (path: string) => Promise<DecodedAudio>,
  onProgress?: (done: number, total: number) => void,
): Promise<LabelledFeatures> {
  const features: Float32Array[] = [];
  for (const [i, item] of items.entries()) {
    features.push(featurize((await decode(item.path)).samples));
    onProgress?.(i + 1, items.length);
  }
  return { features, labels: Int32Array.from(items, (item) => item.label) };
}

/** Decodes and featurizes FSDD entries; `onProgress(done, total)` is called as files finish. */
export function loadFsddFeatures(
  entries: FsddEntry[],
  onProgress?: (done: number, total: number) => void,
): Promise<LabelledFeatures> {
  return loadLabelledFeatures(entries, async (path) => decodeWav(await Deno.readFile(path)), onProgress);
}
