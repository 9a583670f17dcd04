import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import pngjs from "pngjs";
import jpeg from "jpeg-js";
import { readImageFolder } from "../src/data/image_folder.ts";

/** Writes an 8-bit PNG with pngjs: 1 channel = grey, 3 = RGB, 4 = RGBA. */
async function writePng(path: string, width: number, height: number, channels: 1 | 3 | 4, data: number[]) {
  const colorType = { 1: 0, 3: 2, 4: 6 }[channels];
  const png = new pngjs.PNG({
    width,
    height,
    colorType,
    inputColorType: colorType,
    inputHasAlpha: channels === 4,
  });
  png.data = Buffer.from(data);
  await Deno.writeFile(
    path,
    new Uint8Array(pngjs.PNG.sync.write(png, { colorType, inputColorType: colorType })),
  );
}

/** Writes a JPEG of one RGB colour with jpeg-js at quality 100. */
async function writeJpeg(path: string, width: number, height: number, rgb: [number, number, number]) {
  const data = Buffer.alloc(width * height * 4);
  for (let p = 0; p < width * height; p++) data.set([...rgb, 255], p * 4);
  await Deno.writeFile(path, new Uint8Array(jpeg.encode({ width, height, data }, 100).data));
}

function solid(width: number, height: number, pixel: number[]): number[] {
  return Array.from({ length: width * height }, () => pixel).flat();
}

async function withTempDir(body: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "image_folder_test_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Two classes (folders created in reverse name order) of PNG and JPEG files of several sizes and channels. */
async function writeTwoClasses(dir: string) {
  await Deno.mkdir(`${dir}/dog`);
  await Deno.mkdir(`${dir}/cat`);
  await writePng(`${dir}/dog/b.png`, 3, 5, 1, solid(3, 5, [100])); // grey
  await writePng(`${dir}/dog/A.PNG`, 6, 2, 4, solid(6, 2, [10, 20, 30, 0])); // RGBA, fully transparent
  await writeJpeg(`${dir}/dog/c.jpeg`, 16, 16, [200, 40, 90]);
  await writePng(`${dir}/cat/z.png`, 4, 4, 3, solid(4, 4, [250, 0, 5])); // RGB
  await writeJpeg(`${dir}/cat/y.JPG`, 9, 7, [30, 160, 220]);
  await Deno.writeTextFile(`${dir}/cat/notes.txt`, "not an image");
  await Deno.writeTextFile(`${dir}/README.md`, "ignored: not in a class folder");
}

function pixel(images: Float32Array, image: number, shape: number[], y: number, x: number): number[] {
  const [h, w, c] = shape;
  const at = image * h * w * c + (y * w + x) * c;
  return Array.from(images.subarray(at, at + c));
}

function assertClose(actual: number[], expected: number[], tolerance: number, what: string) {
  assert.equal(actual.length, expected.length, what);
  actual.forEach((value, i) =>
    assert.ok(Math.abs(value - expected[i]) <= tolerance, `${what}: ${actual} vs ${expected}`)
  );
}

Deno.test("readImageFolder: sorted class folders, files in name order, RGB conversion, resize and values", async () => {
  await withTempDir(async (dir) => {
    await writeTwoClasses(dir);
    const ds = await readImageFolder(dir, { shape: [8, 8, 3] });
    assert.deepEqual(ds.classNames, ["cat", "dog"]);
    assert.equal(ds.name, dir.slice(dir.lastIndexOf("/") + 1));
    assert.equal(ds.count, 5);
    assert.deepEqual(ds.shape, [8, 8, 3]);
    assert.equal(ds.images.length, 5 * 8 * 8 * 3);
    // cat: y.JPG, z.png; dog: A.PNG, b.png, c.jpeg (code-unit order puts upper case first).
    assert.deepEqual(Array.from(ds.labels), [0, 0, 1, 1, 1]);
    const jpegTolerance = 3 / 255;
    for (const [y, x] of [[0, 0], [3, 5], [7, 7]]) {
      assertClose(
        pixel(ds.images, 0, ds.shape, y, x),
        [30 / 255, 160 / 255, 220 / 255],
        jpegTolerance,
        "y.JPG",
      );
      assertClose(pixel(ds.images, 1, ds.shape, y, x), [250 / 255, 0, 5 / 255], 1e-6, "z.png");
      assertClose(
        pixel(ds.images, 2, ds.shape, y, x),
        [10 / 255, 20 / 255, 30 / 255],
        1e-6,
        "A.PNG alpha dropped",
      );
      assertClose(
        pixel(ds.images, 3, ds.shape, y, x),
        [100 / 255, 100 / 255, 100 / 255],
        1e-6,
        "b.png grey to RGB",
      );
      assertClose(
        pixel(ds.images, 4, ds.shape, y, x),
        [200 / 255, 40 / 255, 90 / 255],
        jpegTolerance,
        "c.jpeg",
      );
    }
    assert.ok(ds.images.every((v) => v >= 0 && v <= 1));
  });
});

Deno.test("readImageFolder: one channel uses BT.601 luma; limit takes the first files of each class", async () => {
  await withTempDir(async (dir) => {
    await writeTwoClasses(dir);
    const ds = await readImageFolder(dir, { shape: [2, 3, 1], limit: 1 });
    assert.equal(ds.count, 2);
    assert.deepEqual(ds.shape, [2, 3, 1]);
    assert.deepEqual(Array.from(ds.labels), [0, 1]);
    const luma = (r: number, g: number, b: number) => Math.round(0.299 * r + 0.587 * g + 0.114 * b) / 255;
    assertClose(
      Array.from(ds.images.subarray(0, 6)),
      new Array(6).fill(luma(30, 160, 220)),
      3 / 255,
      "y.JPG",
    );
    assertClose(Array.from(ds.images.subarray(6, 12)), new Array(6).fill(luma(10, 20, 30)), 1e-6, "A.PNG");
  });
});

Deno.test("readImageFolder: bilinear resize with half-pixel centres, up and down", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/up`);
    await Deno.mkdir(`${dir}/down`);
    // 2x1 grey [0, 255] to 4x1: source x = (x + 0.5) / 2 - 0.5 = -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
    await writePng(`${dir}/up/ramp.png`, 2, 1, 1, [0, 255]);
    // 4x1 grey [0, 100, 200, 40] to 2x1: source x = 0.5 and 2.5, the means of neighbouring pairs.
    await writePng(`${dir}/down/ramp.png`, 4, 1, 1, [0, 100, 200, 40]);
    const up = await readImageFolder(`${dir}/`, { shape: [1, 4, 1], classNames: ["up", "down"], limit: 1 });
    assert.deepEqual(Array.from(up.labels), [1, 0]); // folders read in name order: down, up
    assertClose(Array.from(up.images.subarray(4, 8)), [0, 0.25, 0.75, 1], 1e-6, "upscaled");
    const down = await readImageFolder(dir, { shape: [1, 2, 1] });
    assertClose(Array.from(down.images.subarray(0, 2)), [50 / 255, 120 / 255], 1e-6, "downscaled");
  });
});

Deno.test("readImageFolder: given class names set the labels; an unknown class folder is an error naming it", async () => {
  await withTempDir(async (dir) => {
    await writeTwoClasses(dir);
    const ds = await readImageFolder(dir, { shape: [4, 4, 3], classNames: ["dog", "bird", "cat"] });
    assert.deepEqual(ds.classNames, ["dog", "bird", "cat"]);
    assert.deepEqual(Array.from(ds.labels), [2, 2, 0, 0, 0]);
    await assert.rejects(
      readImageFolder(dir, { shape: [4, 4, 3], classNames: ["cat", "bird"] }),
      (error: Error) => error.message.includes(`${dir}/dog`) && error.message.includes("not one of"),
    );
  });
});

Deno.test("readImageFolder: empty folders, folders without images and undecodable files are named", async () => {
  await withTempDir(async (dir) => {
    const shape = [4, 4, 3] as const;
    await assert.rejects(
      readImageFolder(dir, { shape }),
      (e: Error) => e.message.startsWith(`${dir}: no class`),
    );
    await assert.rejects(
      readImageFolder(`${dir}/missing`, { shape }),
      (e: Error) => e.message.includes(`${dir}/missing`),
    );
    await Deno.mkdir(`${dir}/a`);
    await Deno.writeTextFile(`${dir}/a/list.txt`, "1\n");
    await assert.rejects(
      readImageFolder(dir, { shape }),
      (e: Error) => e.message.startsWith(`${dir}/a: no .png`),
    );
    await Deno.writeFile(
      `${dir}/a/broken.png`,
      new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2]),
    );
    await assert.rejects(
      readImageFolder(dir, { shape }),
      (e: Error) =>
        e.message.startsWith(`${dir}/a/broken.png: cannot read the image`) && e.message.includes("PNG"),
    );
    await Deno.writeTextFile(`${dir}/a/broken.png`, "text, not a PNG");
    await assert.rejects(
      readImageFolder(dir, { shape }),
      (e: Error) => e.message.includes(`${dir}/a/broken.png`),
    );
    await assert.rejects(
      readImageFolder(dir, { shape: [4, 4, 2] }),
      (e: Error) => e.message.includes("1 or 3 channels"),
    );
  });
});
