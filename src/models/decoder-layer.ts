import { ops, type Tensor } from '../tensor/index.js';
import type { LlamaAttention } from './attention.js';
import type { ForwardContext } from './forward-context.js';
import type { LayerKvCache } from './kv-cache.js';
import type { LlamaMLP } from './mlp.js';
import { Module } from './module.js';
import { SparseMoeBlock } from './moe-block.js';
import type { RMSNorm } from './rms-norm.js';

/** Pre-norm decoder block: x + attn(norm(x)), then h + ffn(norm(h)); the FFN is dense or MoE. */
export class DecoderLayer extends Module {
  input_layernorm: RMSNorm;
  self_attn: LlamaAttention;
  post_attention_layernorm: RMSNorm;
  /** `mlp` (dense, Llama) or `block_sparse_moe` (Mixtral): the key name follows the FFN kind. */
  ffn: LlamaMLP | SparseMoeBlock;

  constructor(readonly index: number, inNorm: RMSNorm, attn: LlamaAttention, postNorm: RMSNorm, ffn: LlamaMLP | SparseMoeBlock) {
    super();
    this.input_layernorm = this.registerModule('input_layernorm', inNorm);
    this.self_attn = this.registerModule('self_attn', attn);
    this.post_attention_layernorm = this.registerModule('post_attention_layernorm', postNorm);
    this.ffn = ffn;
    this.registerModule(this.ffnName, ffn);
  }

  get ffnName(): 'mlp' | 'block_sparse_moe' {
    return this.ffn instanceof SparseMoeBlock ? 'block_sparse_moe' : 'mlp';
  }

  forward(x: Tensor, ctx?: ForwardContext, cache?: LayerKvCache, path = ''): Tensor {
    const h = ops.add(x, this.self_attn.forward(this.input_layernorm.forward(x), ctx, cache));
    const n = this.post_attention_layernorm.forward(h);
    const f = this.ffn instanceof SparseMoeBlock ? this.ffn.forward(n, ctx, `${path}block_sparse_moe`) : this.ffn.forward(n, ctx);
    return ops.add(h, f);
  }

  protected override onChildReplaced(name: string, m: Module): void {
    if (name === 'mlp' || name === 'block_sparse_moe') this.ffn = m as LlamaMLP | SparseMoeBlock;
  }
}
