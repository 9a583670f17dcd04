import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import { createDenoiser, type DenoiserSpec, flattenWeights } from "../src/models/denoiser.ts";
import {
  denoiserName,
  denoiserNames,
  type DenoiserRecord,
  denoiserRecord,
  loadDenoiser,
  withDenoiser,
} from "../src/smoothing/denoiser_state.ts";

await initBackend("wasm");
const spec: DenoiserSpec = { inputShape: [8, 8, 1], filters: 4, layers: 3 };
const record: DenoiserRecord = {
  sigma: 0.5,
  objective: "mse",
  epochs: 2,
  trainImages: 100,
  seconds: 3.5,
  finalLoss: 0.02,
  initialisedFrom: "none",
};

Deno.test("a denoiser stored in a stage state loads back with the same outputs and its record", () => {
  const model = createDenoiser(spec, 4);
  // Move it away from the identity so the round trip is checked on non-trivial weights.
  model.setWeights(model.getWeights().map((w) => tf.randomNormal(w.shape, 0, 0.1, "float32", 2)));
  const state = withDenoiser(undefined, spec, record, flattenWeights(model));
  assert.deepEqual(denoiserNames(state), ["mse-0.5"]);
  assert.deepEqual(denoiserRecord(state, "mse-0.5"), record);
  const loaded = loadDenoiser(state, denoiserName("mse", 0.5));
  const x = tf.randomUniform([2, 8, 8, 1], 0, 1, "float32", 1);
  const a = model.predict(x) as tf.Tensor;
  const b = loaded.predict(x) as tf.Tensor;
  assert.ok(a.sub(b).abs().max().dataSync()[0] < 1e-7);
  tf.dispose([x, a, b]);
  model.dispose();
  loaded.dispose();
});

Deno.test("storing keeps the others, replaces one of the same name and refuses another architecture", () => {
  const weights = flattenWeights(createDenoiser(spec));
  const one = withDenoiser(undefined, spec, record, weights);
  const two = withDenoiser(
    one,
    spec,
    { ...record, objective: "stability", initialisedFrom: "mse-0.5" },
    weights,
  );
  const again = withDenoiser(two, spec, { ...record, epochs: 5 }, weights);
  assert.deepEqual(denoiserNames(again), ["mse-0.5", "stability-0.5"]);
  assert.equal(denoiserRecord(again, "mse-0.5").epochs, 5);
  assert.equal(denoiserRecord(again, "stability-0.5").initialisedFrom, "mse-0.5");
  assert.throws(
    () =>
      withDenoiser(
        again,
        { ...spec, filters: 8 },
        record,
        flattenWeights(createDenoiser({ ...spec, filters: 8 })),
      ),
    /the profile's denoisers have architecture/,
  );
  assert.throws(() => withDenoiser(undefined, spec, record, new Float32Array(3)), /denoiser weights: 3/);
  assert.throws(
    () => loadDenoiser(again, "mse-0.25"),
    /no denoiser "mse-0.25" in the profile \(it has: mse-0.5/,
  );
  assert.deepEqual(denoiserNames(undefined), []);
});
