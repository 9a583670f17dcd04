/**
 * Randomized smoothing (Cohen, Rosenfeld and Kolter 2019) as an answering stage, with an optional denoiser
 * in front of the frozen model (denoised smoothing, Salman et al. 2020): the answer is PREDICT's (the class
 * the base classifier picks most often under Gaussian noise, or an abstention), and `certify` gives
 * CERTIFY's class and certified L2 radius. The base classifier is the split model's whole classifier, after
 * the denoiser trained for `sigma` when the profile holds one. On an audio model the noise, and so the
 * radius, are in the model's input space: the log-mel features, not the waveform.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { toProbabilities } from "../engine/outputs.ts";
import {
  type Certificate,
  certifyFromCounts,
  type CertifyRequest,
  checkCertifyRequest,
  predictFromCounts,
  SMOOTHING_LIMITS,
} from "../smoothing/cohen.ts";
import { denoiserName, denoiserNames, loadDenoiser } from "../smoothing/denoiser_state.ts";
import { type BaseClassifier, runSteps, sampleCounts, sampleCountsInSteps } from "../smoothing/sampler.ts";
import {
  type DefenseStage,
  integerSetting,
  numericSetting,
  type StageContext,
  type StageFactory,
  type StageState,
} from "./stage.ts";

/** The stage's name; its profile state holds the trained denoisers. */
export const SMOOTHING = "smooth";

/**
 * Which stored denoiser a setting names: `auto` picks `stability-<sigma>`, else `mse-<sigma>`, else none;
 * `none` is the bare model; `mse` and `stability` the one trained at the stage's sigma; anything else a
 * stored name.
 */
export function chooseDenoiser(
  setting: string,
  sigma: number,
  state: StageState | undefined,
): string | undefined {
  const stored = denoiserNames(state);
  if (setting === "none") return undefined;
  if (setting === "auto") {
    return [denoiserName("stability", sigma), denoiserName("mse", sigma)].find((n) => stored.includes(n));
  }
  const name = setting === "mse" || setting === "stability" ? denoiserName(setting, sigma) : setting;
  if (!stored.includes(name)) {
    throw new RangeError(
      `${SMOOTHING}: no denoiser "${name}" in the model's profile (stored: ${
        stored.join(", ") || "none"
      }); ` +
        "train one with `deno task train:denoiser` or set denoiser=none",
    );
  }
  return name;
}

function createSmoothing({ split, state, overrides = {} }: StageContext): DefenseStage {
  const sigma = numericSetting(SMOOTHING, "sigma", overrides.sigma, 0.25, [1e-4, 10]);
  const predictSamples = integerSetting(SMOOTHING, "predict-n", overrides["predict-n"], 100, [
    1,
    SMOOTHING_LIMITS.maxSamples,
  ]);
  const alpha = numericSetting(SMOOTHING, "alpha", overrides.alpha, 0.001, [1e-12, 0.5]);
  const n0 = integerSetting(SMOOTHING, "n0", overrides.n0, 100, [1, SMOOTHING_LIMITS.maxN0]);
  const n = integerSetting(SMOOTHING, "n", overrides.n, 1000, [1, SMOOTHING_LIMITS.maxSamples]);
  // 250 noisy forwards per call: on one wasm thread no slower per forward than 1,000 for the models here,
  // and a server certifying a large n yields between calls about every 50 ms (the default model, loaded).
  const batchSize = integerSetting(SMOOTHING, "batch", overrides.batch, 250, [1, 100_000]);
  const denoiserSetting = String(overrides.denoiser ?? "auto");
  const chosen = chooseDenoiser(denoiserSetting, sigma, state);
  const denoiser = chosen === undefined ? undefined : loadDenoiser(state!, chosen);
  const classes = split.model.outputs[0].shape[1] as number;
  const probabilities = toProbabilities(split.model);
  const base: BaseClassifier = (noisy) =>
    tf.tidy(() => {
      const input = denoiser ? denoiser.apply(noisy, { training: false }) as tf.Tensor : noisy;
      return (split.model.apply(input, { training: false }) as tf.Tensor).argMax(-1);
    });
  const seedOf = (random: () => number) => Math.floor(random() * 2 ** 31);
  // CERTIFY one noise batch per step (the server yields between steps); `certify` runs it at once.
  function* certifySteps(x: tf.Tensor, request: CertifyRequest): Generator<void, Certificate[]> {
    checkCertifyRequest(request);
    const options = { sigma, classes, batchSize };
    const selection = yield* sampleCountsInSteps(base, x, {
      ...options,
      samples: request.n0,
      seed: request.seed,
    });
    yield;
    const estimation = yield* sampleCountsInSteps(base, x, {
      ...options,
      samples: request.n,
      seed: request.seed + 1,
    });
    return Array.from({ length: x.shape[0] }, (_, i) =>
      certifyFromCounts(
        selection.subarray(i * classes, (i + 1) * classes),
        estimation.subarray(i * classes, (i + 1) * classes),
        sigma,
        request.alpha,
      ));
  }
  return {
    name: SMOOTHING,
    description: `randomized smoothing: Gaussian noise sigma ${sigma} in the model's input space, ` +
      `${denoiser ? `denoiser ${chosen} before the frozen model` : "no denoiser"}; PREDICT with ` +
      `${predictSamples} samples at alpha ${alpha} (abstains below), CERTIFY with n0 ${n0}, n ${n}`,
    settings: {
      sigma,
      denoiser: chosen ?? "none",
      "predict-n": predictSamples,
      alpha,
      n0,
      n,
      batch: batchSize,
    },
    role: "answer",
    domain: "input",
    answer(input) {
      const counts = sampleCounts(base, input.x, {
        sigma,
        samples: predictSamples,
        classes,
        batchSize,
        seed: seedOf(input.random),
      });
      const m = input.x.shape[0];
      const labels = new Int32Array(m);
      const scores = new Float32Array(m * classes);
      for (let i = 0; i < m; i++) {
        const row = counts.subarray(i * classes, (i + 1) * classes);
        labels[i] = predictFromCounts(row, alpha);
        row.forEach((count, c) => scores[i * classes + c] = count / predictSamples);
      }
      return { labels, scores };
    },
    certify: (x, request) => runSteps(certifySteps(x, request)),
    certifySteps,
    sampleProbabilities(x, random) {
      return tf.tidy(() => {
        const noisy = x.add(tf.randomNormal(x.shape, 0, sigma, "float32", seedOf(random)));
        const input = denoiser ? denoiser.apply(noisy, { training: false }) as tf.Tensor : noisy;
        return probabilities(split.model.apply(input, { training: false }) as tf.Tensor);
      });
    },
    dispose() {
      denoiser?.dispose();
    },
  };
}

/** The smoothing stage's factory: no profile needed unless a denoiser is asked for. */
export const SMOOTHING_FACTORY: StageFactory = {
  name: SMOOTHING,
  summary:
    "randomized smoothing (Cohen et al. 2019), denoised (Salman et al. 2020): answers or abstains, certifies L2",
  modalities: ["image", "audio"],
  needsProfile: false,
  create: createSmoothing,
};
