/**
 * A training run in a child process, for the crash tests: `node --import tsx train-child.ts JSON`
 * with JSON = {runDir, steps, checkpointEvery, mode, at}.
 *   mode 'kill':   at the checkpoint of step `at`, after the parameters are written, writes
 *                  RUN_DIR/marker and hangs, so the parent can SIGKILL it mid-checkpoint;
 *   mode 'sigint': installs the Ctrl-C handler; after step `at` writes RUN_DIR/marker and waits
 *                  (synchronously) for RUN_DIR/sent, which the parent writes after sending SIGINT.
 * Prints {"step", "stopped", "checkpoint"} on success.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { installStopSignal } from '../../src/train/stop-signal.js';
import { makeTinyTrainer } from './train-setup.js';

const args = JSON.parse(process.argv[2] ?? '{}') as { runDir: string; steps: number; checkpointEvery: number; mode: 'kill' | 'sigint'; at: number; lora?: boolean };
const marker = path.join(args.runDir, 'marker');
const sent = path.join(args.runDir, 'sent');
const sleeper = new Int32Array(new SharedArrayBuffer(4));

const { trainer } = makeTinyTrainer({
  runDir: args.runDir, steps: args.steps, checkpointEvery: args.checkpointEvery, lora: args.lora,
  hooks: {
    midCheckpointWrite: async (_tmp, step) => {
      if (args.mode !== 'kill' || step !== args.at) return;
      fs.writeFileSync(marker, String(step));
      setInterval(() => {}, 1000);
      await new Promise(() => {});
    },
    afterStep: (m) => {
      if (args.mode !== 'sigint' || m.step !== args.at) return;
      fs.writeFileSync(marker, String(m.step));
      const until = Date.now() + 20_000;
      while (!fs.existsSync(sent) && Date.now() < until) Atomics.wait(sleeper, 0, 0, 20);
    },
  },
});
const uninstall = args.mode === 'sigint' ? installStopSignal(trainer, { log: () => {} }) : () => {};
trainer.resume();
const res = await trainer.run();
uninstall();
process.stdout.write(`${JSON.stringify({ step: res.step, stopped: res.stopped, checkpoint: res.lastCheckpoint })}\n`);
