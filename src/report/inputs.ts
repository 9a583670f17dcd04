/**
 * The report's inputs: the JSON that `deno task eval` (`eval.json`) and `deno task eval --certify`
 * (`certify.json`) write, recognised by their fields and checked where the report reads them, with a clear
 * error naming the file and the field. Also the optional sensitivity sweep an evaluation may carry.
 *
 * @module
 */
import type { AdaptiveReport } from "../eval/adaptive.ts";
import type { CertificationReport } from "../eval/certification_report.ts";
import type { DetectionReport } from "../eval/detection.ts";
import type { AdaptiveDetectionReport } from "../eval/detection_adaptive.ts";
import type { EvalReport } from "../eval/harness.ts";
import type { SensitivitySweep } from "../eval/sweep.ts";

export type { SensitivityPoint, SensitivitySweep } from "../eval/sweep.ts";

/** The run's settings as `runEvaluation` records them in `meta` (the fields the report reads). */
export interface EvalMeta {
  modelDir?: string;
  modelHash?: string;
  data?: string;
  n?: number;
  seed?: number;
  backend?: string;
  budgets?: string[];
  protocols?: string[];
}

/** An evaluation (`eval.json`). */
export interface EvalInput {
  kind: "eval";
  path: string;
  meta: EvalMeta;
  report?: EvalReport;
  detection?: DetectionReport;
  adaptiveDetection?: AdaptiveDetectionReport;
  adaptive: AdaptiveReport[];
  sweep?: SensitivitySweep[];
}

/** A certification (`certify.json`). */
export interface CertifyInput {
  kind: "certify";
  path: string;
  report: CertificationReport;
}

/** A recognised input. */
export type ReportInput = EvalInput | CertifyInput;

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Checks that `field` of `object` (a dotted path for the message) is an array or an object. */
function expect(path: string, object: Json, field: string, shape: "array" | "object", where = field): void {
  const value = object[field];
  if (shape === "array" ? !Array.isArray(value) : !isObject(value)) {
    throw new TypeError(`${path}: ${where}: expected ${shape === "array" ? "an array" : "an object"}`);
  }
}

function checkEval(path: string, json: Json): EvalInput {
  expect(path, json, "meta", "object");
  if (json.report !== undefined) {
    expect(path, json, "report", "object");
    const report = json.report as Json;
    for (const field of ["defenses", "rows"]) expect(path, report, field, "array", `report.${field}`);
    expect(path, report, "benign", "object", "report.benign");
    expect(path, report.benign as Json, "defenses", "object", "report.benign.defenses");
  }
  if (json.detection !== undefined) {
    expect(path, json, "detection", "object");
    for (const field of ["detectors", "rows", "corruptions"]) {
      expect(path, json.detection as Json, field, "array", `detection.${field}`);
    }
    expect(path, json.detection as Json, "benign", "object", "detection.benign");
  }
  if (json.adaptiveDetection !== undefined) {
    expect(path, json, "adaptiveDetection", "object");
    expect(path, json.adaptiveDetection as Json, "rows", "array", "adaptiveDetection.rows");
  }
  const adaptive = json.adaptive ?? [];
  if (!Array.isArray(adaptive)) throw new TypeError(`${path}: adaptive: expected an array`);
  adaptive.forEach((a, i) => {
    if (!isObject(a)) throw new TypeError(`${path}: adaptive[${i}]: expected an object`);
    expect(path, a, "rows", "array", `adaptive[${i}].rows`);
    expect(path, a, "defense", "object", `adaptive[${i}].defense`);
  });
  if (json.sweep !== undefined) {
    expect(path, json, "sweep", "array");
    (json.sweep as unknown[]).forEach((s, i) => {
      if (!isObject(s) || typeof s.parameter !== "string" || !Array.isArray(s.points)) {
        throw new TypeError(`${path}: sweep[${i}]: expected { parameter: string; points: [...] }`);
      }
    });
  }
  return {
    ...(json as Omit<EvalInput, "kind" | "path">),
    adaptive: adaptive as AdaptiveReport[],
    kind: "eval",
    path,
  };
}

function checkCertify(path: string, json: Json): CertifyInput {
  (json.bySigma as unknown[]).forEach((s, i) => {
    if (!isObject(s) || typeof s.sigma !== "number" || !Array.isArray(s.variants)) {
      throw new TypeError(`${path}: bySigma[${i}]: expected { sigma: number; variants: [...] }`);
    }
    s.variants.forEach((v, j) => {
      if (!isObject(v) || !Array.isArray(v.certified)) {
        throw new TypeError(`${path}: bySigma[${i}].variants[${j}].certified: expected an array`);
      }
    });
  });
  return { kind: "certify", path, report: json as unknown as CertificationReport };
}

const EVAL_FIELDS = ["report", "detection", "adaptiveDetection", "adaptive", "sweep"];

/**
 * Recognises `json` read from `path` by its fields: a certification (`radii`, `bySigma`), an evaluation
 * (`meta` with any of report, detection, adaptiveDetection, adaptive, sweep), or a list of evaluations under
 * `runs`. Throws an error naming the file (and the field) when it is none of them or malformed.
 */
export function recogniseInput(path: string, json: unknown): ReportInput[] {
  if (isObject(json) && Array.isArray(json.radii) && Array.isArray(json.bySigma)) {
    return [checkCertify(path, json)];
  }
  if (isObject(json) && isObject(json.meta) && EVAL_FIELDS.some((f) => f in json)) {
    return [checkEval(path, json)];
  }
  if (isObject(json) && Array.isArray(json.runs) && json.runs.length > 0) {
    return json.runs.flatMap((run, i) => recogniseInput(`${path} (run ${i + 1})`, run));
  }
  throw new TypeError(
    `${path}: neither an evaluation (eval.json: meta with report, detection, adaptive or sweep) nor a ` +
      "certification (certify.json: radii and bySigma)",
  );
}
