/**
 * Training progress on the terminal: a cli-progress bar when the stream is a TTY, plain lines every
 * N steps otherwise (logs, CI). Both show step, loss, aux losses, load (true experts per token),
 * tokens/s and ETA; eval results and messages are printed as lines in both modes.
 */
import cliProgress from 'cli-progress';
import type { StepMetrics } from './metrics.js';

export interface ProgressSink {
  start(info: { totalSteps: number; startStep: number }): void;
  step(m: StepMetrics, auxNames: readonly string[]): void;
  message(line: string): void;
  stop(): void;
}

export interface ProgressOptions {
  stream?: NodeJS.WriteStream | NodeJS.WritableStream;
  /** Force the bar (true) or plain lines (false); default: whether the stream is a TTY. */
  tty?: boolean;
  /** Plain mode: a line every N steps (default 10; the first and last step always). */
  every?: number;
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

function fmt(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined) return '-';
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? x.toExponential(2) : x.toFixed(digits);
}

/** The one-line summary of a step (plain mode and tests). */
export function formatStepLine(m: StepMetrics, auxNames: readonly string[], totalSteps: number, etaSeconds: number): string {
  const parts = [`step ${m.step}/${totalSteps}`, `loss ${fmt(m.loss)}`, `lm ${fmt(m.lm_loss)}`];
  for (const a of auxNames) parts.push(`${a} ${fmt(m[a] as number | null)}`);
  if (m.load !== null) parts.push(`load ${fmt(m.load, 2)}`);
  parts.push(`lr ${m.lr.toExponential(2)}`, `${Math.round(m.tokens_per_s)} tok/s`, `eta ${formatDuration(etaSeconds)}`);
  return parts.join(' | ');
}

export function createProgress(opts: ProgressOptions = {}): ProgressSink {
  const stream = opts.stream ?? process.stdout;
  const tty = opts.tty ?? Boolean((stream as NodeJS.WriteStream).isTTY);
  const every = Math.max(1, opts.every ?? 10);
  let total = 0;
  let start = 0;
  let t0 = 0;
  let bar: cliProgress.SingleBar | null = null;
  const eta = (step: number): number => {
    const done = step - start;
    const elapsed = (Date.now() - t0) / 1000;
    return done > 0 ? (elapsed / done) * (total - step) : NaN;
  };
  return {
    start(info) {
      total = info.totalSteps;
      start = info.startStep;
      t0 = Date.now();
      if (tty) {
        bar = new cliProgress.SingleBar({
          stream: stream as NodeJS.WritableStream,
          format: '{bar} {value}/{total} | {summary}',
          barsize: 24,
          hideCursor: true,
          clearOnComplete: false,
          fps: 5,
        }, cliProgress.Presets.shades_classic);
        bar.start(total, start, { summary: 'starting' });
      }
    },
    step(m, auxNames) {
      const line = formatStepLine(m, auxNames, total, eta(m.step));
      if (bar) bar.update(m.step, { summary: line.slice(line.indexOf('|') + 2) });
      else if (m.step === start + 1 || m.step % every === 0 || m.step === total) stream.write(`${line}\n`);
    },
    message(line) {
      if (bar) {
        // print above the bar
        (stream as NodeJS.WriteStream).write('\r\x1b[K');
        stream.write(`${line}\n`);
        bar.render?.();
      } else stream.write(`${line}\n`);
    },
    stop() {
      bar?.stop();
      bar = null;
    },
  };
}

/** A sink that prints nothing (library use, tests). */
export const silentProgress: ProgressSink = { start() {}, step() {}, message() {}, stop() {} };
