/**
 * The report's sections beyond DSR: benign accuracy after each defense (the paper's Table 4), time per
 * example (Table 5), robust accuracy under adaptive attacks (and the detection under attacks aware of it),
 * certified accuracy against radius, and sensitivity sweeps of a defense's settings.
 *
 * @module
 */
import { certificationChart, worstEmpirical } from "../eval/certification_report.ts";
import type { AdaptiveReport } from "../eval/adaptive.ts";
import type { AdaptiveDetectionReport } from "../eval/detection_adaptive.ts";
import { num } from "../eval/report.ts";
import { renderBarChart } from "./bar_chart.ts";
import { describeRun, HONEST, percent, sourceName } from "./captions.ts";
import type { CertifyInput, EvalInput, SensitivitySweep } from "./inputs.ts";
import { renderLineChart } from "./line_chart.ts";
import type { Block, Figure, Section } from "./page.ts";
import { colourAt, isValue, shortNumber } from "./svg.ts";

/** Section "Benign accuracy after each defense" (Table 4): a chart with the bare model first, and the table. */
export function benignSection(inputs: readonly EvalInput[]): Section {
  const blocks = inputs.flatMap((input): Block[] => {
    const report = input.report;
    if (!report || report.defenses.length === 0) return [];
    const { benign } = report;
    const source = sourceName(input.path);
    const title = "Benign accuracy after each defense";
    const defenses = report.defenses.map((d) => ({ d, b: benign.defenses[d.name] }));
    const figure: Figure = {
      key: `benign-${source}`,
      title,
      svg: renderBarChart({
        title,
        description:
          `Bars: accuracy on benign test examples without defense and after each defense. ${source}.`,
        yLabel: "benign accuracy",
        series: [{ name: "benign accuracy", colour: colourAt(0) }, {
          name: "labels flipped",
          colour: colourAt(1),
        }],
        groups: [
          { label: "none (bare model)", values: [benign.accuracy, 0] },
          ...defenses.map(({ d, b }) => ({ label: d.name, values: [b?.accuracy, b?.labelFlips] })),
        ],
        max: 1,
        format: percent,
      }),
      caption:
        `${HONEST} ${describeRun(input.meta)}; ${benign.examples} benign test examples. Control: the bare ` +
        `model (first group, ${
          percent(benign.accuracy)
        }). Beside each: the benign labels the defense changed. Source: ${source}.`,
    };
    return [{
      source,
      figures: [figure],
      tables: [{
        caption: `Benign accuracy after defense (${source}), ${benign.examples} test examples.`,
        header: ["defense", "benign accuracy", "labels flipped", "settings"],
        rows: [
          ["none (bare model)", percent(benign.accuracy), percent(0), "–"],
          ...defenses.map(({ d, b }) => [
            d.name,
            percent(b?.accuracy),
            percent(b?.labelFlips),
            d.stages.map((s) => s.description).join("; "),
          ]),
        ],
      }],
    }];
  });
  return {
    id: "benign",
    heading: "Benign accuracy after each defense (Table 4)",
    intro:
      "What a defense costs on clean inputs: accuracy on the benign test examples after it, against the bare model.",
    blocks,
  };
}

/** Section "Time per example" (Table 5): ms per benign and per adversarial example, and the ratio to the bare model. */
export function timeSection(inputs: readonly EvalInput[]): Section {
  const blocks = inputs.flatMap((input): Block[] => {
    const report = input.report;
    if (!report || report.defenses.length === 0) return [];
    const bare = report.benign.msPerExampleBare;
    const adversarialMs = (name: string) => {
      const ms = report.rows.map((r) => r.defenses[name]?.msPerExample).filter(isValue);
      return ms.length === 0 ? NaN : ms.reduce((a, b) => a + b, 0) / ms.length;
    };
    const source = sourceName(input.path);
    return [{
      source,
      figures: [],
      tables: [{
        caption: `Milliseconds per example in the evaluation run (${source}; ${describeRun(input.meta)}): ` +
          "wall-clock within one run, not a benchmark (bench/ and BENCHMARKS.md give ratios under control).",
        header: [
          "defense",
          "ms per benign example",
          "x bare model",
          "ms per adversarial example (mean over attacks)",
        ],
        rows: [
          ["none (bare model)", num(bare, 3), "1.0", "–"],
          ...report.defenses.map((d) => {
            const ms = report.benign.defenses[d.name]?.msPerExample;
            return [
              d.name,
              num(ms, 3),
              isValue(ms) && bare > 0 ? num(ms / bare, 1) : "–",
              num(adversarialMs(d.name), 3),
            ];
          }),
        ],
      }],
    }];
  });
  return {
    id: "time",
    heading: "Time per example (Table 5)",
    intro:
      "Milliseconds per example for each defense beside the bare model's forward, as measured in the run.",
    blocks,
  };
}

function adaptiveFigure(input: EvalInput, reports: AdaptiveReport[]): Figure {
  const keyOf = (r: AdaptiveReport["rows"][number]) => `${r.label}\n${r.against}, ${r.budget}`;
  const keys = [...new Set(reports.flatMap((a) => a.rows.map(keyOf)))];
  const source = sourceName(input.path);
  const title = "Robust accuracy under adaptive attacks";
  const budgets = [
    ...new Set(reports.flatMap((a) => a.rows.map((r) => `${r.label} at ${r.budget} (${r.budgetSource})`))),
  ];
  const attacked = reports.map((a) =>
    `${a.defense.name}: ${a.rows.map((r) => r.attacked).join("/")} of ${a.examples}`
  );
  return {
    key: `adaptive-${source}`,
    title,
    svg: renderBarChart({
      title,
      description:
        `Grouped bars: robust accuracy of each defense under each adaptive attack, clean accuracy first. ${source}.`,
      yLabel: "robust accuracy",
      xLabel: "clean control, then attack (against, budget)",
      series: reports.map((a, i) => ({ name: a.defense.name, colour: colourAt(i) })),
      groups: [
        { label: "clean, no attack\n(the ceiling)", values: reports.map((a) => a.cleanAccuracyDefended) },
        ...keys.map((key) => ({
          label: key,
          values: reports.map((a) => a.rows.find((r) => keyOf(r) === key)?.robustAccuracy),
        })),
      ],
      max: 1,
      format: percent,
    }),
    caption:
      "Robust accuracy = test examples the defended pipeline classifies correctly both clean and after the " +
      "attack, over all test examples; the attacker knows the defense (white-box through BPDA gradients, or " +
      `black-box queries). ${HONEST} ${describeRun(input.meta)}. Budgets: ${budgets.join("; ")}; attacked: ` +
      `${
        attacked.join("; ")
      }. Controls: clean accuracy after each defense (first group, the ceiling of every robust ` +
      `accuracy) and of the bare model, ${percent(reports[0].cleanAccuracy)}. Source: ${source}.`,
  };
}

function adaptiveDetectionFigure(input: EvalInput, report: AdaptiveDetectionReport): Figure {
  const source = sourceName(input.path);
  const title = "Detection under attacks aware of it: rejected-or-correct";
  const budget = (r: AdaptiveDetectionReport["rows"][number]) =>
    `${r.norm === "l2" ? "L2" : "L_inf"} ${r.epsilon}`;
  return {
    key: `adaptive-detection-${source}`,
    title,
    svg: renderBarChart({
      title,
      description:
        `Bars: rejected-or-correct per adaptive attack on the detection, worst over runs. ${source}.`,
      yLabel: "rejected-or-correct",
      xLabel: "clean control, then attack and budget",
      series: [{ name: `worst of ${report.runs} runs`, colour: colourAt(0) }],
      groups: [
        { label: "benign, no attack\n(accepted and correct)", values: [report.benign.acceptedAndCorrect] },
        ...report.rows.map((r) => ({ label: `${r.attack}\n${budget(r)}`, values: [r.worst] })),
      ],
      max: 1,
      format: percent,
    }),
    caption:
      `${report.description}; flagged at alpha = ${report.alpha}. Rejected-or-correct: attacked inputs ` +
      `flagged, or accepted and classified correctly; per-example worst case over ${report.runs} runs. ${HONEST} ` +
      `${describeRun(input.meta)}. Budgets and inputs attacked: ${
        report.rows.map((r) => `${r.attack} at ${budget(r)}: ${r.attacked}`).join("; ")
      }. Control: benign test inputs accepted and correct (first bar, of ${report.benign.examples}). Source: ${source}.`,
  };
}

/** Section "Adaptive attacks": robust accuracy per defense, and the detection under attacks aware of it. */
export function adaptiveSection(inputs: readonly EvalInput[]): Section {
  const blocks = inputs.flatMap((input): Block[] => {
    const figures: Figure[] = [];
    const reports = input.adaptive.filter((a) => a.rows.length > 0);
    if (reports.length > 0) figures.push(adaptiveFigure(input, reports));
    if (input.adaptiveDetection?.rows.length) {
      figures.push(adaptiveDetectionFigure(input, input.adaptiveDetection));
    }
    if (figures.length === 0) return [];
    const rows = reports.flatMap((a) =>
      a.rows.map((r) => [
        a.defense.name,
        r.label,
        r.against,
        `${r.budget} (${r.budgetSource})`,
        `${r.attacked}/${r.examples}`,
        percent(r.robustAccuracy),
        percent(a.cleanAccuracyDefended),
        percent(r.asrDefended),
        percent(r.dsrOnAdversarial),
      ])
    );
    const header = [
      "defense",
      "attack",
      "against",
      "budget",
      "attacked",
      "robust acc.",
      "clean acc. defended",
      "ASR defended",
      "DSR on adv.",
    ];
    const caption = `Adaptive attacks (${
      sourceName(input.path)
    }): robust accuracy with the clean ceiling beside it.`;
    return [{
      source: sourceName(input.path),
      figures,
      tables: rows.length > 0 ? [{ caption, header, rows }] : [],
    }];
  });
  return {
    id: "adaptive",
    heading: "Adaptive attacks: robust accuracy",
    intro:
      "Attacks that know the defense. Robust accuracy counts every test example, so it is bounded by the " +
      "defended clean accuracy drawn first.",
    blocks,
  };
}

function certifiedBlock(input: CertifyInput): Block {
  const { report } = input;
  const source = sourceName(input.path);
  const chart = certificationChart(report);
  const title = `Certified accuracy against L2 radius: ${report.title}`;
  const controls = report.bySigma.flatMap(({ sigma, variants }) =>
    variants.map((v) =>
      `sigma ${sigma} ${v.name}: bare ${percent(v.bareAccuracy)}, noise ${percent(v.noisyBaseAccuracy)}`
    )
  );
  const rows = report.bySigma.flatMap(({ sigma, variants }) =>
    variants.map((v) => [
      String(sigma),
      v.name,
      percent(v.bareAccuracy),
      percent(v.noisyBaseAccuracy),
      percent(v.predictAccuracy),
      ...report.radii.map((r) => {
        const c = v.certified.find((x) => x.radius === r);
        return c && r <= v.maxRadius ? percent(c.accuracy) : "–";
      }),
      shortNumber(v.maxRadius),
      v.empirical?.length
        ? v.empirical.map((e) => `${e.epsilon}: ${percent(worstEmpirical(e))}`).join(", ")
        : "–",
    ])
  );
  return {
    source,
    figures: [{
      key: `certified-${source}`,
      title,
      svg: renderLineChart({ ...chart, title }),
      caption:
        `${report.data}; ${report.examples} test examples; CERTIFY with n0 = ${report.n0}, n = ${report.n}, ` +
        `alpha = ${report.alpha} (Cohen et al. 2019). Certified accuracy at r: the smoothed classifier answers the ` +
        `true class with a certified L2 radius >= r; each line stops at the largest radius its settings can certify. ` +
        `Controls (bare model on clean inputs; base classifier on one noisy copy at sigma): ${
          controls.join("; ")
        }. ` +
        `Source: ${source}.`,
    }],
    tables: [{
      caption:
        `Certified accuracy per variant (${source}); SmoothAdv: the worst empirical accuracy of its runs at ` +
        "each L2 epsilon, which must not fall below the certified figure.",
      header: [
        "sigma",
        "variant",
        "bare",
        "noise control",
        "PREDICT acc.",
        ...report.radii.map((r) => `r = ${r}`),
        "max r",
        "SmoothAdv worst",
      ],
      rows,
    }],
  };
}

/** Section "Certified accuracy against radius": per certification, its curves and table. */
export function certifiedSection(inputs: readonly CertifyInput[]): Section {
  return {
    id: "certified",
    heading: "Certified accuracy against radius",
    intro:
      "Randomized smoothing: the fraction of test examples answered correctly with a certified L2 radius of " +
      "at least r, beside the bare model and the random-noise control.",
    blocks: inputs.map(certifiedBlock),
  };
}

function sweepFigure(input: EvalInput, sweep: SensitivitySweep): Figure {
  const source = sourceName(input.path);
  const title = `Sensitivity to ${sweep.parameter}`;
  const points = [...sweep.points].sort((a, b) => a.value - b.value).map((p) => ({
    ...p,
    randomNoise: p.randomNoise ?? NaN,
  }));
  const bare = input.report?.benign.accuracy;
  return {
    key: `sweep-${sweep.parameter}-${source}`,
    title,
    svg: renderLineChart({
      title,
      description:
        `Lines: DSR, its random-noise control and benign accuracy as ${sweep.parameter} varies. ${source}.`,
      xLabel: sweep.parameter,
      yLabel: "rate",
      panels: [{
        series: [
          { name: "DSR", colour: colourAt(0), points: points.map((p) => ({ x: p.value, y: p.dsr })) },
          {
            name: "random-noise control",
            colour: colourAt(0),
            dashed: true,
            points: points.map((p) => ({ x: p.value, y: p.randomNoise })),
          },
          {
            name: "benign accuracy",
            colour: colourAt(1),
            dashed: true,
            points: points.map((p) => ({ x: p.value, y: p.benignAccuracy })),
          },
        ],
      }],
      xTicks: points.map((p) => p.value),
      max: 1,
      format: percent,
    }),
    caption:
      `${HONEST} ${describeRun(input.meta)}. Budgets: ${input.meta.budgets?.join(", ") ?? "as run"}. ` +
      `${points.length} settings of ${sweep.parameter} (${sweep.attack} at ${sweep.budget}). Controls: the ` +
      `random-noise control at the defense's own change (dashed, same colour) and benign accuracy beside the DSR` +
      `${isValue(bare) ? `; the bare model's benign accuracy is ${percent(bare)}` : ""}. Source: ${source}.`,
  };
}

/** Section "Sensitivity sweeps": per evaluation with a `sweep`, a chart per swept setting and its table. */
export function sweepSection(inputs: readonly EvalInput[]): Section {
  const blocks = inputs.flatMap((input): Block[] =>
    input.sweep?.length
      ? [{
        source: sourceName(input.path),
        figures: input.sweep.map((s) => sweepFigure(input, s)),
        tables: input.sweep.map((s) => ({
          caption: `Sensitivity to ${s.parameter} (${sourceName(input.path)}).`,
          header: [s.parameter, "DSR", "benign accuracy"],
          rows: [...s.points].sort((a, b) => a.value - b.value).map((
            p,
          ) => [shortNumber(p.value), percent(p.dsr), percent(p.benignAccuracy)]),
        })),
      }]
      : []
  );
  return {
    id: "sweeps",
    heading: "Sensitivity sweeps",
    intro: "DSR and benign accuracy as one setting of a defense varies (k1/k2, layer, eta, ...).",
    blocks,
  };
}
