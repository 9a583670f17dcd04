/**
 * Net2WiderNet (Chen, Goodfellow and Shlens, ICLR 2016): gives a wider copy of a trained model the function
 * the narrow model computes, so that training the wider one starts where the narrow one stopped instead of
 * from a random initialisation.
 *
 * Every widened unit of the wide model is a replica of a unit of the narrow one (the first units keep their
 * own index; each extra unit copies a seeded random one), and the layer that reads a replicated unit divides
 * that unit's outgoing weights by its number of replicas, so the sum it computes is unchanged. One mapping
 * per channel count serves the whole model, so both inputs of a residual `Add` are replicated alike. The
 * incoming weights of the extra units get Gaussian noise of `noise` times their kernel's standard deviation:
 * without it, replicas receive identical gradients and never come apart.
 *
 * The layers this handles are those of the project's image nets (convolutions, dense layers, batch
 * normalisation, pooling, flatten, add, activations, dropout); any other layer whose input is widened is an
 * error naming it (a layer normalisation, for one, sees different statistics once channels are replicated).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { mulberry32 } from "../random.ts";

/** Options of {@link widenInto}. */
export interface WidenOptions {
  /** Seed of the replica choice and the noise; default 1. */
  seed?: number;
  /** Noise on the extra units' incoming weights, relative to their kernel's standard deviation; default 0.01. */
  noise?: number;
}

/** Which narrow feature each wide feature copies, and how many copies each narrow feature has. */
interface FeatureMap {
  readonly source: Int32Array;
  readonly copies: Int32Array;
}

const PASS_THROUGH = new Set([
  "Activation",
  "ReLU",
  "Dropout",
  "MaxPooling2D",
  "AveragePooling2D",
  "GlobalAveragePooling2D",
  "GlobalMaxPooling2D",
  "Add",
]);

function gaussian(random: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

function featureMap(narrow: number, wide: number, random: () => number): FeatureMap {
  const source = Int32Array.from({ length: wide }, (_, j) => j < narrow ? j : Math.floor(random() * narrow));
  const copies = new Int32Array(narrow);
  for (const s of source) copies[s]++;
  return { source, copies };
}

/** The map of a flattened [..spatial, channels] tensor, from the map of its channels. */
function flattenMap(channels: FeatureMap, spatial: number): FeatureMap {
  const narrow = channels.copies.length;
  const wide = channels.source.length;
  const source = new Int32Array(spatial * wide);
  const copies = new Int32Array(spatial * narrow);
  for (let s = 0; s < spatial; s++) {
    for (let c = 0; c < wide; c++) source[s * wide + c] = s * narrow + channels.source[c];
    copies.set(channels.copies, s * narrow);
  }
  return { source, copies };
}

function standardDeviation(values: Float32Array): number {
  let sum = 0;
  let squares = 0;
  for (const v of values) {
    sum += v;
    squares += v * v;
  }
  const mean = sum / values.length;
  return Math.sqrt(Math.max(0, squares / values.length - mean * mean));
}

/**
 * Sets the weights of `wide` (the same architecture as `narrow`, its layers of the same names, some of them
 * with more units) so that it computes `narrow`'s function, up to the symmetry-breaking noise.
 */
export function widenInto(narrow: tf.LayersModel, wide: tf.LayersModel, options: WidenOptions = {}): void {
  const random = mulberry32(options.seed ?? 1);
  const normal = gaussian(random);
  const noise = options.noise ?? 0.01;
  const byCount = new Map<string, FeatureMap>();
  const mapFor = (from: number, to: number): FeatureMap | undefined => {
    if (from === to) return undefined;
    if (from > to) {
      throw new Error(`widen: ${from} features cannot become ${to}; the wide model must be wider`);
    }
    const key = `${from}->${to}`;
    if (!byCount.has(key)) byCount.set(key, featureMap(from, to, random));
    return byCount.get(key);
  };
  const outputs = new Map<string, FeatureMap | undefined>();

  for (const layer of wide.layers) {
    const old = narrow.getLayer(layer.name);
    const inputs = layer.inboundNodes[0]?.inboundLayers.map((l) => outputs.get(l.name)) ?? [];
    const input = inputs[0];
    const kind = layer.getClassName();
    const oldParams = old.getWeights();
    const oldWeights = oldParams.map((w) => w.dataSync() as Float32Array);
    const oldShapes = oldParams.map((w) => w.shape.join("x"));
    const newShapes = layer.getWeights().map((w) => w.shape);
    let output: FeatureMap | undefined = input;

    if (kind === "Conv2D" || kind === "Dense") {
      const kernelShape = newShapes[0];
      const [oldIn, oldOut] = oldParams[0].shape.slice(-2);
      const [newIn, newOut] = kernelShape.slice(-2);
      if ((input === undefined) !== (oldIn === newIn)) {
        throw new Error(`widen: ${layer.name} reads ${newIn} features where its input gives another count`);
      }
      output = mapFor(oldOut, newOut);
      const taps = kernelShape.length === 4 ? kernelShape[0] * kernelShape[1] : 1;
      const kernel = new Float32Array(taps * newIn * newOut);
      const spread = noise * standardDeviation(oldWeights[0]);
      for (let t = 0; t < taps; t++) {
        for (let i = 0; i < newIn; i++) {
          const si = input === undefined ? i : input.source[i];
          const share = input === undefined ? 1 : 1 / input.copies[si];
          for (let o = 0; o < newOut; o++) {
            const so = output === undefined ? o : output.source[o];
            const jitter = o >= oldOut && spread > 0 ? spread * normal() : 0;
            kernel[(t * newIn + i) * newOut + o] = oldWeights[0][(t * oldIn + si) * oldOut + so] * share +
              jitter;
          }
        }
      }
      const values = [kernel, ...oldWeights.slice(1).map((bias) => gather(bias, output))];
      setWeights(layer, values, newShapes);
    } else if (kind === "BatchNormalization") {
      setWeights(layer, oldWeights.map((w) => gather(w, input)), newShapes);
    } else if (kind === "Flatten") {
      const shape = (layer.input as tf.SymbolicTensor).shape;
      const spatial = shape.slice(1, -1).reduce<number>((a, d) => a * (d ?? 1), 1);
      output = input === undefined ? undefined : flattenMap(input, spatial);
    } else if (kind === "Add") {
      if (inputs.some((m) => m !== input)) {
        throw new Error(`widen: the inputs of ${layer.name} are widened unlike`);
      }
    } else if (kind !== "InputLayer" && !PASS_THROUGH.has(kind)) {
      if (input !== undefined || newShapes.some((shape, i) => shape.join("x") !== oldShapes[i])) {
        throw new Error(`widen: cannot widen through ${layer.name} (${kind})`);
      }
      setWeights(layer, oldWeights, newShapes);
    }
    outputs.set(layer.name, output);
  }
}

function gather(values: Float32Array, map: FeatureMap | undefined): Float32Array {
  return map === undefined ? values : Float32Array.from(map.source, (s) => values[s]);
}

function setWeights(layer: tf.layers.Layer, values: Float32Array[], shapes: number[][]): void {
  const tensors = values.map((v, i) => tf.tensor(v, shapes[i]));
  layer.setWeights(tensors);
  tf.dispose(tensors);
}
