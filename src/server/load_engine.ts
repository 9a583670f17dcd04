/**
 * Loading a served model: the pipeline that `loadPipeline`'s options name, computing in a worker of its own
 * (`worker_engine.ts`, the default) or in this thread, with the audio front end when the model reads its
 * features.
 *
 * @module
 */
import { audioFrontEnd } from "../../audio/baselines/index.ts";
import { loadPipeline, type Pipeline, type PipelineOptions } from "../pipeline.ts";
import { type Engine, ServingEngine } from "./engine.ts";
import { WorkerEngine } from "./worker_engine.ts";

/** A loaded pipeline served in this thread; an audio model gets the audio front end for its raw-signal stages. */
export function servingEngineOf(pipeline: Pipeline): ServingEngine {
  return new ServingEngine(pipeline, pipeline.modality === "audio" ? audioFrontEnd : undefined);
}

/** Loads the pipeline `options` name, computing in a worker of its own when `computeWorker`. */
export async function loadEngine(options: PipelineOptions, computeWorker: boolean): Promise<Engine> {
  if (computeWorker) return await WorkerEngine.start(options);
  return servingEngineOf(await loadPipeline(options));
}
