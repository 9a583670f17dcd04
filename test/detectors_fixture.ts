/**
 * What the detector tests share: scoring a batch through a detector with its shared forward, and the
 * real-signal check every detector passes on the NIP test fixture (FGSM at L_inf 0.1 on 100 test images:
 * successful adversarial examples score higher than the benign images they came from).
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { getAttack, targetFromModel } from "../src/attacks/mod.ts";
import type { Dataset } from "../src/data/dataset.ts";
import { toTensor } from "../src/data/dataset.ts";
import { rocAuc } from "../src/eval/metrics.ts";
import { forwardAtLayer } from "../src/nip/neurons.ts";
import type { SplitModel } from "../src/nip/types.ts";
import { mulberry32 } from "../src/random.ts";
import type { DefenseStage, ScoreOutput } from "../src/stages/stage.ts";

/** A detector's output on `x`, with the predicted labels of its shared forward. */
export function scoreBatch(
  stage: DefenseStage,
  split: SplitModel,
  x: tf.Tensor,
  seed = 1,
): ScoreOutput & { labels: Int32Array } {
  const f = forwardAtLayer(split, x);
  try {
    const out = stage.score!({ x, forward: () => f, random: mulberry32(seed) });
    return { ...out, labels: Int32Array.from(f.labels.dataSync()) };
  } finally {
    tf.dispose([f.layerOutput, f.scores, f.labels]);
  }
}

/** Mean of the values. */
export function mean(values: ArrayLike<number>): number {
  return Array.from(values).reduce((a, b) => a + b, 0) / values.length;
}

/**
 * FGSM at L_inf 0.1 on the first 100 test images: the successful adversarial examples of the correctly
 * classified ones score higher on average than those benign images, and the ROC AUC (printed) beats chance.
 */
export async function assertDetectsFgsm(
  stage: DefenseStage,
  split: SplitModel,
  test: Dataset,
): Promise<number> {
  const x = toTensor(test, 0, 100);
  const labels = test.labels.slice(0, 100);
  const result = await getAttack("fgsm").run(
    targetFromModel(split.model, { inputRange: split.inputRange }),
    x,
    { kind: "misclassification", labels },
    { epsilon: 0.1 },
  );
  const clean = scoreBatch(stage, split, x);
  const attacked = scoreBatch(stage, split, result.adversarial);
  tf.dispose([x, result.adversarial]);
  const correct = Array.from(labels.keys()).filter((i) => clean.labels[i] === labels[i]);
  const fooled = correct.filter((i) => attacked.labels[i] !== labels[i]);
  assert.ok(fooled.length >= 20, `${fooled.length} successful adversarial examples`);
  const benignScores = correct.map((i) => clean.scores[i]);
  const adversarialScores = fooled.map((i) => attacked.scores[i]);
  const auc = rocAuc(benignScores, adversarialScores);
  console.log(
    `${stage.name}: FGSM L_inf 0.1, ${fooled.length} adversarial vs ${correct.length} benign: mean score ` +
      `${mean(adversarialScores).toFixed(3)} vs ${mean(benignScores).toFixed(3)}, ROC AUC ${auc.toFixed(3)}`,
  );
  assert.ok(mean(adversarialScores) > mean(benignScores));
  assert.ok(auc > 0.5, `ROC AUC ${auc}`);
  return auc;
}

/**
 * The detector's differentiable surrogate on `x`: leaves no tensor, has a finite gradient that is not zero
 * everywhere, and (`exact`) equals the stage's score within `tolerance` relative; returns its values.
 */
export function assertSurrogate(
  stage: DefenseStage,
  split: SplitModel,
  x: tf.Tensor,
  exact: boolean,
  tolerance = 1e-3,
): Float32Array {
  assert.ok(stage.surrogateScore, `${stage.name} has a surrogate`);
  const before = tf.memory().numTensors;
  const input = { x, forward: () => forwardAtLayer(split, x), random: mulberry32(5) };
  const surrogate = tf.tidy(() => Float32Array.from(stage.surrogateScore!(input).dataSync()));
  const gradient = tf.tidy(() => {
    const g = tf.grad((v: tf.Tensor) =>
      stage.surrogateScore!({ x: v, forward: input.forward, random: mulberry32(5) }).sum()
    )(x);
    return Float32Array.from(g.dataSync() as Float32Array);
  });
  assert.equal(tf.memory().numTensors, before, "the surrogate leaves no tensor");
  assert.ok(gradient.every(Number.isFinite), "finite gradient");
  assert.ok(gradient.some((g) => g !== 0), "a gradient that is not zero everywhere");
  if (exact) {
    const scores = scoreBatch(stage, split, x).scores;
    scores.forEach((s, i) =>
      assert.ok(
        Math.abs(surrogate[i] - s) <= tolerance * Math.max(1, Math.abs(s)),
        `example ${i}: surrogate ${surrogate[i]} vs score ${s}`,
      )
    );
  }
  return surrogate;
}

/** Scores `x` several times through one shared forward (which it then frees): a stage must hold no tensor of a call. */
export function scoreRepeatedly(stage: DefenseStage, split: SplitModel, x: tf.Tensor, times = 3): void {
  const f = forwardAtLayer(split, x);
  const input = { x, forward: () => f, random: mulberry32(1) };
  for (let r = 0; r < times; r++) stage.score!(input);
  tf.dispose([f.layerOutput, f.scores, f.labels]);
}
