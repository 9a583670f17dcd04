import assert from "node:assert/strict";
import { concatArrays } from "../src/arrays.ts";

Deno.test("concatArrays joins typed arrays in order into the array the maker gives", () => {
  const joined = concatArrays(
    [Int32Array.of(1, 2), Int32Array.of(), Int32Array.of(3)],
    (n) => new Int32Array(n),
  );
  assert.ok(joined instanceof Int32Array);
  assert.deepEqual(Array.from(joined), [1, 2, 3]);
  assert.equal(concatArrays([], (n) => new Float32Array(n)).length, 0);
});
