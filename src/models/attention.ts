import { ops, type Tensor } from '../tensor/index.js';
import type { ModelConfig } from './config.js';
import type { ForwardContext } from './forward-context.js';
import type { LayerKvCache } from './kv-cache.js';
import type { LinearLike } from './linear.js';
import { Module } from './module.js';

/**
 * Llama / Mixtral self-attention: q, k, v projections, rotary embedding (rotate_half), grouped-query
 * causal attention, output projection.
 */
export class LlamaAttention extends Module {
  q_proj: LinearLike;
  k_proj: LinearLike;
  v_proj: LinearLike;
  o_proj: LinearLike;

  constructor(readonly config: ModelConfig, q: LinearLike, k: LinearLike, v: LinearLike, o: LinearLike) {
    super();
    this.q_proj = this.registerModule('q_proj', q);
    this.k_proj = this.registerModule('k_proj', k);
    this.v_proj = this.registerModule('v_proj', v);
    this.o_proj = this.registerModule('o_proj', o);
  }

  forward(x: Tensor, ctx?: ForwardContext, cache?: LayerKvCache): Tensor {
    const { numHeads: H, numKvHeads: Hkv, headDim: Dh, ropeTheta } = this.config;
    const [B, T] = x.shape as [number, number, number];
    const offset = cache?.length ?? 0;
    let q = ops.reshape(this.q_proj.forward(x, ctx), [B, T, H, Dh]);
    let k = ops.reshape(this.k_proj.forward(x, ctx), [B, T, Hkv, Dh]);
    let v = ops.reshape(this.v_proj.forward(x, ctx), [B, T, Hkv, Dh]);
    q = ops.rope(q, ropeTheta, offset);
    k = ops.rope(k, ropeTheta, offset);
    if (cache) ({ k, v } = cache.append(k, v));
    const o = ops.attention(q, k, v, { causal: true });
    return this.o_proj.forward(ops.reshape(o, [B, T, H * Dh]), ctx);
  }
}
