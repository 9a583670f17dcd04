import assert from "node:assert/strict";
import { fsddTrainDir, sharedDataDir } from "../src/data/shared_data.ts";

Deno.test("sharedDataDir is the shared/data folder beside the repository unless NIP_DATA_DIR says otherwise", () => {
  const previous = Deno.env.get("NIP_DATA_DIR");
  Deno.env.delete("NIP_DATA_DIR");
  try {
    const beside = new URL("../../shared/data", import.meta.url).pathname;
    assert.equal(sharedDataDir(), beside.replace(/\/$/, ""));
    Deno.env.set("NIP_DATA_DIR", "/data/nip");
    assert.equal(sharedDataDir(), "/data/nip");
    assert.equal(fsddTrainDir(), "/data/nip/fsdd/train");
  } finally {
    if (previous === undefined) Deno.env.delete("NIP_DATA_DIR");
    else Deno.env.set("NIP_DATA_DIR", previous);
  }
});
