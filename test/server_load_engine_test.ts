import assert from "node:assert/strict";
import { loadPipeline } from "../src/pipeline.ts";
import { ServingEngine } from "../src/server/engine.ts";
import { loadEngine, servingEngineOf } from "../src/server/load_engine.ts";
import { WorkerEngine } from "../src/server/worker_engine.ts";

const IMAGE = { modelDir: "models/fashion-lenet", defenses: "auto" } as const;

Deno.test("loadEngine: in a worker when asked (the default), in this thread otherwise, the same model either way", async () => {
  const inWorker = await loadEngine(IMAGE, true);
  const inThread = await loadEngine(IMAGE, false);
  try {
    assert.ok(inWorker instanceof WorkerEngine);
    assert.ok(inThread instanceof ServingEngine);
    assert.deepEqual(inWorker.describe(), inThread.describe());
  } finally {
    inWorker.dispose();
    inThread.dispose();
  }
});

Deno.test("servingEngineOf gives an audio model the front end its raw-signal stages need", async () => {
  const engine = servingEngineOf(
    await loadPipeline({ modelDir: "models/fsdd-speaker", defenses: ["qtz", "nip"] }),
  );
  try {
    assert.ok(engine.needsSignals);
    const signal = Float32Array.from({ length: 8000 }, (_, i) => 0.3 * Math.sin(i / 5));
    const rows = new Float32Array(engine.exampleSize).fill(-40);
    const defended = await engine.defend(rows, 1, true, [signal]);
    assert.equal(defended.defended.length, engine.exampleSize);
    assert.equal(defended.labelsAfter.length, 1);
  } finally {
    engine.dispose();
  }
});
