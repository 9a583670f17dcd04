import assert from "node:assert/strict";
import { join } from "node:path";
import { listFsdd } from "../audio/fsdd.ts";
import { fsddTrainDir } from "../src/data/shared_data.ts";
import { runTask } from "./task_runner.ts";

const FSDD = fsddTrainDir();
const haveFsdd = await Deno.stat(FSDD).then(() => true, () => false);

Deno.test({
  name: "eval --data speaker --test DIR: a folder of the user's WAVs, one sub-folder per speaker",
  ignore: !haveFsdd,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const wavs = join(dir, "wavs");
    const validation = listFsdd(FSDD, "validation").filter((e) => e.digit < 2 && e.take === 7);
    for (const entry of validation) {
      await Deno.mkdir(join(wavs, entry.speaker), { recursive: true });
      await Deno.copyFile(entry.path, join(wavs, entry.speaker, `${entry.digit}.wav`));
    }
    const out = join(dir, "eval");
    const result = await runTask("eval", [
      "--data",
      "speaker",
      "--test",
      wavs,
      "--n",
      "50",
      "--defenses",
      "nip",
      "--attacks",
      "spectrogram:fgsm:2",
      "--out",
      out,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const { report } = JSON.parse(await Deno.readTextFile(join(out, "eval.json")));
    assert.equal(report.benign.examples, validation.length);
    assert.ok(report.benign.accuracy > 0.8, `${report.benign.accuracy}`);
    assert.match(await Deno.readTextFile(join(out, "eval.md")), /speaker folder .*george, jackson/);
    const missing = await runTask("eval", ["--data", "speaker"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /give --test DIR/);
    await Deno.remove(dir, { recursive: true });
  },
});
