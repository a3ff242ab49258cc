/**
 * A surgery pass maps a model to a model in place (new router rows, adapters, decomposed FFNs),
 * updating its config so saveModel / loadModel round-trip the new architecture. A user-defined
 * pass is the same object (see docs/surgery.md).
 */
import type { CausalLM } from '../models/causal-lm.js';
import { SparseMoeBlock } from '../models/moe-block.js';
import type { Rng } from '../tensor/index.js';

export interface SurgeryContext {
  /** The random stream for new weights (seeded by applySurgery). */
  rng: Rng;
  /** Adds a line to this pass's report (what it did, step-0 notes). */
  note(line: string): void;
}

export interface SurgeryPass {
  readonly name: string;
  /** The text it was created from (e.g. `null-experts:m=8,top_k=3`), for reports. */
  readonly spec?: string;
  /** Config keys this pass writes (e.g. `moe_tune.null_experts`). */
  readonly configKeys: readonly string[];
  /** Null when the pass fits the model, else the one-line reason it does not. */
  check(model: CausalLM): string | null;
  /** Changes the model in place (called only after check returned null). */
  apply(model: CausalLM, ctx: SurgeryContext): void;
}

/** What one pass did. */
export interface SurgeryStepReport {
  name: string;
  spec: string;
  configKeys: string[];
  notes: string[];
  paramsBefore: number;
  paramsAfter: number;
  /** paramsAfter - paramsBefore. */
  added: number;
  /** Parameters that train after this pass. */
  trainable: number;
  /** Mean loss on the given batch before and after the pass (when a batch was given). */
  loss?: { before: number; after: number; change: number };
}

export interface SurgeryReport {
  passes: SurgeryStepReport[];
}

/** The MoE blocks of a model with their module paths. */
export function moeBlocksWithPaths(model: CausalLM): [string, SparseMoeBlock][] {
  const out: [string, SparseMoeBlock][] = [];
  model.model.layers.items.forEach((layer, i) => {
    if (layer.ffn instanceof SparseMoeBlock) out.push([`model.layers.${i}.${layer.ffnName}`, layer.ffn]);
  });
  return out;
}
