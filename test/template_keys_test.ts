import assert from "node:assert/strict";
import { initBackend } from "../src/engine/backend.ts";
import { partitionNeurons } from "../src/nip/neurons.ts";
import { neuronTemplate } from "../src/nip/template.ts";
import { knnKeyNeurons, knnKeys, MIN_TEMPLATE_FOR_KNN, paperDelta } from "../src/nip/keys.ts";

await initBackend("wasm");

Deno.test("neuronTemplate is the intersection of the remaining sets", () => {
  const a = partitionNeurons([5, 4, 3, 2, 1, 0], 1, 1); // remaining 1..4
  const b = partitionNeurons([0, 5, 4, 3, 2, 1], 1, 1); // front 1, tail 0, remaining 2..5
  assert.deepEqual([...neuronTemplate([a, b], 6)], [2, 3, 4]);
  for (const n of neuronTemplate([a, b], 6)) {
    assert.ok(a.remaining.includes(n) && b.remaining.includes(n));
  }
});

Deno.test("knnKeyNeurons falls back to every neuron when the template is small", () => {
  const small = Int32Array.from([1, 2, 3]);
  assert.equal(knnKeyNeurons(small, 40).length, 40);
  const large = Int32Array.from({ length: MIN_TEMPLATE_FOR_KNN }, (_, i) => i * 2);
  assert.equal(knnKeyNeurons(large, 40), large);
});

Deno.test("knnKeys restricts to the key neurons and scales rows to unit length", () => {
  const phi = Float32Array.from([3, 100, 4, 0, 7, 0]);
  const keys = knnKeys(phi, 3, Int32Array.from([0, 2]));
  assert.deepEqual(Array.from(keys, (v) => Number(v.toFixed(6))), [0.6, 0.8, 0, 0]);
});

Deno.test("paperDelta is the cosine of 1-based remaining indices against the zero-padded template", () => {
  const partition = {
    front: Int32Array.from([0]),
    tail: Int32Array.from([4]),
    remaining: Int32Array.from([3, 1, 2]),
  };
  const template = Int32Array.from([1, 2]);
  // I = [4, 2, 3], T' = [2, 3, 0]
  const expected = (4 * 2 + 2 * 3) / (Math.sqrt(16 + 4 + 9) * Math.sqrt(4 + 9));
  assert.ok(Math.abs(paperDelta(partition, template) - expected) < 1e-12);
  const reordered = { ...partition, remaining: Int32Array.from([1, 2, 3]) };
  assert.notEqual(paperDelta(reordered, template), paperDelta(partition, template));
});
