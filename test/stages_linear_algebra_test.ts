import assert from "node:assert/strict";
import { mulberry32 } from "../src/random.ts";
import { choleskyInverse, symmetricEigen } from "../src/stages/detectors/linear_algebra.ts";

Deno.test("choleskyInverse of a random SPD matrix times the matrix is the identity; non-PD is refused", () => {
  const size = 60;
  const random = mulberry32(3);
  const b = Float64Array.from({ length: size * size }, () => random() * 2 - 1);
  // A = B B^T + I is symmetric positive definite.
  const a = new Float64Array(size * size);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      let s = i === j ? 1 : 0;
      for (let k = 0; k < size; k++) s += b[i * size + k] * b[j * size + k];
      a[i * size + j] = s;
    }
  }
  const inverse = choleskyInverse(a, size);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      let s = 0;
      for (let k = 0; k < size; k++) s += inverse[i * size + k] * a[k * size + j];
      assert.ok(Math.abs(s - (i === j ? 1 : 0)) < 1e-9, `(A^-1 A)[${i}, ${j}] = ${s}`);
    }
  }
  assert.throws(() => choleskyInverse(Float64Array.from([1, 2, 2, 1]), 2), /not positive definite/);
  assert.throws(() => choleskyInverse(new Float64Array(5), 2), /not a 2x2 matrix/);
});

Deno.test("symmetricEigen: A V = V diag(values), V orthonormal, values descending", () => {
  const size = 30;
  const random = mulberry32(4);
  const a = new Float64Array(size * size);
  for (let i = 0; i < size; i++) {
    for (let j = i; j < size; j++) a[i * size + j] = a[j * size + i] = random() * 2 - 1;
  }
  const { values, vectors } = symmetricEigen(a, size);
  for (let k = 1; k < size; k++) assert.ok(values[k] <= values[k - 1]);
  for (let i = 0; i < size; i++) {
    for (let k = 0; k < size; k++) {
      let av = 0;
      for (let j = 0; j < size; j++) av += a[i * size + j] * vectors[j * size + k];
      assert.ok(Math.abs(av - values[k] * vectors[i * size + k]) < 1e-9, `(A v_${k})_${i}`);
      let dot = 0;
      for (let j = 0; j < size; j++) dot += vectors[j * size + i] * vectors[j * size + k];
      assert.ok(Math.abs(dot - (i === k ? 1 : 0)) < 1e-9, `v_${i} . v_${k}`);
    }
  }
});
