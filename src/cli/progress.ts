/**
 * Progress display for long tasks (training, calibration, evaluation): a bar on a terminal, plain lines
 * at most every few seconds when piped, so CI logs stay readable.
 *
 * @module
 */
import cliProgress from "cli-progress";
import process from "node:process";

/** A progress reporter for one stage at a time. */
export interface Progress {
  /** Reports `done` of `total` for the stage named `stage`. */
  update(stage: string, done: number, total: number): void;
  /** Ends the current bar. */
  stop(): void;
}

/** A bar on an interactive terminal; timestamped lines (at most one per 2 s per stage) otherwise. */
export function createProgress(): Progress {
  if (Deno.stderr.isTerminal()) {
    const bar = new cliProgress.SingleBar(
      { format: "{stage} [{bar}] {value}/{total} {percentage}% eta {eta}s", stream: process.stderr },
      cliProgress.Presets.shades_classic,
    );
    let current = "";
    return {
      update(stage, done, total) {
        if (stage !== current) {
          if (current) bar.stop();
          current = stage;
          bar.start(total, done, { stage });
        } else bar.update(done, { stage });
      },
      stop() {
        if (current) bar.stop();
        current = "";
      },
    };
  }
  let lastStage = "";
  let lastTime = 0;
  return {
    update(stage, done, total) {
      const now = performance.now();
      if (stage !== lastStage || done === total || now - lastTime > 2000) {
        console.error(`[${new Date().toISOString().slice(11, 19)}] ${stage}: ${done}/${total}`);
        lastStage = stage;
        lastTime = now;
      }
    },
    stop() {
      lastStage = "";
    },
  };
}
