/**
 * The seeded fuzzer (`deno task fuzz`) against real sidecars in child processes: 2,000 cases over every
 * RPC. Findings come per category (`src/fuzz/oracle.ts`); this test asserts zero findings in every
 * category but one ({@link NOT_ASSERTED}) and prints all of them.
 */
import assert from "node:assert/strict";
import { startFuzzServers } from "../src/fuzz/servers.ts";
import { generateCase } from "../src/fuzz/cases.ts";
import { STALL_MS } from "../src/fuzz/monitor.ts";
import { runFuzz } from "../src/fuzz/runner.ts";

/**
 * The one finding category not asserted here: `health-stall` (a single health check over 100 ms). In the
 * suite this file runs beside other test files computing on the same 2 cores, so one slow check says more
 * about the machine than the server; the median is asserted instead, and `deno task fuzz --cases 100000`
 * measures stalls alone (docs/HARDENING.md). Every other category must stay empty.
 */
const NOT_ASSERTED = new Set(["health-stall"]);

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
    console.log(
      `fuzz: ${results.cases} cases in ${results.seconds} s, ${results.rerunAfterGoaway} rerun after a GOAWAY; findings:`,
    );
    for (const [category, f] of found) {
      console.log(`  ${category}: ${f.count} (${f.examples.join(", ").slice(0, 200)})`);
    }
    const asserted = found.filter(([category]) => !NOT_ASSERTED.has(category));
    assert.deepEqual(asserted.map(([category]) => category), [], JSON.stringify(asserted, null, 1));
    assert.ok(results.monitor.healthP50Ms < STALL_MS, `health p50 ${results.monitor.healthP50Ms} ms`);
    // The control sidecar was probed all along, and the target's own loop lag was scraped.
    assert.ok(
      results.monitor.control && results.monitor.control.samples > 10,
      JSON.stringify(results.monitor),
    );
    assert.ok(results.monitor.serverLoopLag && results.monitor.serverLoopLag.samples > 100);
    // Reruns after a GOAWAY (the sidecar's calls-per-connection cap) are transport events, not a means to
    // hide failures: a handful among 2,000 cases.
    assert.ok(results.rerunAfterGoaway < 100, `${results.rerunAfterGoaway} cases rerun`);
    assert.equal(
      Object.values(results.table).flatMap((r) => Object.values(r)).reduce((a, b) => a + b, 0),
      2000,
    );
  } finally {
    await servers.stop();
  }
});
