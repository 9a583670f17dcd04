/**
 * A user's own images as a {@link Dataset}: a folder with one sub-folder per class, e.g.
 * `data/cat/001.png`, `data/dog/a.jpg`. Class names are the sorted sub-folder names unless given; images
 * are `.png`, `.jpg` and `.jpeg` files (any case), other files are ignored, and files are read in name
 * order so the dataset's order is the same on every machine. Each image is decoded by the server's codec
 * (`src/image/codec.ts`), converted to the wanted channels (grey <-> RGB, alpha dropped) and resized
 * bilinearly (`src/image/resize.ts`), exactly as a `Classify` request's image would be.
 *
 * @module
 */
import { type Dataset, validateDataset } from "./dataset.ts";
import { decodeImage } from "../image/codec.ts";
import { imageToInput } from "../image/resize.ts";

/** Options for {@link readImageFolder}. */
export interface ImageFolderOptions {
  /** Shape every image is converted to: [height, width, channels], channels 1 or 3. */
  shape: readonly [number, number, number];
  /** Read at most this many images of each class (the first ones in name order). */
  limit?: number;
  /** Class names, indexed by label; every sub-folder must be one of them. Default: the sorted sub-folders. */
  classNames?: string[];
}

const IMAGE_FILE = /\.(png|jpe?g)$/i;

async function isDirectory(path: string, entry: Deno.DirEntry): Promise<boolean> {
  if (entry.isDirectory) return true;
  return entry.isSymlink && (await Deno.stat(path)).isDirectory;
}

/** Names of the entries of `dir` that pass `keep`, sorted by name. */
async function listSorted(
  dir: string,
  keep: (path: string, entry: Deno.DirEntry) => boolean | Promise<boolean>,
): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (await keep(`${dir}/${entry.name}`, entry)) names.push(entry.name);
    }
  } catch (error) {
    throw new Error(`${dir}: cannot list the folder (${(error as Error).message})`);
  }
  return names.sort();
}

function checkShape(dir: string, shape: readonly [number, number, number]): void {
  const [height, width, channels] = shape;
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) {
    throw new RangeError(`${dir}: image shape ${shape.join("x")} needs a positive integer height and width`);
  }
  if (channels !== 1 && channels !== 3) {
    throw new RangeError(`${dir}: image shape ${shape.join("x")} needs 1 or 3 channels`);
  }
}

/**
 * Reads an image folder (see the module doc) as a dataset named after the folder, images of shape
 * `options.shape` in [0, 1]. Throws an error naming the folder when it has no class sub-folders, a class
 * folder has no images or is not in `options.classNames`, and naming the file when an image cannot be
 * decoded.
 */
export async function readImageFolder(dir: string, options: ImageFolderOptions): Promise<Dataset> {
  const root = dir.replace(/\/+$/, "") || "/";
  checkShape(root, options.shape);
  const folders = await listSorted(root, (path, entry) => isDirectory(path, entry));
  if (folders.length === 0) throw new Error(`${root}: no class sub-folders (expected ${root}/<class>/*.png)`);
  const classNames = options.classNames ?? folders;
  const files: { path: string; label: number }[] = [];
  for (const folder of folders) {
    const label = classNames.indexOf(folder);
    if (label < 0) {
      throw new Error(
        `${root}/${folder}: class folder "${folder}" is not one of the ${classNames.length} class names ` +
          `(${classNames.join(", ")})`,
      );
    }
    const images = await listSorted(
      `${root}/${folder}`,
      (_, entry) => !entry.isDirectory && IMAGE_FILE.test(entry.name),
    );
    if (images.length === 0) throw new Error(`${root}/${folder}: no .png, .jpg or .jpeg images`);
    const kept = options.limit === undefined ? images : images.slice(0, Math.max(0, options.limit));
    for (const name of kept) files.push({ path: `${root}/${folder}/${name}`, label });
  }
  const shape: [number, number, number] = [...options.shape];
  const size = shape[0] * shape[1] * shape[2];
  const images = new Float32Array(files.length * size);
  const labels = new Int32Array(files.length);
  for (let i = 0; i < files.length; i++) {
    const { path, label } = files[i];
    let row: Float32Array;
    try {
      row = imageToInput(decodeImage(await Deno.readFile(path)), shape, [0, 1]);
    } catch (error) {
      throw new Error(`${path}: cannot read the image (${(error as Error).message})`);
    }
    images.set(row, i * size);
    labels[i] = label;
  }
  const dataset: Dataset = {
    name: root.slice(root.lastIndexOf("/") + 1) || root,
    images,
    labels,
    count: files.length,
    shape,
    classNames,
  };
  validateDataset(dataset);
  return dataset;
}
