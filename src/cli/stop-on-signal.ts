/**
 * Ctrl-C during training: each trainer a recipe runs gets the stop handler (src/train/stop-signal.ts).
 * A run stopped by a signal still writes its checkpoint and its results, then exits with the
 * shell's status for that signal (128 + signal number: 130 for SIGINT, 143 for SIGTERM), so
 * schedulers and `a && b` chains do not take an interrupted run for a finished one.
 */
import { installStopSignal } from '../train/stop-signal.js';
import type { Trainer } from '../train/trainer.js';

const SIGNAL_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

let received: NodeJS.Signals | null = null;

/** The exit status owed to a stop signal received during this process's training, or null. */
export function interruptExitCode(): number | null {
  return received === null ? null : (SIGNAL_EXIT[received] ?? 130);
}

/** The signal that stopped training, if one did. */
export function interruptSignal(): NodeJS.Signals | null {
  return received;
}

export interface StopHandlers {
  onTrainer(trainer: Trainer): void;
  /** Removes the handler of the last trainer. */
  dispose(): void;
}

export function stopHandlers(): StopHandlers {
  let remove: (() => void) | null = null;
  return {
    onTrainer(trainer) {
      remove?.();
      remove = installStopSignal(trainer, { onSignal: (sig) => { received ??= sig; } });
    },
    dispose() {
      remove?.();
      remove = null;
    },
  };
}
