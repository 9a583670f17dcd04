import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import type { SplitModel } from "../src/nip/types.ts";
import { mulberry32 } from "../src/random.ts";
import { medianSmoothing, SPATIAL_SMOOTHING } from "../src/stages/image/median_smoothing.ts";
import { assertTransformWithIdentityGradient } from "./stages_fixture.ts";

await initBackend("wasm");

const split = { inputRange: [0, 1], inputShape: [6, 7, 2] } as unknown as SplitModel;

/** scipy's median: offsets -floor(w/2) .. w-1-floor(w/2), edges mirrored, the upper middle value. */
function bruteMedian(image: number[][][], y: number, x: number, ch: number, window: number): number {
  const h = image.length;
  const w = image[0].length;
  const mirror = (i: number, size: number) => (i < 0 ? -i - 1 : i >= size ? 2 * size - i - 1 : i);
  const values: number[] = [];
  for (let dy = -Math.floor(window / 2); dy < window - Math.floor(window / 2); dy++) {
    for (let dx = -Math.floor(window / 2); dx < window - Math.floor(window / 2); dx++) {
      values.push(image[mirror(y + dy, h)][mirror(x + dx, w)][ch]);
    }
  }
  values.sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)];
}

Deno.test("medianSmoothing matches a brute-force median on random images, windows 2 and 3", () => {
  const random = mulberry32(7);
  const [n, h, w, c] = [2, 6, 7, 2];
  const images = Float32Array.from({ length: n * h * w * c }, () => random());
  for (const window of [2, 3]) {
    const out = medianSmoothing(images, [n, h, w, c], window);
    for (let b = 0; b < n; b++) {
      const image = Array.from(
        { length: h },
        (_, y) =>
          Array.from(
            { length: w },
            (_, x) => Array.from({ length: c }, (_, ch) => images[((b * h + y) * w + x) * c + ch]),
          ),
      );
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          for (let ch = 0; ch < c; ch++) {
            assert.equal(out[((b * h + y) * w + x) * c + ch], bruteMedian(image, y, x, ch, window));
          }
        }
      }
    }
  }
});

Deno.test("medianSmoothing reproduces scipy.ndimage.median_filter (mode reflect) for windows 2, 3, 4", () => {
  const image = [
    [17, 12, 10, 5, 6, 0],
    [1, 0, 3, 16, 12, 18],
    [10, 12, 19, 14, 12, 10],
    [11, 18, 5, 16, 13, 0],
    [7, 17, 11, 0, 15, 14],
  ];
  // Printed by scipy 1.17 `median_filter(x, size=s)` for the image above.
  const expected: Record<number, number[][]> = {
    2: [
      [17, 17, 12, 10, 6, 6],
      [17, 12, 10, 10, 12, 12],
      [10, 10, 12, 16, 14, 12],
      [11, 12, 18, 16, 14, 12],
      [11, 17, 17, 11, 15, 14],
    ],
    3: [
      [12, 10, 10, 6, 6, 6],
      [10, 10, 12, 12, 12, 10],
      [10, 10, 14, 13, 13, 12],
      [11, 11, 14, 13, 13, 12],
      [11, 11, 11, 11, 14, 14],
    ],
    4: [
      [12, 10, 10, 10, 10, 12],
      [12, 12, 12, 12, 10, 10],
      [12, 11, 12, 12, 12, 12],
      [11, 10, 11, 13, 13, 14],
      [12, 11, 11, 14, 13, 14],
    ],
  };
  for (const window of [2, 3, 4]) {
    const out = medianSmoothing(Float32Array.from(image.flat()), [1, 5, 6, 1], window);
    assert.deepEqual(Array.from(out), expected[window].flat(), `window ${window}`);
  }
});

Deno.test("ss stage: paper default, settings, overrides refused when invalid", () => {
  const stage = SPATIAL_SMOOTHING.create({ split });
  assert.deepEqual(stage.settings, { window_size: 2 });
  assert.match(stage.description, /window_size=2/);
  assert.equal(stage.role, "transform");
  assert.equal(stage.domain, "input");
  assert.deepEqual(SPATIAL_SMOOTHING.create({ split, overrides: { window_size: "3" } }).settings, {
    window_size: 3,
  });
  for (const bad of [0, 2.5, "wide"]) {
    assert.throws(() => SPATIAL_SMOOTHING.create({ split, overrides: { window_size: bad } }), RangeError);
  }
});

Deno.test("ss stage: transform equals medianSmoothing, BPDA identity gradient, no leaked tensors", () => {
  const random = mulberry32(3);
  const values = Float32Array.from({ length: 3 * 6 * 7 * 2 }, () => random());
  const x = tf.tensor4d(values, [3, 6, 7, 2]);
  const stage = SPATIAL_SMOOTHING.create({ split });
  assertTransformWithIdentityGradient(stage, x, medianSmoothing(values, [3, 6, 7, 2], 2));
  x.dispose();
});
