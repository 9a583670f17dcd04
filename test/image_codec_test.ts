import assert from "node:assert/strict";
import {
  decodeImage,
  detectImageFormat,
  encodeJpeg,
  encodePng,
  ImageDecodeError,
  ImageTooLargeError,
  type RawImage,
} from "../src/image/codec.ts";
import { convertChannels, imageToInput, inputToImage, resizeBilinear } from "../src/image/resize.ts";
import { loadFashionMnist } from "../src/data/fashion_mnist.ts";

const fashion = await loadFashionMnist();
const PIXELS = 28 * 28;

function fashionImage(index: number): RawImage {
  const data = Uint8Array.from(
    fashion.images.subarray(index * PIXELS, (index + 1) * PIXELS),
    (v) => Math.round(v * 255),
  );
  return { width: 28, height: 28, channels: 1, data };
}

Deno.test("PNG round trip of a real Fashion-MNIST image is exact, gray and RGB", () => {
  const image = fashionImage(3);
  const bytes = encodePng(image);
  assert.equal(detectImageFormat(bytes), "png");
  const decoded = decodeImage(bytes);
  assert.equal(decoded.width, 28);
  assert.equal(decoded.height, 28);
  assert.deepEqual(convertChannels(decoded, 1).data, image.data);
  const rgb = convertChannels(image, 3);
  const back = decodeImage(encodePng(rgb));
  assert.deepEqual(convertChannels(back, 3).data, rgb.data);
});

Deno.test("JPEG round trip stays close to the original", () => {
  const image = fashionImage(7);
  const bytes = encodeJpeg(image, 95);
  assert.equal(detectImageFormat(bytes), "jpeg");
  const decoded = convertChannels(decodeImage(bytes, "jpeg"), 1);
  let err = 0;
  for (let i = 0; i < PIXELS; i++) err += Math.abs(decoded.data[i] - image.data[i]);
  assert.ok(err / PIXELS < 6, `mean absolute error ${err / PIXELS}`);
});

Deno.test("imageToInput maps [0,255] onto the range and resizes; inputToImage inverts", () => {
  const image = fashionImage(11);
  const row = imageToInput(image, [28, 28, 1], [0, 1]);
  for (let i = 0; i < PIXELS; i++) assert.ok(Math.abs(row[i] - fashion.images[11 * PIXELS + i]) < 1e-6);
  assert.deepEqual(inputToImage(row, [28, 28, 1], [0, 1]).data, image.data);
  const big = { width: 56, height: 56, channels: 1 as const, data: new Uint8Array(56 * 56) };
  for (let y = 0; y < 56; y++) {
    for (let x = 0; x < 56; x++) big.data[y * 56 + x] = image.data[(y >> 1) * 28 + (x >> 1)];
  }
  const down = imageToInput(big, [28, 28, 1], [-1, 1]);
  assert.equal(down.length, PIXELS);
  assert.ok(Math.min(...down) >= -1 && Math.max(...down) <= 1);
  // A 2x nearest upscale brought back down with half-pixel bilinear gives the original pixels.
  let err = 0;
  for (let i = 0; i < PIXELS; i++) err += Math.abs((down[i] + 1) / 2 * 255 - image.data[i]);
  assert.ok(err / PIXELS < 1e-3, `mean error ${err / PIXELS}`);
});

Deno.test("bilinear resize of a constant image is constant; RGB to gray uses luma", () => {
  const flat = { width: 5, height: 3, channels: 3 as const, data: new Uint8Array(45).fill(200) };
  const out = resizeBilinear(flat, 9, 7);
  assert.ok(out.every((v) => Math.abs(v - 200) < 1e-4));
  const red = { width: 1, height: 1, channels: 3 as const, data: Uint8Array.from([255, 0, 0]) };
  assert.equal(convertChannels(red, 1).data[0], Math.round(0.299 * 255));
});

Deno.test("undecodable, mislabelled and oversized images raise named errors", () => {
  assert.throws(() => decodeImage(new TextEncoder().encode("hello world")), ImageDecodeError);
  assert.throws(() => decodeImage(new Uint8Array()), /not a PNG or JPEG/);
  const png = encodePng(fashionImage(1));
  assert.throws(() => decodeImage(png.subarray(0, 40)), ImageDecodeError);
  assert.throws(() => decodeImage(png, "jpeg"), /declared as jpeg but its bytes are png/);
  const jpegBytes = encodeJpeg(fashionImage(1));
  assert.throws(() => decodeImage(jpegBytes.subarray(0, 30)), ImageDecodeError);
  // A PNG whose header claims 100000 x 100000 pixels is refused before decoding.
  const huge = png.slice();
  const view = new DataView(huge.buffer);
  view.setUint32(16, 100000);
  view.setUint32(20, 100000);
  assert.throws(() => decodeImage(huge, undefined, 1_000_000), ImageTooLargeError);
  assert.throws(
    () =>
      decodeImage(
        encodeJpeg({ width: 64, height: 64, channels: 1, data: new Uint8Array(4096) }),
        undefined,
        1000,
      ),
    ImageTooLargeError,
  );
});
