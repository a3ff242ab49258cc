/** Ctrl-C during training: each trainer a recipe runs gets the stop handler (src/train/stop-signal.ts). */
import { installStopSignal } from '../train/stop-signal.js';
import type { Trainer } from '../train/trainer.js';

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
      remove = installStopSignal(trainer);
    },
    dispose() {
      remove?.();
      remove = null;
    },
  };
}
