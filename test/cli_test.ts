import assert from "node:assert/strict";
import { join } from "node:path";
import { encodePng } from "../src/image/codec.ts";
import { loadProfile, saveProfile } from "../src/profile_io.ts";
import { runTask } from "./task_runner.ts";

Deno.test("defend on image files writes defended PNGs and a JSON report", async () => {
  const dir = await Deno.makeTempDir();
  const pixels = new Uint8Array(28 * 28).map((_, i) => (i * 7) % 256);
  await Deno.writeFile(
    join(dir, "shirt.png"),
    encodePng({ width: 28, height: 28, channels: 1, data: pixels }),
  );
  const out = join(dir, "out");
  const result = await runTask("defend", [join(dir, "shirt.png"), "--out", out]);
  assert.equal(result.code, 0, result.stderr);
  const report = JSON.parse(await Deno.readTextFile(join(out, "defend.json")));
  assert.equal(report.length, 1);
  assert.ok(report[0].labelBefore >= 0 && report[0].labelBefore < 10);
  assert.ok((await Deno.stat(join(out, "shirt.defended.png"))).size > 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("defend on a split reports accuracy before and after", async () => {
  const out = await Deno.makeTempDir();
  const result = await runTask("defend", ["--split", "test", "--n", "100", "--out", out]);
  assert.equal(result.code, 0, result.stderr);
  const summary = JSON.parse(await Deno.readTextFile(join(out, "defend.json")));
  assert.equal(summary.examples, 100);
  assert.ok(summary.accuracyBefore > 0.8 && summary.accuracyAfter > 0.8, JSON.stringify(summary));
  await Deno.remove(out, { recursive: true });
});

Deno.test("CLI mistakes name the flag or the file and exit non-zero", async () => {
  const badNumber = await runTask("eval", ["--n", "many"]);
  assert.equal(badNumber.code, 2);
  assert.match(badNumber.stderr, /--n: expected a number/);
  const badChoice = await runTask("calibrate", ["--key", "nearest"]);
  assert.equal(badChoice.code, 2);
  assert.match(badChoice.stderr, /--key: expected one of knn, paper/);
  const missing = await runTask("defend", ["/nonexistent/cat.png"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /\/nonexistent\/cat\.png: cannot read/);
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(join(dir, "not-an-image.png"), "hello");
  const undecodable = await runTask("defend", [join(dir, "not-an-image.png")]);
  assert.equal(undecodable.code, 2);
  assert.match(undecodable.stderr, /not-an-image\.png: /);
  const wrongProfile = await runTask("defend", [
    "--split",
    "test",
    "--profile",
    "models/fsdd-speaker/profile",
  ]);
  assert.equal(wrongProfile.code, 1);
  assert.match(wrongProfile.stderr, /calibrated on model/);
  await Deno.remove(dir, { recursive: true });
});

/** The keys of an object, and recursively of its plain-object values: the shape of a report. */
function shape(value: unknown): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return typeof value;
  return Object.fromEntries(Object.entries(value).sort().map(([k, v]) => [k, shape(v)]));
}

Deno.test("image and speaker evaluations go through one harness: same report, same controls", async () => {
  const imageOut = await Deno.makeTempDir();
  const image = await runTask("eval", [
    ..."--n 40 --attacks fgsm --budgets 0.1 --protocol honest --defenses nip,cbdr --out".split(" "),
    imageOut,
  ]);
  assert.equal(image.code, 0, image.stderr);
  const speechOut = await Deno.makeTempDir();
  const speech = await runTask("eval", [
    ..."--data fsdd --n 12 --attacks spectrogram:fgsm:6,waveform:fgsm:8 --protocol honest --defenses nip,cbdr --out"
      .split(" "),
    speechOut,
  ]);
  assert.equal(speech.code, 0, speech.stderr);
  const imageJson = JSON.parse(await Deno.readTextFile(join(imageOut, "eval.json")));
  const speechJson = JSON.parse(await Deno.readTextFile(join(speechOut, "eval.json")));
  assert.equal(imageJson.meta.n, 40);
  assert.equal(speechJson.meta.n, 12);
  assert.deepEqual(speechJson.report.rows.map((r: { domain: string }) => r.domain), [
    "spectrogram",
    "waveform",
  ]);
  // Same report type: the same fields at every level, for every defense.
  assert.deepEqual(Object.keys(imageJson.report).sort(), Object.keys(speechJson.report).sort());
  assert.deepEqual(shape(imageJson.report.benign), shape(speechJson.report.benign));
  assert.deepEqual(Object.keys(imageJson.report.defenses[0]), Object.keys(speechJson.report.defenses[0]));
  for (const json of [imageJson, speechJson]) {
    const row = json.report.rows.find((r: { adversarial: number }) => r.adversarial > 0);
    assert.ok(row, "some attack found adversarial examples");
    // Same controls: the random-noise control for every defense, NIP's own control beside it.
    assert.deepEqual(Object.keys(row.defenses), ["nip", "cbdr"]);
    assert.ok(row.defenses.nip.randomNoise >= 0 && row.defenses.cbdr.randomNoise >= 0);
    assert.ok(row.defenses.nip.ownControl >= 0 && row.defenses.cbdr.ownControl === undefined);
    assert.deepEqual(Object.keys(row.defenses.nip).sort(), [
      "change",
      "dsr",
      "msPerExample",
      "ownControl",
      "protocols",
      "psnr",
      "randomNoise",
      "tknc",
    ]);
  }
  const waveform = speechJson.report.rows[1];
  assert.ok(waveform.perturbation["L_inf 16-bit steps"] <= 8 + 1e-3);
  for (const [result, out] of [[image, imageOut], [speech, speechOut]] as const) {
    const markdown = await Deno.readTextFile(join(out, "eval.md"));
    assert.match(
      markdown,
      /\| nip DSR \| nip noise ctrl \| nip own ctrl \| nip NIP_n \| nip benign acc\. \| nip ms \| cbdr DSR/,
    );
    assert.match(result.stdout, /random-noise control/);
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("eval names an unknown defense and the ones it knows", async () => {
  const result = await runTask("eval", ["--defenses", "nip,blur"]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /unknown defense "blur"; expected one of nip, ss, cbdr, jc, tvm, fdistill/);
});

Deno.test("calibrate:detectors writes a profile with detection; eval --detect reads it", async () => {
  const dir = await Deno.makeTempDir();
  const profile = join(dir, "profile");
  const calibrated = await runTask("calibrate_detectors", [
    ..."--detectors squeeze,knn --fit 200 --reference 100 --held-out 200 --out".split(" "),
    profile,
  ]);
  assert.equal(calibrated.code, 0, calibrated.stderr);
  const summary = JSON.parse(calibrated.stdout);
  assert.deepEqual(summary.detectors, ["squeeze", "knn"]);
  assert.match(summary.data, /fashion-mnist\/calibration, seed 1, after 2000 examples/);
  const out = join(dir, "eval");
  const evaluated = await runTask("eval", [
    ..."--detect --alpha 0.1 --n 40 --attacks fgsm --budgets 0.1 --profile".split(" "),
    profile,
    "--out",
    out,
  ]);
  assert.equal(evaluated.code, 0, evaluated.stderr);
  const { report, detection } = JSON.parse(await Deno.readTextFile(join(out, "eval.json")));
  assert.equal(report, undefined, "--detect alone runs no defense table");
  assert.equal(detection.alpha, 0.1);
  assert.deepEqual(detection.detectors, ["squeeze", "knn"]);
  assert.equal(detection.rows.length, 1);
  assert.match(evaluated.stdout, /\| false-positive rate \| combined \| bonferroni \| squeeze \| knn \|/);
  // The adaptive attacks on the same detection, tiny: one budget, one run, a few inputs.
  const adaptive = await runTask("eval", [
    ..."--detect --n 30 --attacks none --detect-adaptive 0.1 --runs 1 --adaptive-n 4 --steps 3".split(" "),
    ..."--square-steps 5 --boundary-steps 3 --boundary-n 2 --profile".split(" "),
    profile,
    "--out",
    out,
  ]);
  assert.equal(adaptive.code, 0, adaptive.stderr);
  const { adaptiveDetection } = JSON.parse(await Deno.readTextFile(join(out, "eval.json")));
  assert.deepEqual(adaptiveDetection.rows.map((r: { attack: string }) => r.attack), [
    "pgd-unaware",
    "pgd-detect",
    "square",
    "boundary",
  ]);
  assert.match(adaptive.stdout, /## Adaptive attacks on the detection/);
  const badParams = await runTask("eval", ["--attack-params", "cw-l2.steps"]);
  assert.equal(badParams.code, 2);
  assert.match(badParams.stderr, /--attack-params: expected attack.setting=value, got "cw-l2.steps"/);
  const withoutDetect = await runTask("eval", ["--detect-adaptive", "0.1"]);
  assert.equal(withoutDetect.code, 2);
  assert.match(withoutDetect.stderr, /--detect-adaptive attacks the detection: give --detect too/);

  // The speaker model: sets from FSDD's validation takes 5-9 only, recorded in the profile.
  const speakerProfile = join(dir, "speaker-profile");
  const speaker = await runTask("calibrate_detectors", [
    ..."--data fsdd --detectors squeeze,knn --fit 20 --reference 20 --held-out 20 --out".split(" "),
    speakerProfile,
  ]);
  assert.equal(speaker.code, 0, speaker.stderr);
  const speakerSummary = JSON.parse(speaker.stdout);
  assert.equal(speakerSummary.data, "fsdd validation takes 5-9, shuffled with seed 1");
  assert.deepEqual([speakerSummary.fit, speakerSummary.reference, speakerSummary.heldOut], [20, 20, 20]);

  const unknown = await runTask("calibrate_detectors", ["--detectors", "squeeze,entropy", "--out", profile]);
  assert.equal(unknown.code, 2);
  assert.match(
    unknown.stderr,
    /unknown detector "entropy"; expected some of influence, nip-response, squeeze/,
  );
  const badAlpha = await runTask("eval", ["--detect", "--alpha", "2"]);
  assert.equal(badAlpha.code, 2);
  assert.match(badAlpha.stderr, /--alpha: expected a number in \[0.000001, 0.5\]/);
  // The embedded profile without its detectors: what `deno task calibrate` alone writes.
  const nipOnly = join(dir, "nip-only");
  const { stages: _, ...withoutDetectors } = await loadProfile("models/fashion-lenet/profile");
  await saveProfile(withoutDetectors, nipOnly);
  const uncalibrated = await runTask("eval", [
    ..."--detect --n 10 --attacks fgsm --budgets 0.1 --profile".split(" "),
    nipOnly,
  ]);
  assert.equal(uncalibrated.code, 1);
  assert.match(uncalibrated.stderr, /no detector calibration; run `deno task calibrate:detectors/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("every task answers --help with its usage and exit 0", async () => {
  const tasks = [
    "accuracy",
    "calibrate",
    "calibrate_detectors",
    "calibrate_speaker",
    "defend",
    "demo",
    "eval",
    "train",
    "train_denoiser",
    "train_speaker",
  ];
  for (const task of tasks) {
    const result = await runTask(task, ["--help"]);
    assert.equal(result.code, 0, `${task}: ${result.stderr}`);
    assert.match(result.stdout, /deno task /, task);
    assert.doesNotMatch(result.stdout, /@module|\/\*\*/, task);
  }
  const certify = await runTask("eval", ["--certify", "--help"]);
  assert.equal(certify.code, 0);
  assert.match(certify.stdout, /deno task eval --certify/);
});

Deno.test("eval with an attack that has no preset for the asked budget is a usage error, not an empty table", async () => {
  const result = await runTask("eval", ["--attacks", "jsma", "--budgets", "standard", "--n", "5"]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /nothing to run: jsma at the standard budget/);
});
