/**
 * The in-memory image dataset shared by loaders, training, calibration and evaluation.
 *
 * Images are stored NHWC as 32-bit floats in [0, 1]; labels are class indices.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** A labelled image dataset held in memory. */
export interface Dataset {
  /** Short identifier, e.g. "fashion-mnist" or "cifar10/train". */
  name: string;
  /** Pixels, NHWC, row-major, values in [0, 1]; length = count * h * w * c. */
  images: Float32Array;
  /** Class index of each image, in [0, classNames.length). */
  labels: Int32Array;
  /** Number of images. */
  count: number;
  /** Shape of one image: [height, width, channels]. */
  shape: [number, number, number];
  /** Human-readable name of each class, indexed by label. */
  classNames: string[];
}

/** Number of floats in one image of `ds`. */
export function imageSize(ds: Pick<Dataset, "shape">): number {
  return ds.shape[0] * ds.shape[1] * ds.shape[2];
}

/**
 * Checks that a dataset's arrays agree with its count and shape and that every label is a valid class.
 * Throws an error naming the first inconsistency.
 */
export function validateDataset(ds: Dataset): void {
  const size = imageSize(ds);
  if (!Number.isInteger(ds.count) || ds.count < 0) throw new Error(`${ds.name}: invalid count ${ds.count}`);
  if (ds.images.length !== ds.count * size) {
    throw new Error(`${ds.name}: images has ${ds.images.length} values, expected ${ds.count} x ${size}`);
  }
  if (ds.labels.length !== ds.count) {
    throw new Error(`${ds.name}: labels has ${ds.labels.length} entries, expected ${ds.count}`);
  }
  for (let i = 0; i < ds.count; i++) {
    const label = ds.labels[i];
    if (label < 0 || label >= ds.classNames.length) {
      throw new Error(`${ds.name}: label ${label} of image ${i} is outside [0, ${ds.classNames.length})`);
    }
  }
}

/**
 * Returns a new dataset holding copies of the images at `indices`, in that order.
 * Throws on an index outside [0, count).
 */
export function subset(ds: Dataset, indices: ArrayLike<number>, name = ds.name): Dataset {
  const size = imageSize(ds);
  const images = new Float32Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i];
    if (!Number.isInteger(index) || index < 0 || index >= ds.count) {
      throw new RangeError(`${ds.name}: subset index ${index} (position ${i}) is outside [0, ${ds.count})`);
    }
    images.set(ds.images.subarray(index * size, (index + 1) * size), i * size);
    labels[i] = ds.labels[index];
  }
  return { name, images, labels, count: indices.length, shape: [...ds.shape], classNames: ds.classNames };
}

/** Returns the first `n` images (or all, when fewer) as a new dataset sharing no memory with `ds`. */
export function head(ds: Dataset, n: number): Dataset {
  const count = Math.max(0, Math.min(n, ds.count));
  return subset(ds, Array.from({ length: count }, (_, i) => i));
}

function checkRange(ds: Dataset, start: number, end: number): void {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > ds.count || start > end) {
    throw new RangeError(`${ds.name}: batch range [${start}, ${end}) is outside [0, ${ds.count}]`);
  }
}

/**
 * Images [start, end) as one tensor of shape [end - start, h, w, c]. The caller owns (and disposes) it;
 * no other tensor is created.
 */
export function toTensor(ds: Dataset, start = 0, end = ds.count): tf.Tensor4D {
  checkRange(ds, start, end);
  const size = imageSize(ds);
  const [h, w, c] = ds.shape;
  return tf.tensor4d(ds.images.subarray(start * size, end * size), [end - start, h, w, c], "float32");
}

/** Labels [start, end) as an int32 tensor of shape [end - start]. The caller disposes it. */
export function labelTensor(ds: Dataset, start = 0, end = ds.count): tf.Tensor1D {
  checkRange(ds, start, end);
  return tf.tensor1d(ds.labels.subarray(start, end), "int32");
}

/** Labels [start, end) one-hot encoded, shape [end - start, classes]. The caller disposes it. */
export function oneHotTensor(ds: Dataset, start = 0, end = ds.count): tf.Tensor2D {
  checkRange(ds, start, end);
  return tf.tidy(() => tf.oneHot(labelTensor(ds, start, end), ds.classNames.length).toFloat() as tf.Tensor2D);
}

/** Number of images of each class, indexed by label. */
export function classCounts(ds: Pick<Dataset, "labels" | "classNames">): number[] {
  const counts = new Array<number>(ds.classNames.length).fill(0);
  for (const label of ds.labels) counts[label]++;
  return counts;
}
