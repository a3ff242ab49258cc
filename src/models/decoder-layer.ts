import { ops, type Tensor } from '../tensor/index.js';
import type { AttentionModule } from './attention.js';
import type { ForwardContext } from './forward-context.js';
import type { LayerKvCache } from './kv-cache.js';
import type { GatedMLP } from './mlp.js';
import { Module } from './module.js';
import { SparseMoeBlock } from './moe-block.js';
import type { RMSNorm } from './rms-norm.js';

/** Pre-norm decoder block: x + attn(norm(x)), then h + ffn(norm(h)); the FFN is dense or MoE. */
export class DecoderLayer extends Module {
  input_layernorm: RMSNorm;
  self_attn: AttentionModule;
  post_attention_layernorm: RMSNorm;
  /** The FFN, registered under the family's name for it (`mlp`, `block_sparse_moe`). */
  ffn: GatedMLP | SparseMoeBlock;

  constructor(readonly index: number, inNorm: RMSNorm, attn: AttentionModule, postNorm: RMSNorm, ffn: GatedMLP | SparseMoeBlock,
    /** The FFN's module name (the family layout's `mlp` or `moe` name). */
    readonly ffnName = 'mlp') {
    super();
    this.input_layernorm = this.registerModule('input_layernorm', inNorm);
    this.self_attn = this.registerModule('self_attn', attn);
    this.post_attention_layernorm = this.registerModule('post_attention_layernorm', postNorm);
    this.ffn = ffn;
    this.registerModule(this.ffnName, ffn);
  }

  /** Whether the FFN is a MoE block. */
  get isMoe(): boolean {
    return this.ffn instanceof SparseMoeBlock;
  }

  forward(x: Tensor, ctx?: ForwardContext, cache?: LayerKvCache, path = ''): Tensor {
    const h = ops.add(x, this.self_attn.forward(this.input_layernorm.forward(x), ctx, cache));
    const n = this.post_attention_layernorm.forward(h);
    const f = this.ffn instanceof SparseMoeBlock ? this.ffn.forward(n, ctx, `${path}${this.ffnName}`) : this.ffn.forward(n, ctx);
    return ops.add(h, f);
  }

  protected override onChildReplaced(name: string, m: Module): void {
    if (name === this.ffnName) this.ffn = m as GatedMLP | SparseMoeBlock;
    else if (name === 'self_attn') this.self_attn = m as AttentionModule;
  }
}
