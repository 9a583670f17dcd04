import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import {
  BackendUnavailableError,
  defaultNodeModulesDir,
  initBackend,
  parseBackendName,
  probeOptionalBackend,
} from "../src/engine/backend.ts";

const LOCKFILE = new URL("../deno.lock", import.meta.url);

async function lockfileText(): Promise<string> {
  return await Deno.readTextFile(LOCKFILE);
}

/** A throwaway node_modules holding the given files (path relative to node_modules -> content). */
async function fakeNodeModules(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "nip-node-modules-" });
  for (const [path, content] of Object.entries(files)) {
    const full = `${dir}/${path}`;
    await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(full, content);
  }
  return dir;
}

Deno.test("wasm and cpu initialise and compute; wasm gets the composed gradient kernels", async () => {
  assert.equal(await initBackend("cpu"), "cpu");
  assert.deepEqual(Array.from(tf.tidy(() => tf.add(tf.tensor1d([1, 2]), 1).dataSync())), [2, 3]);
  assert.equal(await initBackend("wasm"), "wasm");
  assert.deepEqual(Array.from(tf.tidy(() => tf.mul(tf.tensor1d([1, 2]), 3).dataSync())), [3, 6]);
  assert.notEqual(tf.getKernel("Conv2DBackpropFilter", "wasm"), undefined);
  assert.equal(await initBackend(), "wasm", "wasm is the default");
});

Deno.test("an unknown backend name fails with the list of valid names", async () => {
  assert.throws(() => parseBackendName("tpu"), (error: Error) => {
    assert.ok(error instanceof BackendUnavailableError);
    assert.match(error.message, /unknown backend "tpu"; expected one of wasm, cpu, tensorflow, webgpu/);
    return true;
  });
  await assert.rejects(initBackend("tpu" as never), BackendUnavailableError);
  assert.equal(parseBackendName("cpu"), "cpu");
});

Deno.test("a missing tensorflow backend fails fast, says what to install and fetches nothing", async () => {
  const empty = await fakeNodeModules({});
  try {
    const lockBefore = await lockfileText();
    await initBackend("wasm");
    const started = performance.now();
    await assert.rejects(initBackend("tensorflow", { nodeModulesDir: empty }), (error: Error) => {
      assert.ok(error instanceof BackendUnavailableError);
      assert.match(error.message, /backend "tensorflow" is not available/);
      assert.match(error.message, /@tensorflow\/tfjs-node is not installed/);
      assert.match(error.message, /deno install --allow-scripts npm:@tensorflow\/tfjs-node@4\.22\.0/);
      return true;
    });
    // An install attempt would download libtensorflow (minutes); failing fast shows none was made.
    assert.ok(performance.now() - started < 10_000, "should fail without any network or install attempt");
    assert.equal(tf.getBackend(), "wasm", "the previous backend stays active");
    assert.equal(await lockfileText(), lockBefore, "deno.lock must not change");
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});

Deno.test("tfjs-node without its native binding is reported as such and not imported", async () => {
  const dir = await fakeNodeModules({
    "@tensorflow/tfjs-node/package.json": '{"name":"@tensorflow/tfjs-node"}',
  });
  try {
    const probe = probeOptionalBackend("tensorflow", dir);
    assert.equal(probe.specifier, undefined);
    assert.ok(probe.problems.some((p) => /tfjs-node is installed but its native binding is missing/.test(p)));
    await assert.rejects(initBackend("tensorflow", { nodeModulesDir: dir }), /native binding is missing/);

    await Deno.mkdir(`${dir}/@tensorflow/tfjs-node/lib/napi-v8`, { recursive: true });
    await Deno.writeTextFile(`${dir}/@tensorflow/tfjs-node/lib/napi-v8/tfjs_binding.node`, "");
    assert.equal(probeOptionalBackend("tensorflow", dir).specifier, "npm:@tensorflow/tfjs-node@4.22.0");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a missing webgpu backend fails with what to install", async () => {
  const empty = await fakeNodeModules({});
  try {
    await assert.rejects(initBackend("webgpu", { nodeModulesDir: empty }), (error: Error) => {
      assert.ok(error instanceof BackendUnavailableError);
      assert.match(error.message, /@tensorflow\/tfjs-backend-webgpu is not installed/);
      assert.match(error.message, /deno install npm:@tensorflow\/tfjs-backend-webgpu@4\.22\.0/);
      return true;
    });
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});

const tensorflowProbe = probeOptionalBackend("tensorflow", defaultNodeModulesDir());

Deno.test({
  name: "the tensorflow backend initialises where tfjs-node is installed",
  ignore: tensorflowProbe.specifier === undefined,
  fn: async () => {
    assert.equal(await initBackend("tensorflow"), "tensorflow");
    assert.deepEqual(Array.from(tf.tidy(() => tf.add(tf.tensor1d([1]), 1).dataSync())), [2]);
    await initBackend("wasm");
  },
});
