/**
 * Perplexity: the mean next-token negative log-likelihood over all scored tokens of a set of
 * sequences, each scored on its own (no packing, no padding: position t of a sequence predicts its
 * token t + 1). With `batch` > 1, sequences of the same length share one forward pass; that changes
 * nothing for per-token routers, but capacity-bound and expert-choice routers see the whole batch.
 * With `window`, sequences longer than its max length are scored in strided sliding windows
 * (sliding-windows.ts); the NLL is still the mean over every scored token.
 */
import type { CausalLM } from '../models/causal-lm.js';
import { IGNORE_INDEX } from '../models/causal-lm.js';
import { ForwardContext } from '../models/forward-context.js';
import type { Router } from '../routers/router.js';
import { noGrad, ops, Tensor, withScope } from '../tensor/index.js';
import { withRouter } from './router-choice.js';
import { RouterStatsAccumulator, type RouterStatsSummary } from '../routers/stats.js';
import { routingSummary } from './flop-dims.js';
import { slidingWindows, type WindowOptions } from './sliding-windows.js';

export interface PerplexityOptions {
  /** Route every MoE layer with this router for the evaluation (the model's own is restored). */
  router?: Router;
  /** Sequences of equal length per forward pass (default 1). */
  batch?: number;
  /** Called after each forward pass with sequences done and total. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Per sequence, which tokens are scored (1) and which are context (0), e.g. a prompt before its
   * completion; null or absent: every token after the first.
   */
  masks?: readonly (Uint8Array | null)[];
  /** Score sequences longer than window.maxLength in windows every window.stride tokens (default: whole sequences). */
  window?: WindowOptions;
}

export interface PerplexityResult {
  /** Mean next-token NLL (nats) over all scored tokens. */
  nll: number;
  ppl: number;
  /** Scored tokens (without masks or windows: the sum over sequences of length - 1). */
  tokens: number;
  sequences: number;
  /** Router statistics over the positions that predict a scored token; null for dense models. */
  routerStats: RouterStatsSummary | null;
}

/** Batches of sequence indices: equal lengths together, at most `batch` per group, input order within. */
function groupsOf(lengths: readonly number[], batch: number): number[][] {
  if (batch <= 1) return lengths.map((_, i) => [i]);
  const byLength = new Map<number, number[]>();
  lengths.forEach((n, i) => {
    const list = byLength.get(n);
    if (list) list.push(i);
    else byLength.set(n, [i]);
  });
  const out: number[][] = [];
  for (const list of byLength.values()) for (let i = 0; i < list.length; i += batch) out.push(list.slice(i, i + batch));
  return out;
}

export function perplexity(model: CausalLM, inputs: readonly ArrayLike<number>[], opts: PerplexityOptions = {}): PerplexityResult {
  const batch = opts.batch ?? 1;
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`perplexity: batch must be a positive integer, got ${batch}`);
  if (opts.masks && opts.masks.length !== inputs.length) throw new Error(`perplexity: ${opts.masks.length} masks for ${inputs.length} sequences`);
  const windows = opts.window ? slidingWindows(inputs, opts.window, opts.masks) : null;
  const sequences: readonly ArrayLike<number>[] = windows ? windows.map((w) => w.ids) : inputs;
  const masks = windows ? windows.map((w) => w.mask) : opts.masks;
  const tally = new RouterStatsAccumulator();
  let total = 0;
  let tokens = 0;
  let done = 0;
  const groups = groupsOf(sequences.map((s) => s.length), batch).filter((g) => sequences[g[0]!]!.length >= 2);
  const scoredSequences = groups.reduce((n, g) => n + g.length, 0);
  if (scoredSequences === 0) throw new Error('perplexity: no scored tokens (every sequence is shorter than 2 tokens)');
  withRouter(model, opts.router, () => {
    for (const group of groups) {
      const T = sequences[group[0]!]!.length;
      const B = group.length;
      const ids = new Int32Array(B * T);
      const targets = new Int32Array(B * T);
      const scored = new Uint8Array(B * T);
      let groupTokens = 0;
      group.forEach((s, b) => {
        const seq = sequences[s]!;
        const mask = masks?.[s] ?? null;
        for (let t = 0; t < T; t++) {
          const on = t + 1 < T && (mask === null || mask[t + 1] === 1);
          ids[b * T + t] = seq[t]!;
          targets[b * T + t] = on ? seq[t + 1]! : IGNORE_INDEX;
          scored[b * T + t] = on ? 1 : 0;
          if (on) groupTokens++;
        }
      });
      withScope(() => noGrad(() => {
        const ctx = ForwardContext.eval();
        const logits = model.forward(new Tensor(ids, [B, T]), { ctx });
        total += ops.crossEntropy(logits, new Tensor(targets, [B, T]), { ignoreIndex: IGNORE_INDEX, reduction: 'sum' }).item();
        tally.add(ctx.routing, scored);
      }));
      tokens += groupTokens;
      done += B;
      opts.onProgress?.(done, scoredSequences);
    }
  });
  if (tokens === 0) throw new Error('perplexity: no scored tokens (every completion is empty)');
  const nll = total / tokens;
  return { nll, ppl: Math.exp(nll), tokens, sequences: inputs.length, routerStats: routingSummary(tally, model.config) };
}
