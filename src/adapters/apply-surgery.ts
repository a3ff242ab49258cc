/**
 * Runs surgery passes in order. Each pass is checked against the model as the earlier passes left
 * it; a pass that does not fit stops the run with its one-line error (the model may then hold the
 * earlier passes' changes: discard it). The report says what each pass did, the parameters it
 * added, what trains afterwards and, given a batch, the loss before and after it (the step-0
 * change: 0 for function-preserving passes).
 */
import type { CausalLM } from '../models/causal-lm.js';
import { ForwardContext } from '../models/forward-context.js';
import { nextTokenTargets } from '../models/causal-lm.js';
import { noGrad, Rng, withScope, type Tensor } from '../tensor/index.js';
import { countParameters, trainableParameters } from '../lora/index.js';
import type { SurgeryPass, SurgeryReport, SurgeryStepReport } from './surgery-pass.js';

export interface SurgeryOptions {
  /** Seed of new weights (default 0). */
  seed?: number;
  /** A batch to measure each pass's step-0 loss change on: ids [B, T] and optional targets. */
  batch?: { ids: Tensor; targets?: Tensor };
}

export interface SurgeryResult {
  model: CausalLM;
  report: SurgeryReport;
}

/** Mean next-token loss of the model on a batch (eval mode, no gradients). */
export function batchLoss(model: CausalLM, ids: Tensor, targets?: Tensor): number {
  return withScope(() => noGrad(() => model.loss(ids, targets ?? nextTokenTargets(ids), ForwardContext.eval()).item()));
}

function uniqueCount(model: CausalLM): number {
  return countParameters(new Set(model.parameters().values()));
}

export function applySurgery(model: CausalLM, passes: readonly SurgeryPass[], opts: SurgeryOptions = {}): SurgeryResult {
  const rng = new Rng(opts.seed ?? 0);
  const steps: SurgeryStepReport[] = [];
  for (const pass of passes) {
    const label = pass.spec ?? pass.name;
    const problem = pass.check(model);
    if (problem !== null) throw new Error(`surgery pass '${label}': ${problem}`);
    const notes: string[] = [];
    const paramsBefore = uniqueCount(model);
    const lossBefore = opts.batch ? batchLoss(model, opts.batch.ids, opts.batch.targets) : null;
    pass.apply(model, { rng, note: (line) => notes.push(line) });
    const paramsAfter = uniqueCount(model);
    const step: SurgeryStepReport = {
      name: pass.name,
      spec: label,
      configKeys: [...pass.configKeys],
      notes,
      paramsBefore,
      paramsAfter,
      added: paramsAfter - paramsBefore,
      trainable: countParameters(trainableParameters(model).values()),
    };
    if (opts.batch && lossBefore !== null) {
      const after = batchLoss(model, opts.batch.ids, opts.batch.targets);
      step.loss = { before: lossBefore, after, change: after - lossBefore };
    }
    steps.push(step);
  }
  return { model, report: { passes: steps } };
}

/** The report as text lines (for the CLI). */
export function formatSurgeryReport(report: SurgeryReport): string[] {
  const lines: string[] = [];
  for (const s of report.passes) {
    lines.push(`${s.spec}: +${s.added} parameters (${s.paramsBefore} -> ${s.paramsAfter}), ${s.trainable} trainable${s.configKeys.length ? `; config ${s.configKeys.join(', ')}` : ''}`);
    for (const n of s.notes) lines.push(`  ${n}`);
    if (s.loss) lines.push(`  step-0 loss on the batch: ${s.loss.before.toFixed(6)} -> ${s.loss.after.toFixed(6)} (change ${s.loss.change >= 0 ? '+' : ''}${s.loss.change.toExponential(3)})`);
  }
  return lines;
}
