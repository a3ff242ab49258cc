/**
 * A router sweep after training (recipe `eval.sweep`, and the demo): perplexity of the trained
 * model on its held-out sequences under each router of the given ranges, written as
 * sweep.{csv,json,svg,html} (the run report picks up RUN_DIR/sweep/sweep.json).
 */
import type { PackedSequences } from '../data/packing.js';
import { currentRouterText } from '../eval/router-choice.js';
import { perplexity } from '../eval/perplexity.js';
import { runSweep, type RouterSeries, type SweepPoint, type SweepResult } from '../eval/router-sweep.js';
import type { CausalLM } from '../models/causal-lm.js';
import { writeSweepOutputs, type SweepFiles } from '../report/sweep-report.js';
import { getBackend } from '../tensor/index.js';

/** The packed sequences as separate id arrays (the first `max` of them). */
export function packedRows(p: PackedSequences, max = Infinity): Int32Array[] {
  const n = Math.min(p.count, max);
  return Array.from({ length: n }, (_, i) => p.inputIds.subarray(i * p.seqLen, (i + 1) * p.seqLen));
}

export interface SweepRun {
  result: SweepResult;
  files: SweepFiles;
}

export function sweepPerplexity(model: CausalLM, sequences: readonly ArrayLike<number>[], series: readonly RouterSeries[], outDir: string,
  meta: { model: string; data: string }, onPoint?: (p: SweepPoint, i: number, total: number) => void): SweepRun {
  if (model.moeBlocks().length === 0) throw new Error(`router sweep: ${model.config.architecture} has no MoE layers to route`);
  const batch = Math.max(1, sequences.length);
  const result = runSweep(series, {
    task: 'ppl',
    defaultRouter: currentRouterText(model) ?? 'default',
    evaluate: (router) => {
      const r = perplexity(model, sequences, { router, batch });
      return { nll: r.nll, ppl: r.ppl, tokens: r.tokens, routerStats: r.routerStats };
    },
    onPoint,
  });
  const files = writeSweepOutputs(result, outDir, { ...meta, backend: getBackend().name, createdAt: new Date().toISOString() });
  return { result, files };
}
