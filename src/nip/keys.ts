/**
 * Matching keys (SPEC.md section 4).
 *
 * - `knn` (default): `phi(x)` restricted to the template neurons, or to all neurons when the template
 *   has fewer than {@link MIN_TEMPLATE_FOR_KNN} neurons; matched by cosine similarity.
 * - `paper`: the scalar `delta = cos(I(Omega_r, x), T')` of Eq. 4, read as in SPEC.md: `I` is the vector
 *   of remaining-neuron indices by descending influence, `T'` the template's indices ascending,
 *   zero-padded to the same length. Indices are counted from 1 so that neuron 0 is not the padding value.
 *
 * @module
 */
import type { NeuronPartition } from "./neurons.ts";

/** Below this template size the knn key uses every neuron of the layer (SPEC.md section 4). */
export const MIN_TEMPLATE_FOR_KNN = 16;

/** The neurons a knn key reads: the template, or every neuron when the template is too small. */
export function knnKeyNeurons(template: Int32Array, neuronCount: number): Int32Array {
  if (template.length >= MIN_TEMPLATE_FOR_KNN) return template;
  return Int32Array.from({ length: neuronCount }, (_, i) => i);
}

/**
 * knn keys: rows of `phi` (row-major [n, a]) restricted to `keyNeurons`, scaled to unit length. Plain
 * arrays, because a gather and a norm cost more in kernel launches than they do in a loop here.
 */
export function knnKeys(phi: Float32Array, neuronCount: number, keyNeurons: Int32Array): Float32Array {
  const n = phi.length / neuronCount;
  const d = keyNeurons.length;
  const keys = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    let squares = 0;
    for (let j = 0; j < d; j++) {
      const v = phi[i * neuronCount + keyNeurons[j]];
      keys[i * d + j] = v;
      squares += v * v;
    }
    const scale = 1 / Math.max(Math.sqrt(squares), 1e-12);
    for (let j = 0; j < d; j++) keys[i * d + j] *= scale;
  }
  return keys;
}

/** The paper key `delta` of one example (Eq. 4 as read in SPEC.md section 4). */
export function paperDelta(partition: NeuronPartition, template: Int32Array): number {
  const remaining = partition.remaining;
  let dot = 0;
  let remainingSquares = 0;
  let templateSquares = 0;
  for (let i = 0; i < remaining.length; i++) {
    const r = remaining[i] + 1;
    const t = i < template.length ? template[i] + 1 : 0;
    dot += r * t;
    remainingSquares += r * r;
    templateSquares += t * t;
  }
  const denominator = Math.sqrt(remainingSquares * templateSquares);
  return denominator === 0 ? 0 : dot / denominator;
}
