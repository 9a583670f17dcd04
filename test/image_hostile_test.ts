/**
 * The hostile images of issue 13 (`test/fixtures/hostile/`, made by `scripts/make_hostile_fixtures.ts`)
 * through the codec: each is refused from its header, with the field named, before any pixel is decoded;
 * a valid 4096x4096 PNG and JPEG are treated alike.
 */
import assert from "node:assert/strict";
import { decodeImage, DEFAULT_MAX_PIXELS, ImageDecodeError, ImageTooLargeError } from "../src/image/codec.ts";
import { checkJpeg, MAX_JPEG_SCANS } from "../src/image/jpeg_header.ts";
import { checkPng } from "../src/image/png_header.ts";
import { HOSTILE_FIXTURES } from "../scripts/make_hostile_fixtures.ts";

const fixture = (name: string) => Deno.readFileSync(new URL(`fixtures/hostile/${name}`, import.meta.url));

Deno.test("the committed fixtures are what the generator makes", () => {
  for (const [name, make] of Object.entries(HOSTILE_FIXTURES)) {
    const bytes = fixture(name);
    assert.deepEqual(bytes, make(), name);
    assert.ok(bytes.length < 200_000, `${name}: ${bytes.length} bytes`);
  }
});

Deno.test("a 1 x 16 Mi PNG (within the pixel limit) is refused for its 16 Mi rows, not decoded", () => {
  assert.throws(
    () => decodeImage(fixture("png_1x16777216.png")),
    (e: Error) =>
      e instanceof ImageTooLargeError &&
      /PNG is 1x16777216: .* 16777216 rows at 256 bytes each/.test(e.message),
  );
});

Deno.test("a PNG of width 0 is refused naming the IHDR field", () => {
  assert.throws(
    () => decodeImage(fixture("png_zero_width.png")),
    (e: Error) => e instanceof ImageDecodeError && /IHDR width 0 at byte 16/.test(e.message),
  );
});

Deno.test("PNG image data shorter, longer than the header says, or empty is refused", () => {
  const cases: [string, RegExp][] = [
    ["png_short_idat.png", /IDAT inflates to 290 bytes, fewer than the 812 that 28x28 needs/],
    ["png_long_idat.png", /IDAT inflates to more than the 812 bytes that 28x28 needs/],
    ["png_empty_idat.png", /no image data \(IDAT is empty\)/],
  ];
  for (const [name, pattern] of cases) {
    assert.throws(
      () => decodeImage(fixture(name)),
      (e: Error) => e instanceof ImageDecodeError && pattern.test(e.message),
    );
  }
});

Deno.test("a PNG whose IDAT inflates past the limit never allocates past it", () => {
  // The 4096 x 4096 bomb's IHDR rewritten to 64 x 64: its 16 MiB stream must stop at 64 x 65 + 1 bytes.
  const bomb = fixture("png_4096x4096.png").slice();
  const view = new DataView(bomb.buffer);
  view.setUint32(16, 64);
  view.setUint32(20, 64);
  assert.throws(() => checkPng(bomb, DEFAULT_MAX_PIXELS), /IDAT inflates to more than the 4160 bytes/);
});

Deno.test("a progressive JPEG with 10,000 scans is refused at the 101st", () => {
  assert.throws(
    () => decodeImage(fixture("jpeg_10000_scans.jpg")),
    (e: Error) =>
      e instanceof ImageDecodeError && new RegExp(`more than ${MAX_JPEG_SCANS} scans`).test(e.message),
  );
});

Deno.test("a 152-byte JPEG declaring 4000x4000 is refused: a baseline JPEG that size needs 62500 bytes", () => {
  assert.throws(
    () => decodeImage(fixture("jpeg_4000x4000_tiny.jpg")),
    (e: Error) =>
      e instanceof ImageDecodeError &&
      /4000x4000 has 250000 blocks, which take at least 62500 bytes; the file has 152/.test(e.message),
  );
});

Deno.test("a valid 4096x4096 PNG and JPEG are both accepted under the default limit, both refused under it", () => {
  const png = fixture("png_4096x4096.png");
  const jpeg = fixture("jpeg_4096x4096.jpg");
  assert.deepEqual(checkPng(png, DEFAULT_MAX_PIXELS), {
    width: 4096,
    height: 4096,
    bitDepth: 8,
    colorType: 0,
    interlaced: false,
  });
  assert.deepEqual(checkJpeg(jpeg, DEFAULT_MAX_PIXELS), {
    width: 4096,
    height: 4096,
    components: 1,
    progressive: false,
    scans: 1,
  });
  for (const bytes of [png, jpeg]) {
    const image = decodeImage(bytes);
    assert.equal(image.width * image.height, 4096 * 4096);
    assert.throws(() => decodeImage(bytes, undefined, 4096 * 4096 - 1), /= 16777216 pixels, limit 16777215/);
  }
});

Deno.test("PNG and JPEG headers: bad fields are named", () => {
  const png = fixture("png_zero_width.png").slice();
  new DataView(png.buffer).setUint32(16, 28);
  png[24] = 3; // bit depth 3
  assert.throws(() => checkPng(png, DEFAULT_MAX_PIXELS), /IHDR bit depth 3 at byte 24; colour type 0 allows/);
  png[24] = 8;
  png[28] = 2; // interlace method 2
  assert.throws(() => checkPng(png, DEFAULT_MAX_PIXELS), /IHDR interlace method 2 at byte 28/);
  const short = fixture("png_short_idat.png");
  assert.throws(
    () => checkPng(short.subarray(0, 50), 1e6),
    /chunk "IDAT" at byte 33 declares 13 bytes, 5 follow/,
  );
  assert.throws(() => checkPng(short.subarray(0, short.length - 12), 1e6), /before its IEND chunk/);
  const jpeg = fixture("jpeg_4000x4000_tiny.jpg").slice();
  const sof = jpeg.indexOf(0xc0, 2) - 1;
  jpeg[sof + 5] = 0; // height 0 (the high byte is already 0x0f)
  jpeg[sof + 6] = 0;
  assert.throws(() => checkJpeg(jpeg, DEFAULT_MAX_PIXELS), /frame height 0/);
  jpeg[sof + 1] = 0xc9; // arithmetic coding
  assert.throws(() => checkJpeg(jpeg, DEFAULT_MAX_PIXELS), /frame type SOF9 .* is not supported/);
});
