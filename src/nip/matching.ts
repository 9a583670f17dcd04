/**
 * Candidate matching (SPEC.md section 4): nearest candidate by cosine similarity of knn keys, or by the
 * nearest scalar `delta` in `paper` mode.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** The matched candidate of each query and how close it is (higher is closer). */
export interface Matches {
  index: Int32Array;
  similarity: Float32Array;
}

/** Candidates per matrix product; bounds memory at about `queries * chunk` floats for 10^5 candidates. */
const KNN_CHUNK = 16384;

/**
 * Cosine-similarity matcher over unit-length keys, batched as matrix products over candidate chunks. Chunks
 * are stored transposed ([d, chunk]) because the wasm backend's matrix product is much slower with a
 * transposed operand.
 */
export class KnnMatcher {
  readonly #chunks: tf.Tensor2D[];
  /** Number of candidates. */
  readonly size: number;

  /** Takes unit-length candidate keys [m, d]; keeps its own copies (dispose with {@link dispose}). */
  constructor(keys: tf.Tensor2D) {
    this.size = keys.shape[0];
    this.#chunks = [];
    for (let start = 0; start < this.size; start += KNN_CHUNK) {
      const rows = Math.min(KNN_CHUNK, this.size - start);
      this.#chunks.push(tf.tidy(() => keys.slice([start, 0], [rows, -1]).transpose()));
    }
  }

  /** Best candidate for each unit-length query row [n, d]. */
  match(queries: tf.Tensor2D): Matches {
    const n = queries.shape[0];
    const index = new Int32Array(n);
    const similarity = new Float32Array(n).fill(-Infinity);
    let offset = 0;
    for (const chunk of this.#chunks) {
      // One read of the similarities and the argmax here: cheaper than two more kernels and reads.
      const product = queries.matMul(chunk);
      const sims = product.dataSync() as Float32Array;
      product.dispose();
      const width = chunk.shape[1];
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < width; j++) {
          const value = sims[i * width + j];
          if (value > similarity[i]) {
            similarity[i] = value;
            index[i] = j + offset;
          }
        }
      }
      offset += width;
    }
    return { index, similarity };
  }

  /** Frees the candidate keys. */
  dispose(): void {
    tf.dispose(this.#chunks);
  }
}

/** Nearest-scalar matcher over the paper's `delta` keys (binary search on the sorted deltas). */
export class DeltaMatcher {
  readonly #sorted: Float64Array;
  readonly #order: Int32Array;
  /** Number of candidates. */
  readonly size: number;

  /** Takes one `delta` per candidate. */
  constructor(deltas: ArrayLike<number>) {
    this.size = deltas.length;
    this.#order = Int32Array.from({ length: deltas.length }, (_, i) => i);
    this.#order.sort((i, j) => (deltas[i] - deltas[j]) || (i - j));
    this.#sorted = Float64Array.from(this.#order, (i) => deltas[i]);
  }

  /** Candidate whose delta is nearest to each query delta; similarity is minus the distance. */
  match(queryDeltas: ArrayLike<number>): Matches {
    const n = queryDeltas.length;
    const index = new Int32Array(n);
    const similarity = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const q = queryDeltas[i];
      let lo = 0;
      let hi = this.#sorted.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.#sorted[mid] < q) lo = mid + 1;
        else hi = mid;
      }
      const best = lo > 0 && Math.abs(this.#sorted[lo - 1] - q) <= Math.abs(this.#sorted[lo] - q)
        ? lo - 1
        : lo;
      index[i] = this.#order[best];
      similarity[i] = -Math.abs(this.#sorted[best] - q);
    }
    return { index, similarity };
  }
}
