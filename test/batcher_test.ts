import assert from "node:assert/strict";
import { BatcherClosedError, DynamicBatcher, QueueFullError } from "../src/server/batcher.ts";

/** A real batch function: squares numbers, recording how batches were formed. */
function squaring(batches: number[][]) {
  return (items: number[]) => {
    batches.push([...items]);
    return items.map((x) => x * x);
  };
}

Deno.test("concurrent submissions are gathered into one batch up to maxBatchSize", async () => {
  const batches: number[][] = [];
  const batcher = new DynamicBatcher<number, number>(
    { maxBatchSize: 4, maxQueueDelayMicros: 50_000, maxQueueSize: 100 },
    squaring(batches),
  );
  const results = await Promise.all([1, 2, 3, 4, 5, 6].map((x) => batcher.submit(x)));
  assert.deepEqual(results.map((r) => r.result), [1, 4, 9, 16, 25, 36]);
  assert.deepEqual(batches, [[1, 2, 3, 4], [5, 6]]);
  assert.equal(results[0].info.batchItems, 4);
  assert.equal(results[5].info.batchItems, 2);
  await batcher.close();
});

Deno.test("a full batch runs at once; a partial one waits for the queue delay", async () => {
  const batches: number[][] = [];
  const batcher = new DynamicBatcher<number, number>(
    { maxBatchSize: 2, maxQueueDelayMicros: 80_000, maxQueueSize: 100 },
    squaring(batches),
  );
  const t0 = performance.now();
  await Promise.all([batcher.submit(1), batcher.submit(2)]);
  const full = performance.now() - t0;
  const t1 = performance.now();
  const single = await batcher.submit(3);
  const partial = performance.now() - t1;
  // Relative, not absolute: on a loaded machine both take longer, but only the partial batch waits ~80 ms.
  assert.ok(full < partial, `full batch took ${full} ms, partial ${partial} ms`);
  assert.ok(partial >= 70, `partial batch ran after ${partial} ms, expected ~80`);
  assert.ok(single.info.queueMs >= 70);
  await batcher.close();
});

Deno.test("item sizes count examples: a large item runs alone, sizes add up to the limit", async () => {
  const batches: number[][] = [];
  const batcher = new DynamicBatcher<number, number>(
    { maxBatchSize: 5, maxQueueDelayMicros: 1000, maxQueueSize: 100 },
    squaring(batches),
    (x) => x,
  );
  await Promise.all([7, 2, 3, 1].map((x) => batcher.submit(x)));
  assert.deepEqual(batches, [[7], [2, 3], [1]]);
  const r = await batcher.submit(4);
  assert.equal(r.info.batchExamples, 4);
  await batcher.close();
});

Deno.test("a full queue rejects with QueueFullError and the queued items still complete", async () => {
  const batches: number[][] = [];
  const batcher = new DynamicBatcher<number, number>(
    { maxBatchSize: 8, maxQueueDelayMicros: 20_000, maxQueueSize: 3 },
    squaring(batches),
  );
  const accepted = [batcher.submit(1), batcher.submit(2), batcher.submit(3)];
  await assert.rejects(batcher.submit(4), QueueFullError);
  assert.deepEqual((await Promise.all(accepted)).map((r) => r.result), [1, 4, 9]);
  assert.equal((await batcher.submit(5)).result, 25);
  await batcher.close();
});

Deno.test("batching off runs every item alone", async () => {
  const batches: number[][] = [];
  const batcher = new DynamicBatcher<number, number>(
    { maxBatchSize: 8, maxQueueDelayMicros: 10_000_000, maxQueueSize: 100, enabled: false },
    squaring(batches),
  );
  const t0 = performance.now();
  await Promise.all([1, 2, 3].map((x) => batcher.submit(x)));
  // A 10 s queue delay that batching-off must never wait for.
  assert.ok(performance.now() - t0 < 5000);
  assert.deepEqual(batches, [[1], [2], [3]]);
  await batcher.close();
});

Deno.test("an error in the run fails every item of that batch only", async () => {
  let calls = 0;
  const batcher = new DynamicBatcher<number, number>(
    { maxBatchSize: 2, maxQueueDelayMicros: 1000, maxQueueSize: 10 },
    (items) => {
      calls++;
      if (items.includes(-1)) throw new Error("negative input");
      return items.map((x) => x + 1);
    },
  );
  const bad = [batcher.submit(-1), batcher.submit(5)];
  await assert.rejects(bad[0], /negative input/);
  await assert.rejects(bad[1], /negative input/);
  assert.equal((await batcher.submit(9)).result, 10);
  assert.equal(calls, 2);
  await batcher.close();
});

Deno.test("close drains the queue and then refuses new items; options are validated", async () => {
  const batches: number[][] = [];
  const batcher = new DynamicBatcher<number, number>(
    { maxBatchSize: 4, maxQueueDelayMicros: 30_000, maxQueueSize: 10 },
    squaring(batches),
  );
  const pending = batcher.submit(3);
  await batcher.close();
  assert.equal((await pending).result, 9);
  await assert.rejects(batcher.submit(1), BatcherClosedError);
  assert.throws(() =>
    new DynamicBatcher({ maxBatchSize: 0, maxQueueDelayMicros: 0, maxQueueSize: 1 }, squaring([]))
  );
  assert.throws(() =>
    new DynamicBatcher({ maxBatchSize: 1, maxQueueDelayMicros: -1, maxQueueSize: 1 }, squaring([]))
  );
});

Deno.test("a zero queue delay batches what is already queued without waiting for a timer", async () => {
  const batches: number[][] = [];
  const batcher = new DynamicBatcher<number, number>(
    { maxBatchSize: 8, maxQueueDelayMicros: 0, maxQueueSize: 100 },
    squaring(batches),
  );
  const results = await Promise.all([1, 2, 3, 4, 5].map((x) => batcher.submit(x)));
  assert.deepEqual(batches, [[1, 2, 3, 4, 5]]);
  assert.ok(results.every((r) => r.info.batchItems === 5));
  await batcher.close();
});

Deno.test("close with a deadline stops waiting for a batch that never ends and fails what is queued", async () => {
  let release: () => void = () => {};
  const hung = new Promise<void>((resolve) => release = resolve);
  const batcher = new DynamicBatcher<number, number>(
    { maxBatchSize: 2, maxQueueDelayMicros: 10_000_000, maxQueueSize: 100 },
    async (items) => {
      await hung;
      return items;
    },
  );
  // A full batch runs (and hangs); the third item waits for the next batch.
  const running = [batcher.submit(1), batcher.submit(2)];
  await new Promise((r) => setTimeout(r, 10));
  const queued = batcher.submit(3);
  assert.equal(batcher.running, 1);
  assert.equal(batcher.queueLength, 1);
  await batcher.close(performance.now() + 50);
  assert.equal(batcher.queueLength, 0);
  assert.equal(batcher.running, 1);
  await assert.rejects(queued, BatcherClosedError);
  release();
  assert.deepEqual((await Promise.all(running)).map((r) => r.result), [1, 2]);
});
