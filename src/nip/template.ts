/**
 * The neuron template `T` (paper Eq. 3): the neurons that are in the remaining set of every
 * calibration example, i.e. never in any example's front or tail.
 *
 * @module
 */
import type { NeuronPartition } from "./neurons.ts";

/** Intersection of the remaining sets of `partitions`, ascending neuron indices. */
export function neuronTemplate(partitions: readonly NeuronPartition[], neuronCount: number): Int32Array {
  const excluded = new Uint8Array(neuronCount);
  for (const { front, tail } of partitions) {
    for (const n of front) excluded[n] = 1;
    for (const n of tail) excluded[n] = 1;
  }
  const template: number[] = [];
  excluded.forEach((isExcluded, n) => {
    if (!isExcluded) template.push(n);
  });
  return Int32Array.from(template);
}
