/** The sidecar serving a GraphModel (a converted TensorFlow model) split at a graph node, over loopback gRPC. */
import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { loadLayersModel } from "../src/engine/model_io.ts";
import { loadNamedDataset } from "../src/data/named_datasets.ts";
import { samplePart } from "../src/data/splits.ts";
import { toTensor } from "../src/data/dataset.ts";
import { calibrateProfile } from "../src/nip/calibrate.ts";
import { saveProfile } from "../src/profile_io.ts";
import { loadPipeline, loadSplitModel } from "../src/pipeline.ts";
import { defaultConfig } from "../src/server/config.ts";
import { DefenseClient, float32Input, readFloat32 } from "../src/server/client.ts";
import { ServingEngine } from "../src/server/engine.ts";
import { createLogger } from "../src/server/log.ts";
import { startSidecar } from "../src/server/server.ts";
import { convertToGraphModel } from "./graph_fixture.ts";

await initBackend("wasm");

Deno.test("Defend and Predict on a GraphModel agree with the same network as a LayersModel", async () => {
  const dir = await Deno.makeTempDir();
  const graphDir = join(dir, "graph");
  const layers = await loadLayersModel("models/fashion-lenet");
  await convertToGraphModel(layers, graphDir);
  const { dataset, split } = await loadNamedDataset("fashion-mnist");
  const calibration = samplePart(dataset, split, "calibration", 200, { seed: 1 });
  const { split: graphSplit, hash } = await loadSplitModel(graphDir);
  const x = toTensor(calibration);
  const profile = calibrateProfile(graphSplit, { x, labels: calibration.labels }, undefined, {
    modelHash: hash,
    strength: 0.3,
  });
  x.dispose();
  graphSplit.model.dispose();
  await saveProfile(profile, join(dir, "profile"));

  const pipeline = await loadPipeline({ modelDir: graphDir, profileDir: join(dir, "profile") });
  const config = defaultConfig();
  config.bind = "127.0.0.1:0";
  config.metricsBind = "";
  const sidecar = await startSidecar({
    config,
    engines: [new ServingEngine(pipeline)],
    logger: createLogger("error", () => {}),
  });
  const client = new DefenseClient(`127.0.0.1:${sidecar.port}`);
  try {
    const test = samplePart(dataset, split, "test", 4, { seed: 3 });
    const input = float32Input(test.images, [4, 28, 28, 1]);
    const predicted = await client.predict({ input });
    const expected = tf.tidy(() =>
      Array.from(
        (layers.predict(tf.tensor4d(test.images, [4, 28, 28, 1])) as tf.Tensor).argMax(-1).dataSync(),
      )
    );
    assert.deepEqual(predicted.predictions.map((p: { label: number }) => p.label), expected);
    const defended = await client.defend({ input });
    assert.deepEqual(defended.defended.tensor.shape, [4, 28, 28, 1]);
    const values = readFloat32(defended.defended.tensor);
    assert.ok(values.some((v, i) => Math.abs(v - test.images[i]) > 1e-6), "NIP changed the input");
    const { modelInfo } = await client.describe({});
    assert.match(JSON.stringify(modelInfo), /Reshape|flatten/i);
  } finally {
    client.close();
    await sidecar.shutdown();
    layers.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
