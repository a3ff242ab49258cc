/**
 * A decoder-only causal LM in Hugging Face layout, read top to bottom: embed, N decoder layers,
 * final norm, LM head (tied to the embedding when the config says so).
 *
 *   logits = lm_head(norm(layer_{N-1}(...layer_0(embed(ids)))))
 */
import { ops, Tensor } from '../tensor/index.js';
import type { ModelConfig } from './config.js';
import type { DecoderLayer } from './decoder-layer.js';
import { Embedding, type TokenEmbedding } from './embedding.js';
import { ForwardContext } from './forward-context.js';
import type { KvCache } from './kv-cache.js';
import { checkpointedLayer } from './layer-checkpoint.js';
import type { LinearLike } from './linear.js';
import { Module, ModuleList } from './module.js';
import { SparseMoeBlock } from './moe-block.js';
import type { RMSNorm } from './rms-norm.js';
import type { Router } from '../routers/router.js';

export const IGNORE_INDEX = -100;

/** The `model.` part: embeddings, layers, final norm. */
export class DecoderStack extends Module {
  embed_tokens: TokenEmbedding;
  layers: ModuleList<DecoderLayer>;
  norm: RMSNorm;

  constructor(embed: TokenEmbedding, layers: DecoderLayer[], norm: RMSNorm) {
    super();
    this.embed_tokens = this.registerModule('embed_tokens', embed);
    this.layers = this.registerModule('layers', new ModuleList(layers));
    this.norm = this.registerModule('norm', norm);
  }
}

export interface ForwardOptions {
  ctx?: ForwardContext;
  cache?: KvCache;
}

export class CausalLM extends Module {
  model: DecoderStack;
  /** Null when the LM head is tied to the embedding. */
  lm_head: LinearLike | null;

  constructor(readonly config: ModelConfig, stack: DecoderStack, lmHead: LinearLike | null) {
    super();
    this.model = this.registerModule('model', stack);
    this.lm_head = lmHead ? this.registerModule('lm_head', lmHead) : null;
  }

  get architecture(): string {
    return this.config.architecture;
  }

  /** The MoE blocks in layer order (empty for dense models). */
  moeBlocks(): SparseMoeBlock[] {
    return this.model.layers.items.map((l) => l.ffn).filter((f): f is SparseMoeBlock => f instanceof SparseMoeBlock);
  }

  /**
   * Swaps the router of every MoE layer (no retraining: e.g. top-p on a top-2 Mixtral, paper 003's
   * post-hoc analysis). Throws if the router does not read this model's router rows.
   */
  setRouter(router: Router): void {
    const blocks = this.moeBlocks();
    if (blocks.length === 0) throw new Error(`setRouter: ${this.config.architecture} has no MoE layers`);
    for (const b of blocks) b.checkRouter(router);
    for (const b of blocks) b.router = router;
  }

  /** Final hidden states [B, T, D] for token ids [B, T] (int32). */
  hidden(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    if (ids.rank !== 2) throw new Error(`forward: input ids must be [batch, time], got [${ids.shape.join(', ')}]`);
    const T = ids.shape[1]!;
    const past = opts.cache?.length ?? 0;
    const sw = this.config.slidingWindow;
    if (sw !== null && past + T > sw) {
      throw new Error(`forward: sequence length ${past + T} exceeds sliding_window ${sw} (sliding-window attention is not implemented)`);
    }
    let x = this.model.embed_tokens.forward(ids);
    const ctx = opts.ctx;
    this.model.layers.items.forEach((layer, i) => {
      const path = `model.layers.${i}.`;
      x = ctx?.checkpointLayers && !opts.cache ? checkpointedLayer(layer, x, ctx, path) : layer.forward(x, ctx, opts.cache?.layers[i], path);
    });
    return this.model.norm.forward(x);
  }

  /** Logits [B, T, V] from hidden states. */
  head(h: Tensor, ctx?: ForwardContext): Tensor {
    if (this.lm_head) return this.lm_head.forward(h, ctx);
    const e = this.model.embed_tokens;
    if (!(e instanceof Embedding)) throw new Error(`forward: the LM head is tied to model.embed_tokens, which is a ${e.constructor.name}, not a float Embedding`);
    return ops.linear(h, e.weight);
  }

  /** Logits [B, T, V] for token ids [B, T]. */
  forward(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    return this.head(this.hidden(ids, opts), opts.ctx);
  }

  /**
   * Mean next-token cross-entropy. `targets` [B, T] holds, at position t, the id to predict there
   * (the next token) or IGNORE_INDEX; see nextTokenTargets().
   */
  loss(ids: Tensor, targets: Tensor, ctx: ForwardContext = ForwardContext.eval()): Tensor {
    const logits = this.forward(ids, { ctx });
    return ops.crossEntropy(logits, targets, { ignoreIndex: IGNORE_INDEX });
  }
}

/**
 * Targets for next-token prediction: targets[b, t] = labels[b, t + 1] (labels default to the ids),
 * IGNORE_INDEX at the last position, as transformers shifts labels inside its loss.
 */
export function nextTokenTargets(ids: Tensor, labels?: Tensor): Tensor {
  const [B, T] = ids.shape as [number, number];
  const src = (labels ?? ids).i32;
  const out = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) out[b * T + t] = t + 1 < T ? src[b * T + t + 1]! : IGNORE_INDEX;
  }
  return new Tensor(out, [B, T]);
}
