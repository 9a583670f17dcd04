/**
 * The seeded fuzzer (`deno task fuzz`) against real sidecars in child processes: 2,000 cases over every
 * RPC. Findings come per category (`src/fuzz/oracle.ts`); this test asserts zero findings in every
 * category except those still open in the server ({@link KNOWN_OPEN}), and prints all of them so that the
 * list can be tightened as fixes land.
 */
import assert from "node:assert/strict";
import { startFuzzServers } from "../src/fuzz/servers.ts";
import { generateCase } from "../src/fuzz/cases.ts";
import { runFuzz } from "../src/fuzz/runner.ts";

/**
 * Finding categories the server still shows (2026-12-03, seed 1), not asserted yet; every other category
 * must stay empty. Remove an entry when its fix lands.
 * - `health-stall`: health checks over 100 ms while other calls compute (one thread, 2 shared cores).
 * - `dropped:oversized-metadata`: a stream opened with 500 metadata keys ends UNAVAILABLE ("write
 *   ECANCELED") instead of RESOURCE_EXHAUSTED, which unary calls get.
 * - `internal:wire-garbage`: health `Check` with undecodable bytes answers INTERNAL (grpc-health-check's
 *   own deserializer).
 * - `accepted-invalid:field-mutation`: `Certify` with `alpha` NaN answers OK.
 */
const KNOWN_OPEN = new Set([
  "health-stall",
  "dropped:oversized-metadata",
  "internal:wire-garbage",
  "accepted-invalid:field-mutation",
]);

Deno.test("the same seed and index always give the same case", () => {
  const models = {
    image: {
      modality: "image" as const,
      shape: [28, 28, 1] as [number, number, number],
      range: [0, 1] as [number, number],
      sampleRate: 0,
    },
  };
  for (let i = 0; i < 50; i++) {
    const a = generateCase(7, i, models);
    const b = generateCase(7, i, models);
    assert.deepEqual(a, b);
    assert.equal(a.id, `7-${i}`);
  }
  assert.notDeepEqual(generateCase(7, 1, models).messages, generateCase(8, 1, models).messages);
});

Deno.test("2,000 fuzz cases: no finding in the asserted categories", async () => {
  const servers = await startFuzzServers(true);
  try {
    const results = await runFuzz(servers.target, {
      seed: 1,
      cases: 2000,
      concurrency: 16,
      caseTimeoutMs: 10_000,
    });
    const found = Object.entries(results.findings);
    console.log(`fuzz: ${results.cases} cases in ${results.seconds} s; findings:`);
    for (const [category, f] of found) {
      console.log(`  ${category}: ${f.count} (${f.examples.join(", ").slice(0, 200)})`);
    }
    const asserted = found.filter(([category]) => !KNOWN_OPEN.has(category));
    assert.deepEqual(asserted.map(([category]) => category), [], JSON.stringify(asserted, null, 1));
    assert.equal(
      Object.values(results.table).flatMap((r) => Object.values(r)).reduce((a, b) => a + b, 0),
      2000,
    );
  } finally {
    await servers.stop();
  }
});
