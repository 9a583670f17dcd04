/**
 * SAA, the secondary adversarial attack (paper App. B.1): attack, defend with NIP, and attack *again with
 * the same attack* the examples NIP defended successfully; the second adversarial examples are defended
 * again and the attack succeeds where the defended pipeline now misclassifies them.
 *
 * Readings: both attacks run against the target passed to `run` (the paper: the bare model); the second
 * attack starts from the defended input and its budget bounds the perturbation around that input, as the
 * paper describes ("add adversarial perturbations again on examples after successful defense"), so the
 * distance to the original benign input may exceed the budget (it is reported in `distances`; the second
 * stage's own distances are in `secondStageDistance`). Untargeted criteria only: "defended successfully"
 * means "classified as the true label after defense".
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { subsetCriterion } from "../attacks/criteria.ts";
import { computeDistances } from "../attacks/norms.ts";
import type { Attack, AttackBudget, AttackResult, AttackTarget, Criterion } from "../attacks/types.ts";
import type { DefensePipeline } from "../stages/pipeline.ts";

/** What an SAA run returns beyond the library's result. `success[i]`: the second attack fooled the defended pipeline. */
export interface SaaResult extends AttackResult {
  /** Indices attacked a second time: the first attack fooled the target and NIP restored the true label. */
  readonly secondStage: Int32Array;
  /** The first attack's success flags (against the target). */
  readonly firstStageSuccess: Uint8Array;
  /** Labels the defended pipeline gives the first-stage adversarial examples. */
  readonly firstStageDefendedLabels: Int32Array;
  /** Distance (attack's norm) of each second-stage example from the defended input it started from. */
  readonly secondStageDistance: Float32Array;
}

/** An SAA attack: its `run` returns a {@link SaaResult}. */
export interface SaaAttack extends Attack {
  run(target: AttackTarget, x: tf.Tensor4D, criterion: Criterion, budget: AttackBudget): Promise<SaaResult>;
}

function indexTensor(indices: Int32Array): tf.Tensor1D {
  return tf.tensor1d(indices, "int32");
}

/** Replaces rows `indices` of `base` with `rows` (same order), as a new tensor. */
function replaceRows(base: tf.Tensor4D, indices: Int32Array, rows: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const n = base.shape[0];
    const positions = tf.tensor2d(indices, [indices.length, 1], "int32");
    const scattered = tf.scatterND(positions, rows, base.shape);
    const mask = tf.scatterND(positions, tf.ones([indices.length], "int32"), [n]).cast("bool");
    return tf.where(mask.reshape([n, 1, 1, 1]), scattered, base) as tf.Tensor4D;
  });
}

/** SAA with `base` as both the first and the second attack, the defense `pipeline` in between. */
export function saa(base: Attack, pipeline: DefensePipeline): SaaAttack {
  const name = `saa(${base.name})`;
  return {
    name,
    norm: base.norm,
    kind: base.kind,
    mode: base.mode,
    params: { base: base.name, ...base.params },
    async run(target, x, criterion, budget): Promise<SaaResult> {
      if (criterion.kind !== "misclassification") {
        throw new RangeError(`attack "${name}": only untargeted (misclassification) criteria are supported`);
      }
      const labels = criterion.labels;
      const n = x.shape[0];
      const first = await base.run(target, x, criterion, budget);
      const firstDefense = pipeline.run(first.adversarial);
      const queries = Int32Array.from(first.queries, (q) => q + 1);
      const second = Int32Array.from(
        Array.from({ length: n }, (_, i) => i).filter((i) =>
          first.success[i] === 1 && firstDefense.labelsAfter![i] === labels[i]
        ),
      );
      let adversarial = first.adversarial;
      const predicted = Int32Array.from(firstDefense.labelsAfter!);
      const success = new Uint8Array(n);
      let secondStageDistance: Float32Array = new Float32Array(0);
      if (second.length > 0) {
        const start = tf.tidy(() => tf.gather(firstDefense.defended, indexTensor(second))) as tf.Tensor4D;
        const again = await base.run(target, start, subsetCriterion(criterion, second), budget);
        const secondDefense = pipeline.run(again.adversarial);
        secondStageDistance = (await computeDistances(start, again.adversarial))[base.norm];
        second.forEach((i, j) => {
          queries[i] += again.queries[j] + 1;
          predicted[i] = secondDefense.labelsAfter![j];
          success[i] = secondDefense.labelsAfter![j] !== labels[i] ? 1 : 0;
        });
        adversarial = replaceRows(first.adversarial, second, again.adversarial);
        tf.dispose([start, again.adversarial, secondDefense.defended, first.adversarial]);
      }
      firstDefense.defended.dispose();
      return {
        adversarial,
        success,
        queries,
        distances: await computeDistances(x, adversarial),
        predicted,
        attack: name,
        budgetLabel: `${first.budgetLabel} (second attack bounded around the defended input)`,
        secondStage: second,
        firstStageSuccess: first.success,
        firstStageDefendedLabels: firstDefense.labelsAfter!,
        secondStageDistance,
      };
    },
  };
}
