/**
 * `deno task demo`: a short evaluation on the embedded default (Fashion-MNIST LeNet and its committed
 * profile): 300 test images, FGSM and PGD at the paper's budget and at a standard / smaller one, honest
 * protocol beside the paper-oracle protocol and both controls. Prints the table; writes out/demo/.
 *
 * @module
 */
import { runMain } from "./args.ts";
import { runEvaluation } from "./eval.ts";
import { DEFAULT_MODEL_DIR } from "../pipeline.ts";

async function main(): Promise<void> {
  const { markdown } = await runEvaluation({
    modelDir: DEFAULT_MODEL_DIR,
    data: "fashion-mnist",
    n: 300,
    defenses: "nip",
    attacks: ["fgsm", "pgd-linf"],
    budgets: ["paper", "standard", "0.1"],
    protocols: ["honest", "paper-oracle"],
    out: "out/demo",
    backend: "wasm",
    seed: 1,
    title: "NIP demo on the embedded default (Fashion-MNIST LeNet)",
    attackOverrides: { fgsm: { epsilonSearch: 100 } },
  });
  console.log(markdown);
  console.log(
    "Read it as: a defense has shown something only where its DSR clearly beats its noise control and its " +
      "own control while its benign accuracy stays near the bare accuracy. 'paper-oracle' uses true labels and " +
      "benign twins; it is shown only to compare with the paper.\nFull results: out/demo/eval.json, out/demo/eval.md",
  );
}

if (import.meta.main) await runMain(main, import.meta.url);
