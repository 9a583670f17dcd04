import assert from "node:assert/strict";
import { parseNpy, readNpy, readNpyDataset } from "../src/data/npy.ts";

/** A `.npy` file built byte by byte: magic, version, little-endian header length, padded header, values. */
function npyBytes(
  descr: string,
  shape: number[],
  values: Uint8Array,
  options: { version?: 1 | 2; fortran?: boolean } = {},
): Uint8Array {
  const version = options.version ?? 1;
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  const dict = `{'descr': '${descr}', 'fortran_order': ${
    options.fortran ? "True" : "False"
  }, 'shape': ${shapeText}, }`;
  const prefix = version === 1 ? 10 : 12;
  const header = dict.padEnd(Math.ceil((prefix + dict.length + 1) / 64) * 64 - prefix - 1, " ") + "\n";
  const bytes = new Uint8Array(prefix + header.length + values.length);
  bytes.set([0x93, ...new TextEncoder().encode("NUMPY"), version, 0]);
  const view = new DataView(bytes.buffer);
  if (version === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  bytes.set(new TextEncoder().encode(header), prefix);
  bytes.set(values, prefix + header.length);
  return bytes;
}

function float32Bytes(values: number[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  values.forEach((v, i) => new DataView(bytes.buffer).setFloat32(4 * i, v, true));
  return bytes;
}

function int64Bytes(values: number[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 8);
  values.forEach((v, i) => new DataView(bytes.buffer).setBigInt64(8 * i, BigInt(v), true));
  return bytes;
}

function hex(text: string): Uint8Array {
  return Uint8Array.from(text.match(/../g)!, (byte) => parseInt(byte, 16));
}

/** `np.save` of `np.array([[1.5, -2], [0.25, 3]], dtype='<f4')` by NumPy 2.4 (128-byte header block). */
const NUMPY_FLOAT32 = hex(
  "934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20" +
    "277368617065273a2028322c2032292c207d" + "20".repeat(58) + "0a0000c03f000000c00000803e00004040",
);

async function withTempDir(body: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "npy_test_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("parseNpy reads a file written by NumPy itself", () => {
  const array = parseNpy(NUMPY_FLOAT32, "numpy.npy");
  assert.deepEqual(array.shape, [2, 2]);
  assert.equal(array.dtype, "<f4");
  assert.deepEqual(Array.from(array.data), [1.5, -2, 0.25, 3]);
});

Deno.test("parseNpy reads v1.0 and v2.0 headers, every dtype, and scalars", () => {
  const u8 = parseNpy(npyBytes("|u1", [2, 3], Uint8Array.from([0, 1, 2, 253, 254, 255])), "u8.npy");
  assert.deepEqual(u8.shape, [2, 3]);
  assert.ok(u8.data instanceof Uint8Array);
  assert.deepEqual(Array.from(u8.data), [0, 1, 2, 253, 254, 255]);
  const f32 = parseNpy(npyBytes("<f4", [3], float32Bytes([0.5, -1, 1e-3]), { version: 2 }), "f32.npy");
  assert.ok(f32.data instanceof Float32Array);
  assert.deepEqual(Array.from(f32.data), [0.5, -1, Math.fround(1e-3)]);
  const f64 = new Uint8Array(16);
  new DataView(f64.buffer).setFloat64(0, Math.PI, true);
  new DataView(f64.buffer).setFloat64(8, -0.1, true);
  assert.deepEqual(Array.from(parseNpy(npyBytes("<f8", [2], f64), "f64.npy").data), [Math.PI, -0.1]);
  const i32 = new Uint8Array(8);
  new DataView(i32.buffer).setInt32(0, -7, true);
  new DataView(i32.buffer).setInt32(4, 2 ** 30, true);
  assert.deepEqual(Array.from(parseNpy(npyBytes("<i4", [2, 1], i32), "i32.npy").data), [-7, 2 ** 30]);
  assert.deepEqual(
    Array.from(parseNpy(npyBytes("<i8", [3], int64Bytes([9, -3, 2 ** 40]), { version: 2 }), "i64.npy").data),
    [
      9,
      -3,
      2 ** 40,
    ],
  );
  assert.deepEqual(Array.from(parseNpy(npyBytes("|b1", [2], Uint8Array.from([1, 0])), "b.npy").data), [1, 0]);
  const scalar = parseNpy(npyBytes("<f4", [], float32Bytes([2.5])), "scalar.npy");
  assert.deepEqual([scalar.shape, Array.from(scalar.data)], [[], [2.5]]);
});

Deno.test("parseNpy errors name the file and the header field or byte offset", () => {
  const good = npyBytes("|u1", [2, 2], Uint8Array.from([1, 2, 3, 4]));
  const fails = (bytes: Uint8Array, ...parts: string[]) =>
    assert.throws(
      () => parseNpy(bytes, "x.npy"),
      (e: Error) => parts.every((part) => e.message.includes(part)),
      parts.join(),
    );
  fails(
    npyBytes("|u1", [2, 2], Uint8Array.from([1, 2, 3, 4]), { fortran: true }),
    "x.npy",
    "'fortran_order'",
  );
  fails(good.subarray(0, good.length - 1), "x.npy", "truncated", "byte offset 128", "needs 4");
  fails(Uint8Array.from([...good, 0]), "x.npy", "extra bytes");
  fails(good.subarray(0, 40), "x.npy", "runs past the end");
  fails(good.subarray(0, 6), "x.npy", "not a .npy file");
  fails(npyBytes(">f4", [1], float32Bytes([1])), "x.npy", "'descr'", "big-endian");
  fails(npyBytes("<c8", [1], new Uint8Array(8)), "x.npy", "'descr'", "<c8");
  fails(npyBytes("<f4", [-1], new Uint8Array(0)), "x.npy", "'shape'");
  const badVersion = good.slice();
  badVersion[6] = 4;
  fails(badVersion, "x.npy", "version 4.0", "byte offset 6");
  const noShape = good.slice();
  noShape[new TextDecoder().decode(good.subarray(10)).indexOf("shape") + 14] = "f".charCodeAt(0); // 'shapf'
  fails(noShape, "x.npy", "'shape' is missing");
});

Deno.test("readNpyDataset: uint8 [n, h, w] images scaled by 1/255, int64 .npy labels", async () => {
  await withTempDir(async (dir) => {
    const pixels = Uint8Array.from({ length: 3 * 2 * 2 }, (_, i) => i * 20);
    await Deno.writeFile(`${dir}/x.npy`, npyBytes("|u1", [3, 2, 2], pixels));
    await Deno.writeFile(`${dir}/y.npy`, npyBytes("<i8", [3], int64Bytes([2, 0, 2]), { version: 2 }));
    const ds = await readNpyDataset(`${dir}/x.npy`, `${dir}/y.npy`);
    assert.equal(ds.name, "x.npy");
    assert.deepEqual([ds.count, ds.shape], [3, [2, 2, 1]]);
    assert.deepEqual(Array.from(ds.labels), [2, 0, 2]);
    assert.deepEqual(ds.classNames, ["class0", "class1", "class2"]);
    assert.deepEqual(Array.from(ds.images), Array.from(pixels, (v) => Math.fround(v / 255)));
    assert.deepEqual((await readNpy(`${dir}/x.npy`)).shape, [3, 2, 2]);
  });
});

Deno.test("readNpyDataset: float [n, h, w, c] images, range checks and mapping, text labels", async () => {
  await withTempDir(async (dir) => {
    const values = [0, 0.25, 0.5, 1, 0.75, 0.125];
    await Deno.writeFile(`${dir}/x.npy`, npyBytes("<f4", [2, 1, 1, 3], float32Bytes(values)));
    await Deno.writeTextFile(`${dir}/y.txt`, "1\n0\n\n");
    const ds = await readNpyDataset(`${dir}/x.npy`, `${dir}/y.txt`);
    assert.deepEqual([ds.count, ds.shape, Array.from(ds.labels)], [2, [1, 1, 3], [1, 0]]);
    assert.deepEqual(Array.from(ds.images), values);
    await Deno.writeTextFile(`${dir}/names.txt`, "cat\n7\n");
    const named = await readNpyDataset(`${dir}/x.npy`, `${dir}/names.txt`, {
      classNames: [..."abcdefgh", "cat"],
    });
    assert.deepEqual(Array.from(named.labels), [8, 7]);
    await Deno.writeFile(`${dir}/wide.npy`, npyBytes("<f4", [1, 1, 2], float32Bytes([-1, 3])));
    await Deno.writeTextFile(`${dir}/one.txt`, "0\n");
    await assert.rejects(
      readNpyDataset(`${dir}/wide.npy`, `${dir}/one.txt`),
      (e: Error) => e.message.includes(`${dir}/wide.npy`) && e.message.includes("value -1 at index 0"),
    );
    const mapped = await readNpyDataset(`${dir}/wide.npy`, `${dir}/one.txt`, { range: [-1, 3] });
    assert.deepEqual(Array.from(mapped.images), [0, 1]);
  });
});

Deno.test("readNpyDataset errors name the files: count mismatch, bad labels, bad image arrays", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/x.npy`, npyBytes("|u1", [2, 1, 1], Uint8Array.from([0, 255])));
    await Deno.writeTextFile(`${dir}/three.txt`, "0\n1\n1\n");
    await assert.rejects(
      readNpyDataset(`${dir}/x.npy`, `${dir}/three.txt`),
      (e: Error) =>
        e.message.includes(`${dir}/x.npy has 2 images`) && e.message.includes(`${dir}/three.txt has 3`),
    );
    await Deno.writeTextFile(`${dir}/word.txt`, "0\ndog\n");
    await assert.rejects(
      readNpyDataset(`${dir}/x.npy`, `${dir}/word.txt`),
      (e: Error) => e.message.includes("word.txt: line 2"),
    );
    await Deno.writeTextFile(`${dir}/big.txt`, "0\n5\n");
    await assert.rejects(
      readNpyDataset(`${dir}/x.npy`, `${dir}/big.txt`, { classNames: ["a", "b"] }),
      (e: Error) => e.message.includes("big.txt: label 5 of image 1"),
    );
    await Deno.writeFile(`${dir}/yf.npy`, npyBytes("<f4", [2], float32Bytes([0, 1])));
    await assert.rejects(
      readNpyDataset(`${dir}/x.npy`, `${dir}/yf.npy`),
      (e: Error) => e.message.includes("yf.npy: header field 'descr'"),
    );
    await Deno.writeFile(`${dir}/flat.npy`, npyBytes("|u1", [2], Uint8Array.from([0, 1])));
    await assert.rejects(
      readNpyDataset(`${dir}/flat.npy`, `${dir}/big.txt`),
      (e: Error) => e.message.includes("flat.npy: header field 'shape'"),
    );
  });
});
