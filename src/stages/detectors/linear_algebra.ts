/**
 * Dense linear algebra for the Mahalanobis detectors, in plain TypeScript on row-major Float64Arrays:
 * the inverse of a symmetric positive definite matrix (Cholesky) and the eigen-decomposition of a symmetric
 * one (cyclic Jacobi). Sizes here are a few hundred to a few thousand; both are O(size^3).
 *
 * @module
 */

/**
 * Inverse of a symmetric positive definite matrix (row-major [size, size]) through its Cholesky factor
 * `L L^T`: `A^-1 = L^-T L^-1`, every inner loop a dot product of two contiguous rows. O(size^3).
 * Throws a RangeError when the matrix is not positive definite.
 */
export function choleskyInverse(matrix: Float64Array, size: number): Float64Array {
  if (matrix.length !== size * size) {
    throw new RangeError(`choleskyInverse: ${matrix.length} values is not a ${size}x${size} matrix`);
  }
  // L, lower triangular, row-major.
  const lower = new Float64Array(size * size);
  for (let i = 0; i < size; i++) {
    const ri = i * size;
    for (let j = 0; j <= i; j++) {
      const rj = j * size;
      let s = matrix[ri + j];
      for (let k = 0; k < j; k++) s -= lower[ri + k] * lower[rj + k];
      if (i === j) {
        if (!(s > 0)) throw new RangeError(`choleskyInverse: matrix is not positive definite (pivot ${i})`);
        lower[ri + i] = Math.sqrt(s);
      } else {
        lower[ri + j] = s / lower[rj + j];
      }
    }
  }
  // U = (L^-1)^T, upper triangular: row j of U is column j of L^-1, solved by forward substitution.
  const upper = new Float64Array(size * size);
  for (let j = 0; j < size; j++) {
    const rj = j * size;
    upper[rj + j] = 1 / lower[j * size + j];
    for (let i = j + 1; i < size; i++) {
      const ri = i * size;
      let s = 0;
      for (let k = j; k < i; k++) s -= lower[ri + k] * upper[rj + k];
      upper[rj + i] = s / lower[ri + i];
    }
  }
  // A^-1 = U U^T; entry (i, j) sums over k >= max(i, j), where both rows are non-zero.
  const inverse = new Float64Array(size * size);
  for (let i = 0; i < size; i++) {
    const ri = i * size;
    for (let j = i; j < size; j++) {
      const rj = j * size;
      let s = 0;
      for (let k = j; k < size; k++) s += upper[ri + k] * upper[rj + k];
      inverse[ri + j] = s;
      inverse[rj + i] = s;
    }
  }
  return inverse;
}

/** Eigenvalues (descending) and unit eigenvectors (row-major [size, size], one per column) of a symmetric matrix. */
export interface SymmetricEigen {
  values: Float64Array;
  vectors: Float64Array;
}

/**
 * Eigen-decomposition of a symmetric matrix (row-major [size, size]) by cyclic Jacobi rotations, until the
 * off-diagonal mass is below 1e-24 of the total (at most 100 sweeps). The input is not modified.
 */
export function symmetricEigen(matrix: Float64Array, size: number): SymmetricEigen {
  if (matrix.length !== size * size) {
    throw new RangeError(`symmetricEigen: ${matrix.length} values is not a ${size}x${size} matrix`);
  }
  const a = Float64Array.from(matrix);
  const v = new Float64Array(size * size);
  for (let i = 0; i < size; i++) v[i * size + i] = 1;
  let total = 0;
  for (const x of a) total += x * x;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < size; p++) for (let q = p + 1; q < size; q++) off += 2 * a[p * size + q] ** 2;
    if (off <= 1e-24 * total) break;
    for (let p = 0; p < size; p++) {
      for (let q = p + 1; q < size; q++) {
        const apq = a[p * size + q];
        if (apq === 0) continue;
        const theta = (a[q * size + q] - a[p * size + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        // A <- J^T A J on rows and columns p, q; V <- V J.
        for (let k = 0; k < size; k++) {
          const akp = a[k * size + p];
          const akq = a[k * size + q];
          a[k * size + p] = c * akp - s * akq;
          a[k * size + q] = s * akp + c * akq;
        }
        for (let k = 0; k < size; k++) {
          const apk = a[p * size + k];
          const aqk = a[q * size + k];
          a[p * size + k] = c * apk - s * aqk;
          a[q * size + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < size; k++) {
          const vkp = v[k * size + p];
          const vkq = v[k * size + q];
          v[k * size + p] = c * vkp - s * vkq;
          v[k * size + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: size }, (_, i) => i).sort((i, j) => a[j * size + j] - a[i * size + i]);
  const values = Float64Array.from(order, (i) => a[i * size + i]);
  const vectors = new Float64Array(size * size);
  order.forEach((from, to) => {
    for (let k = 0; k < size; k++) vectors[k * size + to] = v[k * size + from];
  });
  return { values, vectors };
}
