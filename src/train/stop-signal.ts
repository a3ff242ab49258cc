/**
 * Ctrl-C handling for a training run: the first SIGINT (or SIGTERM) asks the trainer to stop after
 * the current step, which writes a checkpoint and returns normally; a second one exits at once
 * (status 130) without waiting. Returns a function that removes the handlers. The CLI installs this
 * around `trainer.run()`.
 */
export interface Stoppable {
  requestStop(): void;
}

export function installStopSignal(trainer: Stoppable, opts: { signals?: NodeJS.Signals[]; log?: (line: string) => void; onSignal?: (sig: NodeJS.Signals) => void } = {}): () => void {
  const signals = opts.signals ?? ['SIGINT', 'SIGTERM'];
  const log = opts.log ?? ((line: string) => process.stderr.write(`\n${line}\n`));
  let count = 0;
  const handler = (sig: NodeJS.Signals): void => {
    count++;
    opts.onSignal?.(sig);
    if (count === 1) {
      log(`${sig}: stopping after this step and writing a checkpoint (press Ctrl-C again to quit at once)`);
      trainer.requestStop();
    } else {
      log(`${sig} again: quitting without a checkpoint`);
      process.exit(sig === 'SIGTERM' ? 143 : 130);
    }
  };
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
  };
}
