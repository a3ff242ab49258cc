import { kernelsFor } from '../backends/registry.js';
import { shapeStr } from '../dtype.js';
import { record } from '../tape.js';
import { Tensor } from '../tensor.js';
import { assertFloat } from './shape-utils.js';

export interface AttentionOptions {
  causal?: boolean;
  /** Score scale; default 1 / sqrt(head_dim). */
  scale?: number;
}

/**
 * Scaled dot-product attention with grouped-query heads: q [B, T, H, Dh], k and v [B, S, Hkv, Dh]
 * -> [B, T, H, Dh]. Causal masking is by index (query t sees keys s <= t + S - T), never a mask
 * tensor; the backward recomputes probabilities from the saved log-sum-exp.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  assertFloat('attention', q, k, v);
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) {
    throw new Error(`attention: expected q [B, T, H, Dh] and k, v [B, S, Hkv, Dh], got ${shapeStr(q.shape)}, ${shapeStr(k.shape)}, ${shapeStr(v.shape)}`);
  }
  const [B, T, H, Dh] = q.shape as [number, number, number, number];
  const [B2, S, Hkv, Dh2] = k.shape as [number, number, number, number];
  if (B2 !== B || Dh2 !== Dh || v.shape.some((d, i) => d !== k.shape[i]) || H % Hkv !== 0) {
    throw new Error(`attention: incompatible shapes q ${shapeStr(q.shape)}, k ${shapeStr(k.shape)}, v ${shapeStr(v.shape)} (num_heads must be a multiple of num_key_value_heads)`);
  }
  const causal = opts.causal ?? true;
  if (causal && S < T) throw new Error(`attention: causal attention needs at least as many keys (${S}) as queries (${T})`);
  const scale = opts.scale ?? 1 / Math.sqrt(Dh);
  const kern = kernelsFor(q, k, v);
  const out = Tensor.empty(q.shape, q.dtype);
  const lse = Tensor.empty([B, H, T], q.dtype);
  kern.attentionForward(q.f, k.f, v.f, B, T, S, H, Hkv, Dh, scale, causal, out.f, lse.f);
  record('attention', [q, k, v], [out], ([dout], ctx) => {
    if (!dout) return;
    const dq = Tensor.empty(q.shape, q.dtype);
    const dk = Tensor.empty(k.shape, k.dtype);
    const dv = Tensor.empty(v.shape, v.dtype);
    kern.attentionBackward(q.f, k.f, v.f, out.f, lse.f, dout.f, B, T, S, H, Hkv, Dh, scale, causal, dq.f, dk.f, dv.f);
    ctx.pass(0, dq);
    ctx.pass(1, dk);
    ctx.pass(2, dv);
  });
  return out;
}
