/**
 * RUN_DIR/metrics.jsonl: one JSON object per optimizer step, appended as the step completes.
 *
 * Fields (every step): step (1-based count of completed updates), epoch (fractional passes over the
 * data, when known), loss (lm_loss + sum of weighted aux losses), lm_loss, every aux loss by name
 * (unweighted value) and `<name>_weight` (its weight at this step), load (mean true experts per
 * token over all routing records, null for dense models), load_per_layer (one value per routing
 * module in forward order: MoE blocks, Mo-LoRA layers), tokens_per_expert (per routing module, the
 * FLOP-costing (token, expert) pairs summed over the step's micro-batches), lr, grad_norm (before
 * clipping), clip_scale (1 when not clipped), tokens (input tokens this step), targets (scored
 * tokens), tokens_per_s, elapsed_s (training time so far, excluding eval and checkpoints).
 * On eval steps also: eval_loss, eval_ppl, eval_load.
 *
 * On resume, lines after the checkpoint's step (and a torn last line) are dropped, so the file
 * always reads as one run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withPath } from '../io/os-error.js';

export interface StepMetrics {
  step: number;
  epoch: number | null;
  loss: number;
  lm_loss: number;
  load: number | null;
  load_per_layer: number[];
  tokens_per_expert: number[][];
  lr: number;
  grad_norm: number;
  clip_scale: number;
  tokens: number;
  targets: number;
  tokens_per_s: number;
  elapsed_s: number;
  eval_loss?: number;
  eval_ppl?: number;
  eval_load?: number | null;
  /** Aux loss values and weights by name. */
  [aux: string]: number | number[] | number[][] | null | undefined;
}

export const METRICS_FILE = 'metrics.jsonl';

export class MetricsWriter {
  readonly path: string;
  private fd: number | null = null;

  constructor(runDir: string) {
    this.path = path.join(runDir, METRICS_FILE);
  }

  /** Keeps only the complete lines with step <= `step` (resume), or empties the file (step 0). */
  truncateAfter(step: number): void {
    if (!fs.existsSync(this.path)) return;
    const kept: string[] = [];
    for (const line of fs.readFileSync(this.path, 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      let rec: { step?: unknown };
      try {
        rec = JSON.parse(line) as { step?: unknown };
      } catch {
        break; // a torn last line from a killed run
      }
      if (typeof rec.step === 'number' && rec.step <= step) kept.push(line);
    }
    try {
      fs.writeFileSync(this.path, kept.length > 0 ? `${kept.join('\n')}\n` : '');
    } catch (err) {
      throw withPath(err, this.path);
    }
  }

  append(m: StepMetrics): void {
    try {
      if (this.fd === null) {
        fs.mkdirSync(path.dirname(this.path), { recursive: true });
        this.fd = fs.openSync(this.path, 'a');
      }
      fs.writeSync(this.fd, `${JSON.stringify(m, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))}\n`);
    } catch (err) {
      throw withPath(err, this.path); // ENOSPC on a descriptor names no file by itself
    }
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

/** Reads a metrics file (tests, reports). */
export function readMetrics(file: string): StepMetrics[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as StepMetrics);
}
