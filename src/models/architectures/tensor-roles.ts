/**
 * What a tensor key is, by the registered layouts' module names: router rows, a routed expert's
 * weight, a shared expert's, the embeddings. The trainable presets, the parameter counts and the
 * model info classify keys here instead of naming a family's modules themselves.
 */
import { NULL_ROWS_MODULE } from '../router-rows.js';
import { ARCHITECTURES } from './index.js';

/** `buffer`: state the checkpoint stores that is not a parameter (DeepSeek's router correction bias: no gradient, not in transformers' parameter count). */
export type TensorRole = 'router' | 'routed-expert' | 'shared-expert' | 'embedding' | 'buffer' | 'other';

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const alt = (xs: Iterable<string>): string => [...new Set(xs)].map(esc).join('|');

export interface TensorRolePatterns {
  /** Router rows and biases of the MoE blocks (`.block_sparse_moe.gate.weight`, `.mlp.gate2.weight`). */
  router: RegExp;
  /** Weights of one routed expert; group 1 is the expert index. */
  routedExpert: RegExp;
  /** The shared expert(s) and their gate. */
  sharedExpert: RegExp;
  /** The routers' selection-bias buffers (`.mlp.gate.e_score_correction_bias`). */
  buffer: RegExp;
}

/** The patterns for every registered family (recomputed per call: the registry is open). */
export function tensorRolePatterns(): TensorRolePatterns {
  const n = ARCHITECTURES.map((a) => a.names);
  const moe = alt(n.map((x) => x.moe));
  const router = alt([...n.map((x) => x.router), NULL_ROWS_MODULE]);
  const experts = alt(n.map((x) => x.experts));
  const shared = alt(n.flatMap((x) => [x.sharedExpert, x.sharedExpertGate]).filter((x): x is string => x !== null));
  const buffers = alt(n.map((x) => x.routerSelectionBias).filter((x): x is string => !!x));
  return {
    router: new RegExp(`\\.(?:${moe})\\.(?:${router})\\.(?:weight|bias)$`),
    routedExpert: new RegExp(`\\.(?:${moe})\\.(?:${experts})\\.(\\d+)\\.`),
    sharedExpert: shared ? new RegExp(`\\.(?:${moe})\\.(?:${shared})\\.`) : /$^/,
    buffer: buffers ? new RegExp(`\\.(?:${moe})\\.(?:${router})\\.(?:${buffers})$`) : /$^/,
  };
}

const INPUT_EMBEDDING = 'model.embed_tokens.weight';
const LM_HEAD = 'lm_head.weight';

/** Classifies tensor keys (one pattern set for many calls). */
export function tensorRoleClassifier(): (name: string) => TensorRole {
  const p = tensorRolePatterns();
  return (name) => {
    if (p.buffer.test(name)) return 'buffer';
    if (p.routedExpert.test(name)) return 'routed-expert';
    if (p.router.test(name)) return 'router';
    if (p.sharedExpert.test(name)) return 'shared-expert';
    if (name === INPUT_EMBEDDING || name === LM_HEAD) return 'embedding';
    return 'other';
  };
}
