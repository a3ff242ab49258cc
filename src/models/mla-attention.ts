/**
 * Multi-head latent attention (DeepSeek-V2 report, arXiv 2405.04434, §2.1.2-2.1.3 eqs. 9-19; DeepSeek-V3 and
 * Kimi-K2 use it unchanged; transformers' DeepseekV3Attention), for training and evaluation:
 *
 *   q      = W_qb RMSNorm(W_qa x)             (q_lora_rank set; else q = W_q x)      [H, d_nope + d_rope]
 *   [c_kv, k_R] = W_kva x                     (kv_a_proj_with_mqa: latent c_kv [kv_lora_rank], shared k_R [d_rope])
 *   [k_C, v] = W_kvb RMSNorm(c_kv)            per head [d_nope + d_v]
 *   q = [q_C, RoPE(q_R)],  k = [k_C, RoPE(k_R) broadcast to every head]
 *   o = W_o softmax(q k^T * scale, causal) v
 * The two inner RMSNorms (q_a_layernorm, kv_a_layernorm) use eps 1e-6 whatever rms_norm_eps says, as
 * transformers builds them. `scale` is qk_head_dim^-1/2 (times yarn's mscale^2 when the config asks).
 *
 * Rope interleave (config rope_interleave, DeepSeek's default): the checkpoint lays the rotary dims out as
 * pairs (x0, x1), (x2, x3)...; transformers rotates each pair and returns [evens rotated, odds rotated], which is
 * the usual rotate-half rope applied to the de-interleaved vector [x0, x2, ..., x1, x3, ...]. So we
 * de-interleave (a fixed permutation, reshape + slice + concat, all differentiable) and apply ops.rope.
 *
 * The attention kernel takes one head size for q, k and v: when d_v differs from d_nope + d_rope the shorter
 * side is padded with zeros (zeros add nothing to q.k and give zero output columns, which are cut off).
 * With a KV cache the expanded k and (padded) v are cached, not the latent: simple, correct, not the
 * memory-saving form.
 */
import { ops, Tensor, type RotaryFrequencies } from '../tensor/index.js';
import type { AttentionModule } from './attention.js';
import type { ForwardContext } from './forward-context.js';
import type { LayerKvCache } from './kv-cache.js';
import type { LinearLike } from './linear.js';
import { Module } from './module.js';
import type { RMSNorm } from './rms-norm.js';

export interface MlaDims {
  numHeads: number;
  /** Null: queries come from one projection `q_proj`. */
  qLoraRank: number | null;
  kvLoraRank: number;
  qkNopeHeadDim: number;
  qkRopeHeadDim: number;
  vHeadDim: number;
  ropeInterleave: boolean;
  /** Softmax scale (qk_head_dim^-1/2, times mscale^2 under yarn with mscale_all_dim). */
  scale: number;
}

/** The projections and norms of one MLA layer, under transformers' names. */
export interface MlaWeights {
  q_proj: LinearLike | null;
  q_a_proj: LinearLike | null;
  q_a_layernorm: RMSNorm | null;
  q_b_proj: LinearLike | null;
  kv_a_proj_with_mqa: LinearLike;
  kv_a_layernorm: RMSNorm;
  kv_b_proj: LinearLike;
  o_proj: LinearLike;
}

/** [.., 2n] laid out as pairs (x0, x1), (x2, x3), ... -> [x0, x2, ..., x1, x3, ...] (last axis). */
export function deinterleave(x: Tensor): Tensor {
  const d = x.shape[x.rank - 1]!;
  const pairs = ops.reshape(x, [...x.shape.slice(0, -1), d / 2, 2]);
  const half = [...x.shape.slice(0, -1), d / 2];
  return ops.concat([ops.reshape(ops.slice(pairs, x.rank, 0, 1), half), ops.reshape(ops.slice(pairs, x.rank, 1, 2), half)], x.rank - 1);
}

/** x [.., d] -> [.., d + extra] with zeros after (no-op for extra 0). */
function padLast(x: Tensor, extra: number): Tensor {
  if (extra === 0) return x;
  return ops.concat([x, Tensor.zeros([...x.shape.slice(0, -1), extra], x.dtype)], x.rank - 1);
}

export class MlaAttention extends Module implements AttentionModule {
  q_proj: LinearLike | null = null;
  q_a_proj: LinearLike | null = null;
  q_a_layernorm: RMSNorm | null = null;
  q_b_proj: LinearLike | null = null;
  kv_a_proj_with_mqa: LinearLike;
  kv_a_layernorm: RMSNorm;
  kv_b_proj: LinearLike;
  o_proj: LinearLike;

  constructor(readonly dims: MlaDims, w: MlaWeights,
    /** Rotary frequencies of the rope dims for a forward reaching `seqLen` positions (a theta, or scaled frequencies). */
    readonly rotary: (seqLen: number) => number | RotaryFrequencies) {
    super();
    if (dims.qLoraRank === null) {
      if (!w.q_proj) throw new Error('MlaAttention: q_lora_rank is null but there is no q_proj');
      this.q_proj = this.registerModule('q_proj', w.q_proj);
    } else {
      if (!w.q_a_proj || !w.q_a_layernorm || !w.q_b_proj) throw new Error('MlaAttention: q_lora_rank is set but q_a_proj / q_a_layernorm / q_b_proj are missing');
      this.q_a_proj = this.registerModule('q_a_proj', w.q_a_proj);
      this.q_a_layernorm = this.registerModule('q_a_layernorm', w.q_a_layernorm);
      this.q_b_proj = this.registerModule('q_b_proj', w.q_b_proj);
    }
    this.kv_a_proj_with_mqa = this.registerModule('kv_a_proj_with_mqa', w.kv_a_proj_with_mqa);
    this.kv_a_layernorm = this.registerModule('kv_a_layernorm', w.kv_a_layernorm);
    this.kv_b_proj = this.registerModule('kv_b_proj', w.kv_b_proj);
    this.o_proj = this.registerModule('o_proj', w.o_proj);
  }

  forward(x: Tensor, ctx?: ForwardContext, cache?: LayerKvCache): Tensor {
    const { numHeads: H, kvLoraRank: R, qkNopeHeadDim: dn, qkRopeHeadDim: dr, vHeadDim: dv } = this.dims;
    const dqk = dn + dr;
    const [B, T] = x.shape as [number, number, number];
    const offset = cache?.length ?? 0;

    // queries (eqs. 12-15): [B, T, H, d_nope + d_rope]
    const qFlat = this.q_proj
      ? this.q_proj.forward(x, ctx)
      : this.q_b_proj!.forward(this.q_a_layernorm!.forward(this.q_a_proj!.forward(x, ctx)), ctx);
    const q = ops.reshape(qFlat, [B, T, H, dqk]);
    let qRot = ops.slice(q, 3, dn, dqk);

    // latent kv and the shared rotary key (eqs. 9-11)
    const ckv = this.kv_a_proj_with_mqa.forward(x, ctx);
    const latent = this.kv_a_layernorm.forward(ops.slice(ckv, 2, 0, R));
    let kRot = ops.reshape(ops.slice(ckv, 2, R, R + dr), [B, T, 1, dr]);

    if (this.dims.ropeInterleave) {
      qRot = deinterleave(qRot);
      kRot = deinterleave(kRot);
    }
    const freq = this.rotary(offset + T);
    qRot = ops.rope(qRot, freq, offset);
    kRot = ops.rope(kRot, freq, offset);

    const kv = ops.reshape(this.kv_b_proj.forward(latent, ctx), [B, T, H, dn + dv]);
    let k = ops.concat([ops.slice(kv, 3, 0, dn), ops.concat(new Array<Tensor>(H).fill(kRot), 2)], 3);
    let v = ops.slice(kv, 3, dn, dn + dv);
    let qFull = ops.concat([ops.slice(q, 3, 0, dn), qRot], 3);

    // one head size for the kernel: pad the shorter of (q, k) and v with zeros
    const D = Math.max(dqk, dv);
    qFull = padLast(qFull, D - dqk);
    k = padLast(k, D - dqk);
    v = padLast(v, D - dv);
    if (cache) ({ k, v } = cache.append(k, v));
    let o = ops.attention(qFull, k, v, { causal: true, scale: this.dims.scale });
    if (D !== dv) o = ops.slice(o, 3, 0, dv);
    return this.o_proj.forward(ops.reshape(o, [B, T, H * dv]), ctx);
  }
}
