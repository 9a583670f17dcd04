import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/engine/backend.ts";
import {
  DEFAULT_SPEAKER_ATTACKS,
  parseSpeakerAttack,
  runSpeakerEvaluation,
  speakerBudget,
  type SpeakerEvalReport,
  spreadEntries,
} from "../audio/eval_speaker.ts";
import { FSDD_SPEAKERS, listFsdd } from "../audio/fsdd.ts";
import { FSDD_DIR } from "../audio/nip_speaker.ts";

Deno.test("attack specs parse from the command line and carry their units", () => {
  assert.deepEqual(parseSpeakerAttack("waveform:pgd-linf:8"), {
    domain: "waveform",
    attack: "pgd-linf",
    budget: 8,
  });
  assert.throws(() => parseSpeakerAttack("image:fgsm:2"), /spectrogram\|waveform/);
  assert.throws(() => parseSpeakerAttack("spectrogram:fgsm:-1"), /positive number/);
  assert.match(speakerBudget({ domain: "spectrogram", attack: "fgsm", budget: 2 }).label!, /2 dB/);
  assert.equal(speakerBudget({ domain: "waveform", attack: "pgd-linf", budget: 16 }).epsilon, 16 / 32768);
  assert.ok(DEFAULT_SPEAKER_ATTACKS.some((a) => a.domain === "waveform"));
});

Deno.test("the evaluation subset spreads over every speaker of the validation takes", () => {
  const picked = spreadEntries(listFsdd(FSDD_DIR, "validation"), 60);
  assert.equal(picked.length, 60);
  assert.equal(new Set(picked.map((e) => e.path)).size, 60);
  assert.deepEqual(new Set(picked.map((e) => e.speaker)), new Set(FSDD_SPEAKERS));
  assert.ok(picked.every((e) => e.take >= 5 && e.take <= 14));
});

Deno.test("a small speaker evaluation writes JSON + Markdown with every DSR beside its controls", async () => {
  await initBackend("wasm");
  const baseline = tf.memory().numTensors;
  const out = await Deno.makeTempDir({ prefix: "eval-speaker-" });
  const markdown = await runSpeakerEvaluation({
    n: 12,
    attacks: [
      { domain: "spectrogram", attack: "fgsm", budget: 6 },
      { domain: "waveform", attack: "pgd-linf", budget: 8, params: { steps: 5 } },
    ],
    baselines: ["QTZ", "BDR"],
    noiseDraws: 2,
    timingClips: 3,
    out,
    progress: false,
  });
  assert.equal(tf.memory().numTensors, baseline);
  const { meta, report } = JSON.parse(await Deno.readTextFile(`${out}/eval-speaker.json`)) as {
    meta: { clips: number };
    report: SpeakerEvalReport;
  };
  assert.equal(meta.clips, 12);
  assert.equal(await Deno.readTextFile(`${out}/eval-speaker.md`), markdown);
  assert.ok(report.benign.accuracy >= 0.9, `bare accuracy ${report.benign.accuracy}`);
  assert.deepEqual(Object.keys(report.benign.afterDefense).sort(), ["BDR", "NIP", "QTZ"]);
  assert.equal(report.rows.length, 2);
  for (const row of report.rows) {
    assert.ok(row.adversarial <= row.attacked && row.attacked <= 12);
    assert.ok(row.adversarial > 0, `${row.attack} on the ${row.domain} found no adversarial example`);
    for (const value of [row.asr, row.nip.dsr, row.nip.randomNoise, row.nip.randomCandidate]) {
      assert.ok(value >= 0 && value <= 1, `${value}`);
    }
    for (const name of ["QTZ", "BDR"]) {
      assert.ok(row.baselines[name].dsr >= 0 && row.baselines[name].dsr <= 1);
    }
    assert.ok(row.nip.changeL2 > 0);
  }
  const [spectrogram, waveform] = report.rows;
  assert.ok(spectrogram.resynthesisOnly >= 0 && spectrogram.resynthesisOnly <= 1);
  assert.ok(Number.isNaN(waveform.resynthesisOnly ?? NaN));
  assert.ok(waveform.perturbation.linfInt16 <= 8 + 1e-3, `${waveform.perturbation.linfInt16} steps`);
  assert.ok(waveform.perturbation.snrDb > 20 && waveform.perturbation.snrDb < 80);
  assert.ok(
    report.timing.nip > 0 && report.timing.bare > 0 && report.timing.wavToDefendedWav > report.timing.nip,
  );
  assert.match(
    markdown,
    /\| domain \| attack \| budget \| ASR \| perturbation \| \*\*NIP\*\* \| random-noise ctrl/,
  );
  assert.match(markdown, /waveform L_inf 8\/32768 \(16-bit steps\)/);
  assert.match(markdown, /log-mel L_inf 6 dB/);
  await Deno.remove(out, { recursive: true });
});
