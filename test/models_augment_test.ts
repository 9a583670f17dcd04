import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { colorJitter, cropFlip, imageAugmentation } from "../src/models/augment.ts";

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

Deno.test("colorJitter: strength 0 is the identity; each image is an affine map of itself, clipped to [0, 1]", () => {
  const images = ramp(3, 4, 2).map((v) => v / 100);
  colorJitter(images, [3, 4, 4, 2], 5, 0).forEach((v, i) => assert.ok(Math.abs(v - images[i]) < 1e-6));
  const out = colorJitter(images, [3, 4, 4, 2], 5, 0.4);
  assert.deepEqual(colorJitter(images, [3, 4, 4, 2], 5, 0.4), out);
  assert.notDeepEqual(out, images);
  const size = 32;
  for (let n = 0; n < 3; n++) {
    const x = images.subarray(n * size, (n + 1) * size);
    const y = out.subarray(n * size, (n + 1) * size);
    for (const v of y) assert.ok(v >= 0 && v <= 1);
    // Unclipped values lie on one line y = a x + b per image (contrast about the mean, then brightness).
    const inside = [...x.keys()].filter((i) => y[i] > 0 && y[i] < 1);
    const [i, j] = [inside[0], inside[inside.length - 1]];
    const slope = (y[j] - y[i]) / (x[j] - x[i]);
    assert.ok(slope > (1 - 0.4) ** 2 - 1e-6 && slope < (1 + 0.4) ** 2 + 1e-6, `image ${n}: slope ${slope}`);
    for (const k of inside) assert.ok(Math.abs(y[k] - (y[i] + slope * (x[k] - x[i]))) < 1e-5);
  }
});

Deno.test("imageAugmentation: a new tensor of the same shape, input untouched, nothing leaked", () => {
  const x = tf.tensor4d(ramp(2, 4, 3), [2, 4, 4, 3]);
  const before = tf.memory().numTensors;
  const augmented = imageAugmentation({ pad: 1, flip: true, jitter: 0.2 })(x, 11);
  assert.deepEqual(augmented.shape, x.shape);
  assert.deepEqual(x.dataSync(), ramp(2, 4, 3));
  augmented.dispose();
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
});
