/**
 * The body of a compute worker (`worker_engine.ts`): loads one model and its defense pipeline with its own
 * tfjs, and answers predict, defend and certify calls with plain arrays, so that the server's event loop
 * only moves bytes. Posts `{ ready }` with what the server needs to know of the model once loaded and
 * warmed up, or `{ failed }` with the loader's error; every reply carries the worker's tensor count.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { loadPipeline } from "../pipeline.ts";
import type { ServingEngine } from "./engine.ts";
import { servingEngineOf } from "./load_engine.ts";
import type { ComputeCall, ComputeReply, EngineInfo, WorkerInit } from "./worker_engine.ts";

/** The worker global as used here (the project's compiler options type `self` as a window). */
const scope = self as unknown as {
  onmessage: (event: MessageEvent<WorkerInit | ComputeCall>) => void;
  postMessage(message: ComputeReply): void;
};

const errorOf = (error: unknown) => ({ name: (error as Error).name, message: (error as Error).message });
const memory = () => {
  const { numTensors, numBytes } = tf.memory();
  return { numTensors, numBytes };
};

let loaded: ServingEngine | undefined;

async function answer(engine: ServingEngine, call: ComputeCall): Promise<unknown> {
  switch (call.call) {
    case "predict":
      return await engine.predict(call.rows, call.n);
    case "defend":
      return await engine.defend(call.rows, call.n, call.verdictAfter, call.signals, call.transforms);
    case "certify":
      return await engine.certify(call.rows, call.n, call.request);
  }
}

async function load(init: WorkerInit): Promise<void> {
  try {
    const engine = loaded = servingEngineOf(await loadPipeline(init.pipeline));
    await engine.warmUp();
    const info: EngineInfo = {
      name: engine.name,
      inputShape: engine.inputShape,
      inputRange: engine.inputRange,
      numClasses: engine.numClasses,
      certifierSettings: engine.certifierSettings,
      answers: engine.answers,
      detectors: engine.detectors,
      policy: engine.policy,
      needsSignals: engine.needsSignals,
      description: engine.describe(),
    };
    scope.postMessage({ ready: info, memory: memory() });
  } catch (error) {
    scope.postMessage({ failed: errorOf(error), memory: memory() });
  }
}

scope.onmessage = async (event) => {
  const message = event.data;
  if ("pipeline" in message) return await load(message);
  try {
    const result = await answer(loaded!, message);
    scope.postMessage({ id: message.id, result, memory: memory() });
  } catch (error) {
    scope.postMessage({ id: message.id, error: errorOf(error), memory: memory() });
  }
};
