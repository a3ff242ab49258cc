import { ops, type Tensor } from '../tensor/index.js';
import type { ModelConfig } from './config.js';
import type { ForwardContext } from './forward-context.js';
import type { LayerKvCache } from './kv-cache.js';
import type { LinearLike } from './linear.js';
import { Module } from './module.js';
import type { RMSNorm } from './rms-norm.js';
import { rotaryFrequencies } from './rotary.js';

/** What a decoder layer needs from its self-attention (grouped-query here; a family may declare its own). */
export interface AttentionModule extends Module {
  forward(x: Tensor, ctx?: ForwardContext, cache?: LayerKvCache): Tensor;
}

/**
 * Grouped-query self-attention as Llama and its descendants compute it: q, k, v projections (with
 * biases when the config says so), optional q / k RMSNorm (per head, Qwen3; over the whole
 * projection, OLMoE), optional clipping of q / k / v (OLMoE clip_qkv), rotary embedding
 * (rotate_half; scaled rope types from rotary.ts), causal attention, output projection.
 */
export class GqaAttention extends Module implements AttentionModule {
  q_proj: LinearLike;
  k_proj: LinearLike;
  v_proj: LinearLike;
  o_proj: LinearLike;
  q_norm: RMSNorm | null = null;
  k_norm: RMSNorm | null = null;

  constructor(readonly config: ModelConfig, q: LinearLike, k: LinearLike, v: LinearLike, o: LinearLike, norms: { q: RMSNorm; k: RMSNorm } | null = null) {
    super();
    this.q_proj = this.registerModule('q_proj', q);
    this.k_proj = this.registerModule('k_proj', k);
    this.v_proj = this.registerModule('v_proj', v);
    this.o_proj = this.registerModule('o_proj', o);
    if (norms) {
      this.q_norm = this.registerModule('q_norm', norms.q);
      this.k_norm = this.registerModule('k_norm', norms.k);
    }
  }

  forward(x: Tensor, ctx?: ForwardContext, cache?: LayerKvCache): Tensor {
    const { numHeads: H, numKvHeads: Hkv, headDim: Dh, attention: a } = this.config;
    const [B, T] = x.shape as [number, number, number];
    const offset = cache?.length ?? 0;
    let q = this.q_proj.forward(x, ctx);
    let k = this.k_proj.forward(x, ctx);
    let v = this.v_proj.forward(x, ctx);
    if (a.qkNorm === 'projection') {
      q = this.q_norm!.forward(q);
      k = this.k_norm!.forward(k);
    }
    if (a.clipQkv !== null) {
      q = ops.clamp(q, -a.clipQkv, a.clipQkv);
      k = ops.clamp(k, -a.clipQkv, a.clipQkv);
      v = ops.clamp(v, -a.clipQkv, a.clipQkv);
    }
    q = ops.reshape(q, [B, T, H, Dh]);
    k = ops.reshape(k, [B, T, Hkv, Dh]);
    v = ops.reshape(v, [B, T, Hkv, Dh]);
    if (a.qkNorm === 'head') {
      q = this.q_norm!.forward(q);
      k = this.k_norm!.forward(k);
    }
    const freq = rotaryFrequencies(this.config.rope, Dh, offset + T);
    q = ops.rope(q, freq, offset);
    k = ops.rope(k, freq, offset);
    if (cache) ({ k, v } = cache.append(k, v));
    const o = ops.attention(q, k, v, { causal: true });
    return this.o_proj.forward(ops.reshape(o, [B, T, H * Dh]), ctx);
  }
}
