import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import {
  createDenoiser,
  defaultDenoiserSpec,
  denoiserFromWeights,
  type DenoiserSpec,
  denoiserWeightCount,
  flattenWeights,
} from "../src/models/denoiser.ts";
import { mulberry32 } from "../src/random.ts";

await initBackend("wasm");

const SPECS: DenoiserSpec[] = [
  defaultDenoiserSpec([28, 28, 1]),
  { inputShape: [8, 6, 3], filters: 4, layers: 2 },
  { inputShape: [5, 5, 2], filters: 3, layers: 4 },
];

/** Seeded weights in [-0.5, 0.5), so that no layer is zero. */
function randomWeights(count: number, seed: number): Float32Array {
  const random = mulberry32(seed);
  return Float32Array.from({ length: count }, () => random() - 0.5);
}

function randomInput(shape: [number, number, number], n: number, seed: number): tf.Tensor4D {
  const random = mulberry32(seed);
  const size = n * shape[0] * shape[1] * shape[2];
  return tf.tensor4d(Float32Array.from({ length: size }, () => random()), [n, ...shape]);
}

Deno.test("denoiserWeightCount is the model's parameter count and the flat weights' length", () => {
  const before = tf.memory().numTensors;
  for (const spec of SPECS) {
    const model = createDenoiser(spec, 2);
    try {
      assert.equal(model.countParams(), denoiserWeightCount(spec), JSON.stringify(spec));
      assert.equal(flattenWeights(model).length, denoiserWeightCount(spec));
      assert.equal(model.layers.filter((l) => l.getClassName() === "Conv2D").length, spec.layers);
      assert.deepEqual(model.outputs[0].shape, [null, ...spec.inputShape]);
    } finally {
      model.dispose();
    }
  }
  // 16 channels: (9*1*16 + 16) + 3 * (9*16*16 + 16) + (9*16*1 + 1).
  assert.equal(denoiserWeightCount(defaultDenoiserSpec([28, 28, 1])), 160 + 3 * 2320 + 145);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("flattenWeights and denoiserFromWeights round trip: same weights, identical outputs", () => {
  const before = tf.memory().numTensors;
  for (const [i, spec] of SPECS.entries()) {
    const weights = randomWeights(denoiserWeightCount(spec), 10 + i);
    const a = denoiserFromWeights(spec, weights);
    const b = denoiserFromWeights(spec, flattenWeights(a));
    const x = randomInput(spec.inputShape, 3, 20 + i);
    try {
      assert.deepEqual(flattenWeights(a), weights);
      const outA = tf.tidy(() => a.predict(x) as tf.Tensor);
      const outB = tf.tidy(() => b.predict(x) as tf.Tensor);
      assert.deepEqual(outA.dataSync(), outB.dataSync());
      // With non-zero weights the denoiser is not the identity, so the comparison means something.
      const change = tf.tidy(() => tf.max(tf.abs(tf.sub(outA, x))).dataSync()[0]);
      assert.ok(change > 1e-3, `output equals input (max change ${change})`);
      tf.dispose([outA, outB]);
    } finally {
      tf.dispose([x]);
      a.dispose();
      b.dispose();
    }
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("a fresh denoiser is the identity (its last layer starts at zero); seeds change the hidden layers", () => {
  const before = tf.memory().numTensors;
  const spec = defaultDenoiserSpec([28, 28, 1]);
  const a = createDenoiser(spec, 1);
  const b = createDenoiser(spec, 2);
  const again = createDenoiser(spec, 1);
  const x = randomInput(spec.inputShape, 4, 7);
  try {
    for (const model of [a, b]) {
      const out = tf.tidy(() => model.predict(x) as tf.Tensor);
      assert.deepEqual(out.dataSync(), x.dataSync());
      out.dispose();
    }
    const last = denoiserWeightCount(spec) - (9 * spec.filters + 1);
    assert.ok(flattenWeights(a).subarray(last).every((w) => w === 0));
    assert.notDeepEqual(flattenWeights(a).subarray(0, last), flattenWeights(b).subarray(0, last));
    assert.deepEqual(flattenWeights(a), flattenWeights(again));
  } finally {
    x.dispose();
    for (const model of [a, b, again]) model.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("a bad architecture or a wrong number of weights is refused with a message", () => {
  const before = tf.memory().numTensors;
  assert.throws(
    () => createDenoiser({ inputShape: [28, 28, 1], filters: 16, layers: 1 }),
    /layers = 1 must be an integer >= 2/,
  );
  assert.throws(
    () => createDenoiser({ inputShape: [28, 28, 1], filters: 16, layers: 2.5 }),
    /layers = 2.5 must be an integer >= 2/,
  );
  assert.throws(
    () => createDenoiser({ inputShape: [28, 28, 1], filters: 0, layers: 5 }),
    /filters = 0 must be a positive integer/,
  );
  const spec = defaultDenoiserSpec([28, 28, 1]);
  assert.throws(
    () => denoiserFromWeights(spec, new Float32Array(denoiserWeightCount(spec) - 1)),
    /7264 weights stored, the architecture .* has 7265/,
  );
  assert.equal(tf.memory().numTensors, before);
});
