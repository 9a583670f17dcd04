import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { cropFlip, cropFlipAugmentation } from "../src/models/augment.ts";

function ramp(count: number, side: number, channels: number): Float32Array {
  return Float32Array.from({ length: count * side * side * channels }, (_, i) => i + 1);
}

Deno.test("cropFlip: pad 0 without flip is the identity; the same seed repeats, another differs", () => {
  const images = ramp(4, 6, 2);
  assert.deepEqual(cropFlip(images, [4, 6, 6, 2], 9, { pad: 0 }), images);
  const a = cropFlip(images, [4, 6, 6, 2], 9, { pad: 2, flip: true });
  assert.deepEqual(cropFlip(images, [4, 6, 6, 2], 9, { pad: 2, flip: true }), a);
  assert.notDeepEqual(cropFlip(images, [4, 6, 6, 2], 10, { pad: 2, flip: true }), a);
});

Deno.test("cropFlip: every output pixel is zero or the input pixel at one shift (and mirror) per image", () => {
  const side = 5;
  const images = ramp(8, side, 1);
  const out = cropFlip(images, [8, side, side, 1], 3, { pad: 2, flip: true });
  for (let n = 0; n < 8; n++) {
    const found = [];
    for (const mirror of [false, true]) {
      for (let dy = -2; dy <= 2; dy++) {
        for (let dx = -2; dx <= 2; dx++) {
          let matches = true;
          for (let y = 0; y < side && matches; y++) {
            for (let x = 0; x < side && matches; x++) {
              const sy = y + dy;
              const sx0 = x + dx;
              const inside = sy >= 0 && sy < side && sx0 >= 0 && sx0 < side;
              const sx = mirror ? side - 1 - sx0 : sx0;
              const expected = inside ? images[n * side * side + sy * side + sx] : 0;
              matches = out[n * side * side + y * side + x] === expected;
            }
          }
          if (matches) found.push({ mirror, dy, dx });
        }
      }
    }
    assert.ok(found.length >= 1, `image ${n} is not a shifted copy`);
  }
});

Deno.test("cropFlipAugmentation: a new tensor of the same shape, input untouched, nothing leaked", () => {
  const x = tf.tensor4d(ramp(2, 4, 3), [2, 4, 4, 3]);
  const before = tf.memory().numTensors;
  const augmented = cropFlipAugmentation({ pad: 1, flip: true })(x, 11);
  assert.deepEqual(augmented.shape, x.shape);
  assert.deepEqual(x.dataSync(), ramp(2, 4, 3));
  augmented.dispose();
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
});
