/**
 * Validation loss: the mean next-token NLL over every target of a packed set, in fixed order,
 * without gradients, with the model in eval mode and a fresh seeded RNG (routers that draw at
 * inference, e.g. random drop, give the same number every time).
 */
import type { PackedSequences } from '../data/packing.js';
import { IGNORE_INDEX, type CausalLM } from '../models/causal-lm.js';
import { ForwardContext } from '../models/forward-context.js';
import { noGrad, ops, Rng, Tensor, withScope } from '../tensor/index.js';

export interface EvalSet {
  packed: PackedSequences;
  /** Sequences per forward pass (default 8). */
  batchSize?: number;
  /** Evaluate only the first N batches (default: all). */
  maxBatches?: number | null;
}

export interface EvalResult {
  /** Mean NLL per target token (nats). */
  loss: number;
  /** exp(loss). */
  ppl: number;
  /** Target tokens scored. */
  tokens: number;
  /** Mean true experts per token over the MoE layers (null for dense models). */
  load: number | null;
}

export function evaluateLoss(model: CausalLM, set: EvalSet, seed = 0): EvalResult {
  const { packed } = set;
  const B = Math.max(1, set.batchSize ?? 8);
  const T = packed.seqLen;
  const rng = new Rng(seed);
  let total = 0;
  let tokens = 0;
  let loadSum = 0;
  let loadTokens = 0;
  const batches = Math.ceil(packed.count / B);
  const limit = set.maxBatches == null ? batches : Math.min(batches, set.maxBatches);
  for (let b = 0; b < limit; b++) {
    const lo = b * B;
    const n = Math.min(B, packed.count - lo);
    withScope(() => noGrad(() => {
      const ids = new Tensor(packed.inputIds.slice(lo * T, (lo + n) * T), [n, T]);
      const labels = new Tensor(packed.labels.slice(lo * T, (lo + n) * T), [n, T]);
      const ctx = new ForwardContext(false, rng);
      const logits = model.forward(ids, { ctx });
      total += ops.crossEntropy(logits, labels, { ignoreIndex: IGNORE_INDEX, reduction: 'sum' }).item();
      for (let i = 0; i < labels.size; i++) if (labels.i32[i] !== IGNORE_INDEX) tokens++;
      for (const r of ctx.routing) {
        loadSum += r.routing.stats.trueExpertsPerToken * r.routing.stats.tokens;
        loadTokens += r.routing.stats.tokens;
      }
    }));
  }
  const loss = tokens === 0 ? NaN : total / tokens;
  return { loss, ppl: Math.exp(loss), tokens, load: loadTokens === 0 ? null : loadSum / loadTokens };
}
