import assert from "node:assert/strict";
import { parseLoopLag, percentile } from "../src/fuzz/monitor.ts";
import { SidecarMetrics } from "../src/server/metrics.ts";

Deno.test("parseLoopLag: samples, those over 100 ms and the max from a sidecar's scrape", () => {
  const metrics = new SidecarMetrics();
  for (const seconds of [0.001, 0.004, 0.09, 0.1, 0.12, 0.3]) metrics.loopLag.observe(seconds);
  metrics.addGauge("nip_event_loop_lag_max_seconds", "max", () => 0.3);
  assert.deepEqual(parseLoopLag(metrics.render()), { samples: 6, over100Ms: 2, maxMs: 300 });
});

Deno.test("parseLoopLag: undefined for a scrape without the loop-lag series", () => {
  assert.equal(parseLoopLag(""), undefined);
  assert.equal(parseLoopLag("nip_requests_total 3\n"), undefined);
});

Deno.test("percentile: the p-th of sorted values, NaN when empty", () => {
  assert.equal(percentile([1, 2, 3, 4], 50), 3);
  assert.equal(percentile([1, 2, 3, 4], 99), 4);
  assert.ok(Number.isNaN(percentile([], 50)));
});
